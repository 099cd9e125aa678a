"""The Hypothesis profile of the state machines: `ci` unless PPK_HYPOTHESIS_PROFILE names another."""

from __future__ import annotations

import os

from hypothesis import settings

import ppk.stateful_tests.machines  # noqa: F401 (registers the profiles)

settings.load_profile(os.environ.get("PPK_HYPOTHESIS_PROFILE", "ci"))
