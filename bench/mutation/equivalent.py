"""The mutants equivalent.txt lists, found in a run of any commit; for score.py and run.sh.

    python bench/mutation/equivalent.py [--fix]

An entry is `MODULE:ROW:COLUMN OPERATOR[#OCCURRENCE]  WHY`, or, anchored,

    MODULE:ROW:COLUMN OPERATOR  `ORIGINAL` → `MUTATED`  WHY
    MODULE:ROW:COLUMN OPERATOR  `ORIGINAL` → (deleted)  WHY

ORIGINAL is the source line the mutant changes and MUTATED that line as the mutant writes it (both
stripped; spaces do not count, as cosmic-ray writes `row[ -1]`), or `(deleted)` for a mutant that
removes the line and writes none (a decorator removed). ROW is where ORIGINAL is in this
tree. A run is of some commit, where the line may be elsewhere: an anchored entry names, in the run's
source, the line reading ORIGINAL that is the same one among the lines reading it (the first, the
second, ...) as ROW is here, and there the mutant of OPERATOR at COLUMN that writes MUTATED.
(OCCURRENCE, cosmic-ray's count of an operator's mutants in a module, moves with every edit before
it, so anchored entries do without it.) The others name the mutant at ROW of the run's source, as
they were written: the kernel's, of the kernel runs they were written for (the last complete one at
cb24ab1; some of those lines have changed since).

Without arguments, checks that each anchored entry's ROW reads ORIGINAL here (tests/ runs this);
with --fix, moves a ROW that does not to the line that reads ORIGINAL: the one line, or, of several,
the one that is the same among them as ROW is in the commit checked out (HEAD).
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = Path(__file__).with_name("equivalent.txt")
ENTRY = re.compile(
    r"(?P<module>\S+):(?P<row>\d+):(?P<column>\d+) (?P<operator>[A-Za-z_]+)(?:#(?P<occurrence>\d+))?"
    r" +(?:`(?P<original>[^`]+)` → (?:`(?P<mutated>[^`]+)`|(?P<deleted>\(deleted\))) +)?(?P<why>\S.*)"
)

Source = Callable[[str], "list[str] | None"]
"""A module's lines (by its path, like `adapters/sql.py`) at some commit; None if it has none."""


def _bare(line: str) -> str:
    return "".join(line.split())


@dataclass(frozen=True)
class Entry:
    module: str
    row: int
    column: int
    operator: str
    occurrence: int | None
    original: str | None
    mutated: str | None
    why: str

    def ordinal(self, lines: list[str]) -> int | None:
        """Which of the lines reading ORIGINAL `lines`' ROW is (0 for the first); None if it reads
        something else."""
        if not 1 <= self.row <= len(lines) or lines[self.row - 1].strip() != self.original:
            return None
        return sum(line.strip() == self.original for line in lines[: self.row - 1])

    def rows_reading(self, lines: list[str]) -> list[int]:
        """The rows of `lines` that read ORIGINAL, in order."""
        return [n for n, line in enumerate(lines, 1) if line.strip() == self.original]

    def row_in(self, lines: list[str], ordinal: int) -> int | None:
        rows = self.rows_reading(lines)
        return rows[ordinal] if ordinal < len(rows) else None


def _entry(match: re.Match[str]) -> Entry:
    occurrence = match["occurrence"]
    return Entry(
        module=match["module"],
        row=int(match["row"]),
        column=int(match["column"]),
        operator=match["operator"],
        occurrence=None if occurrence is None else int(occurrence),
        original=match["original"],
        mutated="" if match["deleted"] else match["mutated"],
        why=match["why"],
    )


def entries(path: Path = LIST) -> list[Entry]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_entry(match) for line in lines if (match := ENTRY.fullmatch(line))]


@functools.cache
def committed_lines(module: str) -> list[str] | None:
    """A module's lines as committed at HEAD (None if it has none there); read once a module."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"HEAD:{module}"], capture_output=True, text=True, check=False
    )
    return shown.stdout.splitlines() if shown.returncode == 0 else None


def here(module: str) -> list[str] | None:
    """A module's lines in this tree."""
    path = ROOT / module
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else None


@dataclass(frozen=True)
class Mutant:
    """A mutant of a run, as cosmic-ray's session database has it (`mutated`: the line it writes,
    from its diff, if it ran)."""

    module: str
    row: int
    column: int
    operator: str
    occurrence: int
    mutated: str | None


class Listed:
    """equivalent.txt's entries, placed in the source of one run (`source`)."""

    def __init__(self, source: Source, listed: list[Entry] | None = None) -> None:
        self.entries = entries() if listed is None else listed
        self.rows: dict[Entry, int | None] = {}
        # Each module read once, here and in the run (score.py's `source` runs `git show`).
        modules = {entry.module for entry in self.entries if entry.original is not None}
        here_lines = {module: here(module) for module in modules}
        run_lines = {module: source(module) for module in modules}
        for entry in self.entries:
            if entry.original is None:
                self.rows[entry] = entry.row
                continue
            ours, theirs = here_lines[entry.module], run_lines[entry.module]
            ordinal = None if ours is None else entry.ordinal(ours)
            self.rows[entry] = None if ordinal is None or theirs is None else entry.row_in(theirs, ordinal)

    def names(self, entry: Entry, mutant: Mutant) -> bool:
        """Whether `entry` names this mutant of the run."""
        if (mutant.module, mutant.row, mutant.column) != (entry.module, self.rows[entry], entry.column):
            return False
        if not mutant.operator.endswith("/" + entry.operator):
            return False
        if entry.mutated == "":  # the line deleted: the mutant's diff adds none
            return mutant.mutated is None
        if entry.mutated is not None:
            return mutant.mutated is not None and _bare(mutant.mutated) == _bare(entry.mutated)
        return entry.occurrence is None or entry.occurrence == mutant.occurrence

    def listing(self, mutant: Mutant) -> Entry | None:
        """The entry that names `mutant`, if one does."""
        return next((entry for entry in self.entries if self.names(entry, mutant)), None)


def mutated_line(diff: str | None) -> str | None:
    """The line a mutant writes, from cosmic-ray's diff of it (one line changed)."""
    if not diff:
        return None
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if len(added) == 1 else None


def problems(fix: bool = False) -> list[str]:
    """Anchored entries whose ROW does not read ORIGINAL here (moved, with `fix`, where one line does)."""
    found: list[str] = []
    lines = LIST.read_text(encoding="utf-8").splitlines(keepends=True)
    for n, line in enumerate(lines):
        match = ENTRY.fullmatch(line.rstrip("\n"))
        if match is None or match["original"] is None:
            continue
        entry = _entry(match)
        source = here(entry.module)
        if source is None:
            found.append(f"equivalent.txt:{n + 1}: no module {entry.module}")
            continue
        if entry.ordinal(source) is not None:
            continue
        rows = entry.rows_reading(source)
        moved = rows[0] if len(rows) == 1 else None
        if len(rows) > 1:  # of several, the one that is the same among them as ROW is at HEAD
            committed = committed_lines(entry.module)
            ordinal = None if committed is None else entry.ordinal(committed)
            moved = None if ordinal is None else entry.row_in(source, ordinal)
        if fix and moved is not None:
            lines[n] = line.replace(f"{entry.module}:{entry.row}:", f"{entry.module}:{moved}:", 1)
            continue
        if moved is not None:
            where = f"row {moved} does: --fix moves it there"
        else:
            where = f"rows {rows} do: set ROW by hand" if rows else "no line does: the code changed"
        found.append(
            f"equivalent.txt:{n + 1}: {entry.module}:{entry.row} does not read `{entry.original}` ({where})"
        )
    if fix:
        LIST.write_text("".join(lines), encoding="utf-8")
    return found


if __name__ == "__main__":
    errors = problems(fix="--fix" in sys.argv[1:])
    for error in errors:
        print(error)
    sys.exit(1 if errors else 0)
