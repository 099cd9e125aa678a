"""spec.md#proofs: CrossHair confirms every postcondition of the rounding lemmas over all paths, and
refutes the seed's rules kept as known-bad twins in stateful_tests/seed_rules.py.

CrossHair runs in a subprocess, one function per run (the transitions module also holds `decide` and
`fold`, which it is not asked to prove). The timeouts are generous so a loaded machine cannot turn a
proof into a timeout; nothing here measures time.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ppk.kernel import transitions

ROOT = Path(__file__).resolve().parent.parent
SEED_RULES = ROOT / "stateful_tests" / "seed_rules.py"
TRANSITIONS = Path(transitions.__file__).resolve()

CROSSHAIR = [
    sys.executable,
    "-m",
    "crosshair",
    "check",
    "--analysis_kind=icontract",
    "--report_all",
    "--per_condition_timeout=120",
    "--per_path_timeout=60",
]
REPORT = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<level>info|error): (?P<message>.*)$")
CONFIRMED = "Confirmed over all paths."


def crosshair(target: str) -> tuple[int, dict[int, list[tuple[str, str]]]]:
    """Run `crosshair check` on one target; its exit status and its reports by line."""
    completed = subprocess.run(
        [*CROSSHAIR, target], capture_output=True, text=True, cwd=ROOT, timeout=900, check=False
    )
    reports: dict[int, list[tuple[str, str]]] = {}
    for line in completed.stdout.splitlines():
        match = REPORT.match(line)
        assert match, f"unexpected crosshair output: {line!r}\n{completed.stderr}"
        reports.setdefault(int(match["line"]), []).append((match["level"], match["message"]))
    assert completed.returncode in (0, 1), completed.stderr
    return completed.returncode, reports


def conditions(path: Path, function: str) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """The preconditions of `function` in `path`, as source; and each postcondition by its
    description: the line CrossHair reports it on (where its lambda starts) and its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (node,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    requires = []
    ensures = {}
    for decorator in node.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        kind = ast.unparse(decorator.func)
        condition = decorator.args[0]
        if kind == "icontract.require":
            requires.append(ast.unparse(condition))
        elif kind == "icontract.ensure":
            (description,) = [arg.value for arg in decorator.args[1:] if isinstance(arg, ast.Constant)]
            ensures[description] = (condition.lineno, ast.unparse(condition))
    return requires, ensures


def def_line(path: Path, function: str) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (node,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    return node.lineno


# What each lemma is proved to do, as written (normalized by ast.unparse): a proof of a weakened
# postcondition, or under a strengthened precondition, proves less than spec.md#rounding claims, so
# changing either must change this table too.
LEMMAS = {
    "payable_minor": (
        [
            "lambda remaining_minor, total_share_bp: "
            "0 <= remaining_minor <= AMOUNT_MINOR_MAX and 0 <= total_share_bp <= BP_PER_WHOLE",
        ],
        {
            "nothing is negative, and never more than the loss": (
                "lambda result, remaining_minor: 0 <= result <= remaining_minor"
            ),
        },
    ),
    "capital_closed_minor": (
        [
            "lambda payment_minor, remaining_minor, total_share_bp: "
            "0 < total_share_bp <= BP_PER_WHOLE and 0 < remaining_minor <= AMOUNT_MINOR_MAX "
            "and (0 < payment_minor < remaining_minor * total_share_bp // BP_PER_WHOLE)",
        ],
        {
            "E4: a payment closes some capital, never over-closes, and leaves no stuck loss": (
                "lambda result, remaining_minor, total_share_bp: "
                "0 < result < remaining_minor "
                "and (remaining_minor - result) * total_share_bp // BP_PER_WHOLE > 0"
            ),
        },
    ),
    "my_share_minor": (
        [
            "lambda payment_minor, my_share_bp, company_share_bp: "
            "0 < payment_minor <= AMOUNT_MINOR_MAX and my_share_bp >= 0 and (company_share_bp >= 0) "
            "and (0 < my_share_bp + company_share_bp <= BP_PER_WHOLE)",
        ],
        {
            "nothing is negative, and my share is part of the payment": (
                "lambda result, payment_minor: 0 <= result <= payment_minor"
            ),
        },
    ),
}
"""Each lemma's conditions are one precondition and one postcondition, each the conjunction of the
claims spec.md#rounding and spec.md#split make (icontract pays per condition: docs/performance.md)."""


@pytest.mark.parametrize("lemma", list(LEMMAS))
def test_proofs__the_lemmas_claim_what_the_spec_says(lemma) -> None:
    requires, ensures = conditions(TRANSITIONS, lemma)
    expected_requires, expected_ensures = LEMMAS[lemma]
    assert sorted(requires) == sorted(expected_requires)
    assert {description: source for description, (_, source) in ensures.items()} == expected_ensures


@pytest.mark.parametrize("lemma", list(LEMMAS))
def test_proofs__every_postcondition_of_a_lemma_is_confirmed_over_all_paths(lemma) -> None:
    _, ensures = conditions(TRANSITIONS, lemma)
    assert len(ensures) == len(LEMMAS[lemma][1]) == 1
    returncode, reports = crosshair(f"ppk.kernel.transitions.{lemma}")
    assert returncode == 0, reports
    assert reports == {line: [("info", CONFIRMED)] for line, _ in ensures.values()}


# Each twin, and what CrossHair must say of each of its postconditions.
TWINS = {
    "capital_closed_half_up_minor": {"E4: no stuck loss": "error", "E4: never over-closes": "info"},
    "shares_of_capital_closed_minor": {"E1: shares add up to capital closed": "error"},
}


@pytest.mark.parametrize("twin", list(TWINS))
def test_proofs__crosshair_refutes_each_known_bad_twin(twin) -> None:
    _, ensures = conditions(SEED_RULES, twin)
    lines = {description: line for description, (line, _) in ensures.items()}
    assert set(lines) == set(TWINS[twin])
    returncode, reports = crosshair(f"{SEED_RULES}:{def_line(SEED_RULES, twin)}")
    assert returncode == 1, reports
    assert set(reports) == set(lines.values()), reports
    for description, level in TWINS[twin].items():
        ((reported_level, message),) = reports[lines[description]]
        assert reported_level == level, (description, message)
        if level == "error":
            assert message.startswith(f"false when calling {twin}("), message
        else:
            # Rounding half up never over-closes a partial payment: what it breaks is E4's other half.
            assert message == CONFIRMED


def test_proofs__seed_rules_import_only_stdlib_icontract_and_kernel_constants() -> None:
    tree = ast.parse(SEED_RULES.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None
            imported.add(node.module)
            if node.module == "ppk.kernel.state":
                assert all(alias.name.isupper() for alias in node.names), "constants only"
    assert imported - sys.stdlib_module_names <= {"icontract", "ppk.kernel.state"}
