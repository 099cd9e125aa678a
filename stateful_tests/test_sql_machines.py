"""The state machines on the SQL store: SQLite in the active profile (`ci` in CI), PostgreSQL smaller."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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

OTHER_CONTRACTS_EXAMPLES = 10
"""The settlement machine's runs under the kernel's exact contracts, where each fold also runs `decide`
(about 2.5 s a run; the machine forges the first account's books at every step, one way after
another), and under `python -O`."""

UNDER_OTHER_CONTRACTS = f"""
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from ppk.stateful_tests.sql_machines import SqlSettlementMachine

run_state_machine_as_test(SqlSettlementMachine, settings=settings(
    max_examples={OTHER_CONTRACTS_EXAMPLES}, stateful_step_count=50, derandomize=True, deadline=None,
    database=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)))
"""


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


@pytest.mark.parametrize("setting", ["ICONTRACT_SLOW", "PYTHONOPTIMIZE"])
def test_sqlite__settlement_machine_under_the_kernels_other_contracts(setting: str) -> None:
    """The settlement machine under the kernel's two other contract settings, each fixed when the kernel
    is imported, so in a process of its own. Derandomized, without shrinking: a failure is reported
    as drawn, in seconds.

    `ICONTRACT_SLOW=1` (the CrossHair run's setting): `fold` then requires each entry to be its
    command's decision, and the audit meets that contract's violation at a forged entry, where it must
    quote the contract's words and not icontract's `File …, line …` (the seed-127 sample's audit.py
    244, `or` for `and` in the filter that drops that line, survived every machine run without it).

    `PYTHONOPTIMIZE=1`: no contract and no assertion of the kernel's runs, and the audit must find
    every forgery all the same, never failing on one (it failed with an `AttributeError` on a forged
    entry that an assertion of `fold`'s had stopped)."""
    completed = subprocess.run(
        [sys.executable, "-c", UNDER_OTHER_CONTRACTS],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=1200,
        check=False,
        env={**os.environ, setting: "1"},
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-10000:]
