"""The zero-setup server: started on demand, stoppable, tolerant of dead clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from customer_dal import embedded


def test_dead_client_pids_are_pruned(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as finished:
        pass
    alive = os.getpid()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([alive, finished.pid]))
    embedded._prune_dead_pids(tmp_path)
    assert json.loads(handles.read_text()) == [alive]


def test_pruning_tolerates_a_missing_handle_file(tmp_path: Path) -> None:
    embedded._prune_dead_pids(tmp_path)
    assert not (tmp_path / ".handle_pids.json").exists()


def test_pruning_leaves_a_clean_handle_file_alone(tmp_path: Path) -> None:
    handles = tmp_path / ".handle_pids.json"
    handles.write_text("[]")
    embedded._prune_dead_pids(tmp_path)
    assert handles.read_text() == "[]"


def test_the_system_psql_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert embedded.psql_executable() == "/usr/bin/psql"


def test_without_a_system_psql_the_bundled_one_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    bundled = Path(embedded.psql_executable())
    assert bundled.name == "psql"
    assert bundled.is_file()


@pytest.mark.slow
def test_a_server_starts_on_demand_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embedded.PGDATA_ENV, str(tmp_path / "pgdata"))
    assert embedded.stop_embedded() is False  # never started

    dsn = embedded.embedded_dsn()
    with psycopg.connect(dsn) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("postgres",)
        # a new cluster is restarted once with memory for a million customers
        assert connection.execute("SHOW shared_buffers").fetchone() == (embedded.SHARED_BUFFERS,)
    assert embedded.embedded_dsn() == dsn  # the running server is reused as it is

    assert embedded.stop_embedded() is True
    assert embedded.stop_embedded() is False
