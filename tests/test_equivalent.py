"""bench/mutation/equivalent.txt names its mutants in a run of any commit (bench/mutation/equivalent.py).

The list leaves mutants out of the adapters' mutation score (docs/verification.md#mutation-score): an
entry whose row went stale would name another mutant, or none, without a word. The adapters' entries
are anchored on the line they change, so these tests hold their rows to this tree, and the placement
of an entry in a run's source to the line it was written about.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench_module(name: str) -> ModuleType:
    """A script of bench/mutation/, imported under its name (score.py imports equivalent.py so)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "mutation" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def equivalent() -> ModuleType:
    return bench_module("equivalent")


def test_each_anchored_entry_s_row_reads_its_line_in_this_tree(equivalent: ModuleType) -> None:
    """`python bench/mutation/equivalent.py --fix` moves the rows that moved with the code."""
    assert equivalent.problems() == []


def test_each_entry_of_the_adapters_is_anchored(equivalent: ModuleType) -> None:
    unanchored = [
        entry
        for entry in equivalent.entries()
        if entry.module.startswith("adapters/") and (entry.original is None or entry.mutated is None)
    ]
    assert unanchored == []
    assert any(entry.module.startswith("adapters/") for entry in equivalent.entries())


def test_no_mutant_is_listed_twice(equivalent: ModuleType) -> None:
    """Session a runs a listed mutant all the same, and one listed again when a sample draws it a
    second time would count twice in what the list says (jsonl.py 310 was, from the seed-61 sample,
    and four of the seed-71 sample's six were, for an hour)."""
    seen: dict[tuple[object, ...], int] = {}
    twice = []
    for n, entry in enumerate(equivalent.entries(), 1):
        mutant = (entry.module, entry.row, entry.column, entry.operator, entry.occurrence)
        mutant += (
            entry.original and equivalent._bare(entry.original),
            entry.mutated and equivalent._bare(entry.mutated),
        )
        if mutant in seen:
            twice.append(f"entries {seen[mutant]} and {n}: {entry.module}:{entry.row} {entry.operator}")
        seen.setdefault(mutant, n)
    assert twice == []


def test_an_entry_is_placed_on_its_own_line_of_several_alike_wherever_they_moved(
    equivalent: ModuleType,
) -> None:
    """sql.py has `for attempt in range(RETRIES_MAX + 1):` twice; the entry is about the second
    (`_one`'s): in a run whose source has three lines more above, it names the second, three rows
    down, and only the mutant that writes its line (spaces aside, as cosmic-ray writes them)."""
    line = "for attempt in range(RETRIES_MAX + 1):"
    here = equivalent.here("adapters/sql.py")
    rows = [n for n, text in enumerate(here, 1) if text.strip() == line]
    assert len(rows) == 2
    entry = equivalent.Entry(
        module="adapters/sql.py",
        row=rows[1],
        column=here[rows[1] - 1].index("1"),
        operator="NumberReplacer",
        occurrence=None,
        original=line,
        mutated="for attempt in range(RETRIES_MAX + 0):",
        why="a test",
    )
    moved = ["", "", "", *here]
    listed = equivalent.Listed(lambda module: moved if module == "adapters/sql.py" else None, [entry])
    assert listed.rows[entry] == rows[1] + 3

    def mutant(row: int, mutated: str | None) -> object:
        return equivalent.Mutant(
            module="adapters/sql.py",
            row=row,
            column=entry.column,
            operator="core/NumberReplacer",
            occurrence=89,
            mutated=mutated,
        )

    indent = " " * 8
    assert listed.listing(mutant(rows[1] + 3, indent + "for attempt in range(RETRIES_MAX +  0):"))
    assert not listed.listing(mutant(rows[1] + 3, indent + "for attempt in range(RETRIES_MAX + 2):"))
    assert not listed.listing(mutant(rows[0] + 3, indent + "for attempt in range(RETRIES_MAX + 0):"))
    assert not listed.listing(mutant(rows[1] + 3, None))


def test_an_entry_of_a_deleted_line_names_only_the_mutant_that_deletes_it(equivalent: ModuleType) -> None:
    """A decorator removed writes no line: `(deleted)` in place of MUTATED. Such an entry names the
    mutant of its operator at its row whose diff adds nothing, and not one that writes a line there."""
    (listed_entry,) = [entry for entry in equivalent.entries() if entry.mutated == ""][:1]
    text = f"{listed_entry.module}:{listed_entry.row}:{listed_entry.column} {listed_entry.operator}  "
    line = text + f"`{listed_entry.original}` → (deleted)  why"
    match = equivalent.ENTRY.fullmatch(line)
    assert match is not None and equivalent._entry(match).mutated == ""
    listed = equivalent.Listed(equivalent.here, [listed_entry])

    def mutant(row: int, operator: str, diff: str) -> object:
        return equivalent.Mutant(
            module=listed_entry.module,
            row=row,
            column=listed_entry.column,
            operator=f"core/{operator}",
            occurrence=2,
            mutated=equivalent.mutated_line(diff),
        )

    deleted = f"--- a\n+++ b\n@@ -1,3 +1,0 @@\n-\n-\n-{listed_entry.original}\n"
    assert listed.listing(mutant(listed_entry.row, listed_entry.operator, deleted)) == listed_entry
    assert not listed.listing(mutant(listed_entry.row + 1, listed_entry.operator, deleted))
    assert not listed.listing(mutant(listed_entry.row, "NumberReplacer", deleted))
    written = f"--- a\n+++ b\n@@ -1 +1 @@\n-{listed_entry.original}\n+@functools.lru_cache\n"
    assert not listed.listing(mutant(listed_entry.row, listed_entry.operator, written))


def test_an_entry_whose_line_a_run_does_not_have_names_nothing(equivalent: ModuleType) -> None:
    entry = next(entry for entry in equivalent.entries() if entry.original is not None)
    listed = equivalent.Listed(lambda module: ["# another module"], [entry])
    assert listed.rows[entry] is None


def test_a_stale_row_is_found_and_fix_moves_it_to_the_one_line_that_reads_so(
    equivalent: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "BUSY_TIMEOUT_S: Final = 60.0"
    row = next(n for n, text in enumerate(equivalent.here("adapters/sql.py"), 1) if text == line)
    listing = tmp_path / "equivalent.txt"
    mutated = "BUSY_TIMEOUT_S: Final = 61.0"
    listing.write_text(
        f"# a comment\nadapters/sql.py:{row + 5}:24 NumberReplacer  `{line}` → `{mutated}`  60 or 61 s\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(equivalent, "LIST", listing)
    stale = f"adapters/sql.py:{row + 5} does not read `{line}`"
    assert equivalent.problems() == [f"equivalent.txt:2: {stale} (row {row} does: --fix moves it there)"]
    assert equivalent.problems(fix=True) == []
    assert f"adapters/sql.py:{row}:24 " in listing.read_text(encoding="utf-8")
    assert equivalent.problems() == []


def test_fix_moves_a_stale_row_to_the_same_one_of_several_alike_lines_as_at_head(
    equivalent: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "if len(rows) < PAGE_ROWS:"
    committed = ["a", line, "b", line, "c"]  # HEAD: the entry's row 4 is the second of the two
    moved = ["x", "a", line, "y", "b", line, "c"]  # here: they moved to rows 3 and 6
    monkeypatch.setattr(equivalent, "committed_lines", lambda module: committed)
    monkeypatch.setattr(equivalent, "here", lambda module: moved)
    listing = tmp_path / "equivalent.txt"
    operator = "ReplaceComparisonOperator_Lt_NotEq"
    mutated = line.replace("<", "!=")
    listing.write_text(f"adapters/sql.py:4:25 {operator}  `{line}` → `{mutated}`  why\n", encoding="utf-8")
    monkeypatch.setattr(equivalent, "LIST", listing)
    assert equivalent.problems() == [
        f"equivalent.txt:1: adapters/sql.py:4 does not read `{line}` (row 6 does: --fix moves it there)"
    ]
    assert equivalent.problems(fix=True) == []
    assert listing.read_text(encoding="utf-8").startswith("adapters/sql.py:6:25 ")
    # With HEAD's row on neither line, which of the two it is cannot be told: set by hand.
    monkeypatch.setattr(equivalent, "committed_lines", lambda module: ["a", "b"])
    listing.write_text(listing.read_text(encoding="utf-8").replace(":6:25 ", ":4:25 "), encoding="utf-8")
    assert equivalent.problems(fix=True) == [
        f"equivalent.txt:1: adapters/sql.py:4 does not read `{line}` (rows [3, 6] do: set ROW by hand)"
    ]


def test_score_names_the_tests_each_kill_failed_or_what_its_output_said(
    equivalent: ModuleType, tmp_path: Path
) -> None:
    """score.py prints, beside each survivor of the model-checking suite that `tests/` killed, the
    tests that kill failed: a test failing for another reason than the mutant (the seed-79 sample's
    cluster test, beside another worker) must show before the kill is counted."""
    score = bench_module("score")
    database = tmp_path / "b.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("create table mutation_specs (job_id, module_path, operator_name, occurrence)")
        connection.execute("create table work_results (job_id, test_outcome, output)")
        two_failed = (
            "x\nFAILED tests/test_a.py::test_one - AssertionError: no\nERROR tests/test_b.py\n1 failed"
        )
        runs = [
            ("1", "adapters/a.py", "op", 0, "KILLED", two_failed),
            ("2", "adapters/a.py", "op", 1, "KILLED", "timeout"),
            ("3", "adapters/a.py", "op", 2, "SURVIVED", "FAILED tests/test_c.py::test_not_a_kill"),
            ("4", "adapters/b.py", "op", 0, "KILLED", ""),
        ]
        for job, module, operator, occurrence, outcome, output in runs:
            connection.execute(
                "insert into mutation_specs values (?, ?, ?, ?)", (job, module, operator, occurrence)
            )
            connection.execute("insert into work_results values (?, ?, ?)", (job, outcome, output))
    assert score.failing_tests(database) == {
        ("adapters/a.py", "op", 0): ["FAILED tests/test_a.py::test_one", "ERROR tests/test_b.py"],
        ("adapters/a.py", "op", 1): ["timeout"],
        ("adapters/b.py", "op", 0): ["no output"],
    }
