"""The wheel carries sql/ and migrations/: installed outside the checkout, it
migrates a database and serves customers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .shipped import SHIPPED

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import customer_dal

    assert "site-packages" in customer_dal.__file__, customer_dal.__file__
    print(customer_dal.migrate())
    with customer_dal.connect() as conn:
        repo = customer_dal.CustomerRepository(conn)
        ann = repo.create({"name": "Ann Lee", "phone": "555-123-4567"})
        print([c.name for c in repo.search("ann")])
        print(repo.soft_delete(ann.id), repo.count_active())
    """
)


@pytest.mark.slow
def test_the_installed_wheel_migrates_and_serves_customers(tmp_path: Path, empty_dsn: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("customer_dal-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT],
        cwd=tmp_path,
        env={"DATABASE_URL": empty_dsn, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    assert result.stdout.splitlines() == [
        str(SHIPPED),
        "['Ann Lee']",
        "True 0",
    ]
