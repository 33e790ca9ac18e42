"""The sync repositories are generated from the async ones, and kept so."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

import customer_dal

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    path = ROOT / "tools" / "async_to_sync.py"
    spec = importlib.util.spec_from_file_location("async_to_sync", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


@pytest.mark.parametrize(("source", "target"), TOOL.MODULES.items())
def test_each_generated_module_is_what_its_async_original_generates(
    source: str, target: str
) -> None:
    generated = TOOL.generate(source)
    committed = (ROOT / target).read_text(encoding="utf-8")
    assert committed == generated, f"{target} is stale: run make generate"
    assert committed.startswith(f"# generated from {source} by tools/async_to_sync.py")
    asynchronous = (ast.AsyncFunctionDef, ast.AsyncWith, ast.AsyncFor, ast.Await)
    assert not [node for node in ast.walk(ast.parse(committed)) if isinstance(node, asynchronous)]
    assert "Async" not in committed


def test_the_check_mode_names_a_stale_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "src/customer_dal/users_async.py"
    (tmp_path / "src" / "customer_dal").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for name in TOOL.MODULES.values():
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / source).write_text(
        (ROOT / source).read_text() + "\n\nasync def extra() -> None:\n    await extra()\n"
    )
    for other in set(TOOL.MODULES) - {source}:
        (tmp_path / other).write_text((ROOT / other).read_text())
    monkeypatch.setattr(TOOL, "ROOT", tmp_path)
    assert TOOL.main(["--check"]) == 1
    assert "src/customer_dal/users.py is stale" in capsys.readouterr().err
    assert TOOL.main([]) == 0
    assert TOOL.main(["--check"]) == 0
    assert (
        "def extra() -> None:\n    extra()\n"
        in (tmp_path / "src/customer_dal/users.py").read_text()
    )


@pytest.mark.parametrize(
    ("sync", "asynchronous"),
    [
        (customer_dal.CustomerRepository, customer_dal.AsyncCustomerRepository),
        (customer_dal.UserRepository, customer_dal.AsyncUserRepository),
    ],
)
def test_both_flavours_have_the_same_methods_and_arguments(sync: type, asynchronous: type) -> None:
    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    assert methods(sync) == methods(asynchronous)
    assert not any(inspect.iscoroutinefunction(member) for member in vars(sync).values())
    assert all(
        inspect.iscoroutinefunction(member)
        for name, member in vars(asynchronous).items()
        if callable(member) and not name.startswith("__")
    )
