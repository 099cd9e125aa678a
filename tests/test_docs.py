"""docs/spec.md stays true: its code links land on their targets and every cited anchor exists."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

from ppk.adapters.audit import CHECKS

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec.md"


def _spec_links_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("spec_links", ROOT / "docs" / "spec_links.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _anchors() -> set[str]:
    return set(re.findall(r'<a id="([\w-]+)"></a>', SPEC.read_text(encoding="utf-8")))


def test_spec__code_links_land_on_their_targets() -> None:
    spec_links = _spec_links_module()
    text = SPEC.read_text(encoding="utf-8")
    assert spec_links.LINK.search(text), "the spec links to no code"
    assert spec_links.stale_links(text) == [], "run: python docs/spec_links.py --fix"


def test_spec__every_anchor_cited_in_code_exists() -> None:
    anchors = _anchors()
    cited: dict[str, set[str]] = {}
    for path in [*ROOT.glob("kernel/*.py"), *ROOT.glob("adapters/*.py")]:
        for anchor in re.findall(r"spec\.md#([\w-]+)", path.read_text(encoding="utf-8")):
            cited.setdefault(anchor, set()).add(path.name)
    assert cited, "no code cites the spec"
    missing = {anchor: files for anchor, files in cited.items() if anchor not in anchors}
    assert missing == {}


def test_spec__every_invariant_erratum_and_command_has_an_anchor() -> None:
    expected = {f"i{number}" for number in range(1, 11)} | {f"e{number}" for number in range(1, 11)}
    expected |= {"open_account", "fund", "record_balance", "settle", "set_shares", "confirm_payout"}
    expected |= {"rounding", "split", "limits", "fields", "malformed", "amount-grammar", "precedence"}
    expected |= {"idempotency", "storage", "encoding"}
    assert expected - _anchors() == set()


def test_spec__internal_links_name_existing_anchors() -> None:
    text = SPEC.read_text(encoding="utf-8")
    targets = set(re.findall(r"\]\(#([\w-]+)\)", text))
    assert targets, "the spec has no internal links"
    assert targets - _anchors() == set()


def test_readme__embedding_example_runs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_worked_example__ppk_replay_prints_the_shipped_output() -> None:
    """`ppk replay --show` on the worked example prints examples/worked.out.jsonl, byte for byte."""
    completed = subprocess.run(
        ["ppk", "replay", "--show", "examples/worked.jsonl"], cwd=ROOT, capture_output=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (ROOT / "examples" / "worked.out.jsonl").read_bytes()


def test_quickstart__is_two_commands_the_demo_then_the_tests() -> None:
    """The README's quickstart: one command installs ppk and runs `ppk demo` (tests/test_readable.py
    runs the demo itself), the other runs the tests, with the command CI runs."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quickstart", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == [
        "pip install -e '.[dev]' --config-settings editable_mode=strict && ppk demo",
        "python -m pytest",
    ]
    assert "\npython -m pytest\n" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_apply__then_show_print_the_shipped_output(tmp_path: Path) -> None:
    """`ppk apply examples/worked.jsonl` in a fresh folder: ppk.db is made there, the results are the
    shipped ones, `ppk show --json` the shipped view; exit 1 (two lines are rejected, as the example
    intends), and the closing line on stderr counts them."""
    worked = str(ROOT / "examples" / "worked.jsonl")
    shipped = (ROOT / "examples" / "worked.out.jsonl").read_bytes().splitlines(keepends=True)
    applied = subprocess.run(["ppk", "apply", worked], cwd=tmp_path, capture_output=True, check=False)
    assert applied.returncode == 1
    assert (
        applied.stderr
        == b"ppk apply: 10 lines: 7 applied, 1 duplicate, 2 rejected (payment_exceeds_payable 2)\n"
    )
    assert (tmp_path / "ppk.db").is_file()
    shown = subprocess.run(["ppk", "show", "--json"], cwd=tmp_path, capture_output=True, check=False)
    assert (shown.returncode, shown.stderr) == (0, b"")
    assert applied.stdout.splitlines(keepends=True) + shown.stdout.splitlines(keepends=True) == shipped


def test_audit_md__its_table_of_checks_is_the_order_a_report_lists_them() -> None:
    text = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    table = text[text.index("| check | finding when |") : text.index("The audit reads the whole database")]
    named = re.findall(r"^\| `(\w+)`(?: … `(\w+)`)? \|", table, flags=re.MULTILINE)
    checks: list[str] = []
    for first, last in named:
        if last:  # `I1` … `I10`
            checks += [f"I{n}" for n in range(int(first[1:]), int(last[1:]) + 1)]
        else:
            checks.append(first)
    assert [*checks, "expect"] == list(CHECKS)
    assert "by check, in the order of the table above, and `expect` last" in text
