"""The state machines on the SQL store: SQLite in the active profile (`ci` in CI), PostgreSQL smaller."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from ppk.stateful_tests.sql_machines import SqlCrashRetryMachine, SqlSettlementMachine
from ppk.stateful_tests.sql_world import StoreWorldMachine

TestSqliteSettlementMachine = SqlSettlementMachine.TestCase
TestSqliteCrashRetryMachine = SqlCrashRetryMachine.TestCase

WORLD_EXAMPLES = 40
"""The world machine's runs at most, in any profile: its rules reach what they check in a few steps
(a run is about 1.5 s), and the profile's 150 would add minutes to CI and to each mutant."""

TestSqliteStoreWorldMachine = StoreWorldMachine.TestCase
TestSqliteStoreWorldMachine.settings = settings(
    max_examples=min(settings().max_examples, WORLD_EXAMPLES), suppress_health_check=list(HealthCheck)
)

POSTGRESQL: settings = settings(
    max_examples=30, stateful_step_count=30, derandomize=True, deadline=None, database=None, print_blob=False
)
"""Smaller than `ci`: a PostgreSQL commit costs more, and the machines' draws are the same as SQLite's."""


def test_postgresql__settlement_machine(postgres_url: str) -> None:
    machine = type("PostgresSettlementMachine", (SqlSettlementMachine,), {"postgres_url": postgres_url})
    run_state_machine_as_test(machine, settings=POSTGRESQL)


def test_postgresql__crash_retry_machine(postgres_url: str) -> None:
    machine = type("PostgresCrashRetryMachine", (SqlCrashRetryMachine,), {"postgres_url": postgres_url})
    run_state_machine_as_test(machine, settings=POSTGRESQL)


def test_postgresql__store_world_machine(postgres_url: str) -> None:
    machine = type("PostgresStoreWorldMachine", (StoreWorldMachine,), {"postgres_url": postgres_url})
    run_state_machine_as_test(machine, settings=POSTGRESQL)
