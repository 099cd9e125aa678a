"""The throwaway PostgreSQL cluster and its fixtures: real server, fresh database per test, nothing left."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ppk.stateful_tests import postgres
from ppk.stateful_tests.postgres import Cluster, ClusterError, throwaway_cluster, unavailable_reason
from ppk.stateful_tests.pytest_postgres import REQUIRE_VARIABLE, require_postgres


def test_postgres__a_cluster_can_start_on_this_machine() -> None:
    reason = unavailable_reason()
    if reason is not None and os.environ.get(REQUIRE_VARIABLE) != "1":
        pytest.skip(f"PostgreSQL: {reason}")
    assert reason is None


def test_postgres__without_server_programs_the_reason_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "server_bindir", lambda: None)
    reason = unavailable_reason()
    assert reason is not None
    assert "apt-get install -y postgresql" in reason


def test_postgres__as_root_the_reason_names_a_missing_postgres_user_or_runuser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "server_bindir", lambda: tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(postgres, "server_user", lambda: None)
    reason = unavailable_reason()
    assert reason is not None
    assert "root" in reason and "`postgres` user" in reason
    monkeypatch.setattr(postgres, "server_user", lambda: object())
    monkeypatch.setattr(postgres, "runuser_program", lambda: None)
    reason = unavailable_reason()
    assert reason is not None
    assert "`runuser`" in reason
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert unavailable_reason() is None


def test_postgres__the_session_cluster_is_loopback_only_and_durable(postgres_cluster: Cluster) -> None:
    assert postgres_cluster.url == f"postgresql://postgres@127.0.0.1:{postgres_cluster.port}/postgres"
    with psycopg.connect(postgres_cluster.url) as connection:
        settings: dict[str, str] = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (["fsync", "synchronous_commit", "full_page_writes", "max_connections", "listen_addresses"],),
            ).fetchall()
        )
    # Benchmarks measure real commits: the server's durability is its default.
    assert settings["fsync"] == "on"
    assert settings["synchronous_commit"] == "on"
    assert settings["full_page_writes"] == "on"
    assert int(settings["max_connections"]) >= 20
    assert settings["listen_addresses"] == "127.0.0.1"


def test_postgres__a_test_database_takes_a_connection_and_a_select(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        row = connection.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert postgres_url.endswith(f"/{row[0]}")


seen_databases: list[str] = []


@pytest.mark.parametrize("turn", [1, 2])
def test_postgres__each_test_gets_its_own_empty_database(
    turn: int, postgres_url: str, postgres_cluster: Cluster
) -> None:
    with psycopg.connect(postgres_url) as connection:
        # Fails on a database another test already used: each turn creates the same table.
        connection.execute("CREATE TABLE marker (turn integer)")
        connection.execute("INSERT INTO marker VALUES (%s)", (turn,))
        name = connection.execute("SELECT current_database()").fetchone()
    assert name is not None
    assert name[0] not in seen_databases
    # The earlier turn's database was dropped after its test.
    assert not set(seen_databases) & set(postgres_cluster.sql("SELECT datname FROM pg_database").split())
    seen_databases.append(name[0])


def test_postgres__stopping_ends_the_server_and_deletes_its_folder() -> None:
    require_postgres()
    with throwaway_cluster() as cluster:
        assert cluster.folder.is_dir()
        url = cluster.create_database("scratch")
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert cluster.start_seconds > 0
    assert not cluster.folder.exists()
    assert cluster.stop_seconds is not None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url, connect_timeout=2)


def test_postgres__a_body_that_raises_still_stops_and_deletes() -> None:
    require_postgres()
    started: list[Cluster] = []
    with pytest.raises(LookupError, match="the body failed"), throwaway_cluster() as cluster:
        started.append(cluster)
        # A session left open must not hold the shutdown up.
        connection = psycopg.connect(cluster.url)
        raise LookupError("the body failed")
    connection.close()
    assert not started[0].folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(started[0].url, connect_timeout=2)


def test_postgres__a_failed_start_reports_the_server_log_and_leaves_no_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The folder the cluster made is gone. Only that one is looked at: another process's clusters come
    and go meanwhile (a mutation run's second worker: comparing every ppk-pg-* folder before and after
    failed there, and counted a mutant of audit.py as killed)."""
    require_postgres()
    made: list[Path] = []
    mkdtemp = tempfile.mkdtemp

    def recorded(*arguments: Any, **keywords: Any) -> str:
        folder = mkdtemp(*arguments, **keywords)
        made.append(Path(folder))
        return folder

    monkeypatch.setattr(postgres.tempfile, "mkdtemp", recorded)
    with pytest.raises(ClusterError) as failure, throwaway_cluster(settings={"no_such_setting": "1"}):
        pytest.fail("the server started with a bogus setting")
    message = str(failure.value)
    assert "server log" in message
    assert 'unrecognized configuration parameter "no_such_setting"' in message
    assert made, "the cluster made no folder"
    assert [folder for folder in made if folder.exists()] == []


def test_postgres__database_names_that_would_need_quoting_are_refused(postgres_cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="database name"):
        postgres_cluster.create_database('x"; DROP DATABASE postgres; --')


def run_pytest_without_postgres(folder: Path, require: bool) -> subprocess.CompletedProcess[str]:
    """Run a test that asks for `postgres_url` in a fresh pytest where no server programs are found."""
    (folder / "conftest.py").write_text(
        "from ppk.stateful_tests import postgres\n\npostgres.server_bindir = lambda: None\n", encoding="utf-8"
    )
    (folder / "test_needs_postgres.py").write_text(
        "def test_needs_postgres(postgres_url):\n    assert postgres_url\n", encoding="utf-8"
    )
    environment = {name: value for name, value in os.environ.items() if name != REQUIRE_VARIABLE}
    if require:
        environment[REQUIRE_VARIABLE] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rsf",
            "-p",
            "no:cacheprovider",
            "-p",
            "ppk.stateful_tests.pytest_postgres",
        ],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_postgres__without_a_server_the_fixtures_skip_with_the_reason(tmp_path: Path) -> None:
    completed = run_pytest_without_postgres(tmp_path, require=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 skipped" in completed.stdout
    assert "apt-get install -y postgresql" in completed.stdout


def test_postgres__without_a_server_the_fixtures_fail_when_postgres_is_required(tmp_path: Path) -> None:
    completed = run_pytest_without_postgres(tmp_path, require=True)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "1 error" in completed.stdout
    assert f"PostgreSQL is required ({REQUIRE_VARIABLE}=1)" in completed.stdout
    assert "apt-get install -y postgresql" in completed.stdout
