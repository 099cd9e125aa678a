"""Run pytest with the test files most likely to kill this clone's mutant first; for run.sh only.

    python ordered.py PYTEST_ARGUMENT...

cosmic-ray writes a mutant into the worker's clone in place, so `git diff --name-only` names the
mutated module. The test files that exercise that module most directly are moved to the front of
the command's paths; nothing is added or dropped. A file is moved only if the command runs it
already (named, or inside a named directory), and pytest runs a file once however often it is named.
With `-x` the run stops at the first failure, so a mutant that the SQL machines kill no longer waits
for the lockstep and the memory machines first. The verdict is the same either way: every path
still runs until one fails, and the Hypothesis profile is derandomized.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

# The mutated module -> the test files to run first, in this order.
FIRST: dict[str, tuple[str, ...]] = {
    "adapters/jsonl.py": (
        "stateful_tests/test_amount_grammar.py",
        "stateful_tests/test_machines.py",
        "tests/test_codec.py",
    ),
    "adapters/canonical.py": (
        "stateful_tests/test_sql_machines.py",
        "tests/test_canonical.py",
        "tests/test_audit.py",
    ),
    "adapters/chain.py": (
        "stateful_tests/test_sql_machines.py",
        "tests/test_verify_chain.py",
        "tests/test_audit.py",
    ),
    "adapters/audit.py": ("stateful_tests/test_sql_machines.py", "tests/test_audit.py"),
    "adapters/sql.py": ("stateful_tests/test_sql_machines.py", "tests/test_sql.py", "tests/test_store.py"),
    "adapters/store.py": ("stateful_tests/test_machines.py", "tests/test_store.py"),
    "adapters/dispatcher.py": ("stateful_tests/test_machines.py", "tests/test_dispatcher.py"),
    "adapters/bank.py": (
        "stateful_tests/test_machines.py",
        "tests/test_dispatcher.py",
        "tests/test_cli_db.py",
    ),
}


def ordered(arguments: list[str], mutated: list[str]) -> list[str]:
    """The pytest arguments with the paths for the mutated modules moved ahead of the other paths."""
    paths = [a for a in arguments if not a.startswith("-") and pathlib.Path(a).exists()]
    if not paths:
        return arguments
    runs = [pathlib.Path(p).resolve() for p in paths]
    first = [
        f
        for module in mutated
        for f in FIRST.get(module, ())
        if any(pathlib.Path(f).resolve() == r or r in pathlib.Path(f).resolve().parents for r in runs)
    ]
    front = list(dict.fromkeys(first))
    where = arguments.index(paths[0])
    rest = [a for a in arguments if a not in paths]
    return rest[:where] + front + [p for p in paths if p not in front] + rest[where:]


def main() -> None:
    diff = subprocess.run(["git", "diff", "--name-only"], capture_output=True, text=True, check=True)
    arguments = ordered(sys.argv[1:], diff.stdout.split())
    print("ordered:", " ".join(arguments), flush=True)
    os.execvp(sys.executable, [sys.executable, "-m", "pytest", *arguments])


if __name__ == "__main__":
    main()
