"""The state machines, in the active Hypothesis profile (`ci` in CI: derandomized, a few minutes)."""

from __future__ import annotations

from ppk.stateful_tests.machines import CrashRetryMachine, SettlementMachine

TestSettlementMachine = SettlementMachine.TestCase
TestCrashRetryMachine = CrashRetryMachine.TestCase
