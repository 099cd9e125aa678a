"""Pytest fixtures: one throwaway PostgreSQL cluster per session, and a fresh database for each test."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator

import pytest

from ppk.stateful_tests.postgres import Cluster, throwaway_cluster, unavailable_reason

# CI sets it: there the PostgreSQL tests must run, so a machine that cannot run them fails them.
REQUIRE_VARIABLE = "PPK_REQUIRE_POSTGRES"
TIMINGS = pytest.StashKey[list[Cluster]]()
database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMINGS] = []


def require_postgres() -> None:
    """Skip the test where no cluster can start; fail it instead when PPK_REQUIRE_POSTGRES=1."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_VARIABLE}=1), but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The session's cluster, stopped and deleted at the end of the session."""
    require_postgres()
    with throwaway_cluster() as cluster:
        yield cluster
    pytestconfig.stash[TIMINGS].append(cluster)


@pytest.fixture
def postgres_url(postgres_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new empty database on the session's cluster, dropped after the test."""
    # The number makes the name unique; the test's name after it helps find a leftover.
    slug = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())
    name = f"t{next(database_numbers)}_{slug}"[:63]
    url = postgres_cluster.create_database(name)
    yield url
    postgres_cluster.drop_database(name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for cluster in config.stash.get(TIMINGS, []):
        terminalreporter.write_line(
            f"postgres: throwaway cluster started in {cluster.start_seconds:.2f} s "
            f"(initdb included), stopped and deleted in {cluster.stop_seconds or 0.0:.2f} s"
        )
