"""CrossHair over every kernel module: no counterexample anywhere, every lemma proven (spec.md#proofs).

Run with ICONTRACT_SLOW=1, so that `decide` and `fold` carry their exact preconditions (a reachable
account; an entry that is the decision of its command) and CrossHair does not report inputs that no
ledger can produce. It proves the lemmas and hunts for bugs in the transitions, where it meets the
limits the docs name: it cannot build a reachable account symbolically, so `fold` is "Unable to meet
precondition" and the state machines check it instead. The per-lemma proofs, with longer timeouts,
are in tests/test_proofs.py.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEMMAS = {"payable_minor": 1, "capital_closed_minor": 1, "my_share_minor": 1}
"""Each lemma with its number of postconditions (one: the whole claim); each must be Confirmed over all
paths."""
REPORT = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<level>info|error): (?P<message>.*)$")


def test_crosshair__no_counterexample_in_the_kernel_and_every_lemma_proven() -> None:
    completed = subprocess.run(
        [
            sys.executable, "-m", "crosshair", "check",
            "ppk.kernel.transitions", "ppk.kernel.contracts", "ppk.kernel.state",
            "--analysis_kind=icontract", "--report_all",
            "--per_condition_timeout=5", "--per_path_timeout=3",
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=1800, check=False,
        env={**os.environ, "ICONTRACT_SLOW": "1"},
    )  # fmt: skip
    reports = [REPORT.match(line) for line in completed.stdout.splitlines()]
    errors = [match[0] for match in reports if match and match["level"] == "error"]
    assert errors == [], "CrossHair found counterexamples:\n" + "\n".join(errors)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    tree = ast.parse((ROOT / "kernel" / "transitions.py").read_text(encoding="utf-8"))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    confirmed = {
        int(match["line"]) for match in reports if match and "Confirmed over all paths" in match["message"]
    }
    for lemma, postconditions in LEMMAS.items():
        # CrossHair reports a condition on the line where its lambda starts, inside the decorators.
        node = functions[lemma]
        decorators = range(min(decorator.lineno for decorator in node.decorator_list), node.lineno)
        proven = sorted(line for line in confirmed if line in decorators)
        assert len(proven) == postconditions, f"{lemma}: lines {proven} confirmed over all paths"
