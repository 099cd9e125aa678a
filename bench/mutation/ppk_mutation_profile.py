"""A pytest plugin that registers the `mutation` Hypothesis profile, for bench/mutation/run.sh only.

It is the `ci` profile of stateful_tests/machines.py (derandomized, no database, 50 steps) with
fewer examples and no shrinking: a mutant is killed by the first failing example, and shrinking
it would only cost time. Loaded with `-p ppk_mutation_profile` (PYTHONPATH=bench/mutation) and
chosen with PPK_HYPOTHESIS_PROFILE=mutation; stateful_tests/conftest.py loads the profile.
"""

from __future__ import annotations

import os

from hypothesis import Phase, settings

settings.register_profile(
    "mutation",
    max_examples=int(os.environ.get("PPK_MUTATION_EXAMPLES", "60")),
    stateful_step_count=50,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
