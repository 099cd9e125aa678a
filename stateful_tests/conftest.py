"""The Hypothesis profile of the state machines: `ci` unless PPK_HYPOTHESIS_PROFILE names another."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import ppk.stateful_tests.machines  # noqa: F401 (registers the profiles)

settings.load_profile(os.environ.get("PPK_HYPOTHESIS_PROFILE", "ci"))


SOLVER_BACKEND_MODULES = frozenset({"test_arithmetic_properties.py", "test_amount_grammar.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the CrossHair-backend tests last: after it has run, CrossHair's patches stay in the
    process and icontract's contracts no longer fire, so a contract test after them would pass for
    the wrong reason, or fail (seen in CI: test_mutation_gaps.py)."""
    items.sort(key=lambda item: item.path.name in SOLVER_BACKEND_MODULES)
