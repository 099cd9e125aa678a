"""The mutation score of docs/verification.md#mutation-score, from the session databases of run.sh.

    python bench/mutation/score.py WORK

A mutant counts as killed by the model-checking suite if session a, a2, a3 or c killed it, and by the
whole suite if any session did. Mutants listed in equivalent.txt are left out of both denominators,
each entry placed in the source of the commit the sessions ran (WORK/commit, which run.sh writes; see
equivalent.py); a listed mutant that some session killed is an error in the list, and so (when every
mutant ran, not a sample) is an entry that names no mutant. Prints a table per module and every
survivor that is not listed.

When run.sh scored a seeded sample (SAMPLE=N: session a's database has a table population, each
module's count of mutants and how many were sampled), each score also gets its 95 % interval: Wilson's
per module, and for all modules together the stratified estimate (each module weighted by its estimated
count of non-equivalent mutants) with a normal interval on Agresti-Coull's adjusted proportions (so
that a module where every sampled mutant was killed still counts as uncertain), finite population
corrected.

Each survivor of the model-checking suite that `tests/` killed is printed with the tests it failed:
read them before counting the kill.
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import equivalent as equivalent_list  # bench/mutation/equivalent.py, beside this file

MODEL_CHECKING = ("a", "a2", "a3", "c")
WHOLE = (*MODEL_CHECKING, "b")
Key = tuple[str, str, int]


def outcomes(database: Path) -> dict[Key, tuple[str, int, int, str]]:
    """Each mutant that ran: its key, and (outcome, line, column, diff)."""
    query = (
        "select m.module_path, m.operator_name, m.occurrence, r.test_outcome, m.start_pos_row, "
        "m.start_pos_col, r.diff "
        "from mutation_specs m join work_results r using(job_id) where r.test_outcome is not null "
        "and r.test_outcome != 'SKIPPED'"
    )
    with sqlite3.connect(database) as connection:
        return {
            (module, operator, occurrence): (outcome, row, column, diff or "")
            for module, operator, occurrence, outcome, row, column, diff in connection.execute(query)
        }


def failing_tests(database: Path) -> dict[Key, list[str]]:
    """Each killed mutant of a session: the tests its run failed (pytest's FAILED and ERROR lines), or
    what its output said instead (a timeout has no test). A kill must be read before it is counted:
    a test that failed for another reason than the mutant kills it all the same (the seed-79 sample's
    session b counted a cluster test that compared /tmp before and after, beside another worker)."""
    query = (
        "select m.module_path, m.operator_name, m.occurrence, r.output "
        "from mutation_specs m join work_results r using(job_id) where r.test_outcome = 'KILLED'"
    )
    failed: dict[Key, list[str]] = {}
    with sqlite3.connect(database) as connection:
        for module, operator, occurrence, output in connection.execute(query):
            lines = (output or "").splitlines()
            tests = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
            failed[(module, operator, occurrence)] = tests or [(lines[-1] if lines else "no output")[:100]]
    return failed


def run_source(work: Path) -> equivalent_list.Source:
    """The scored modules' lines at the commit the sessions ran (run.sh writes it to WORK/commit),
    read from this repository; in this tree if no commit was written (runs before it was)."""
    commit_file = work / "commit"
    if not commit_file.is_file():
        print(f"{commit_file}: no commit recorded; equivalent.txt's anchors are placed in this tree")
        return equivalent_list.here
    commit = commit_file.read_text(encoding="utf-8").strip()

    def source(module: str) -> list[str] | None:
        shown = subprocess.run(
            ["git", "-C", str(equivalent_list.ROOT), "show", f"{commit}:{module}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return shown.stdout.splitlines() if shown.returncode == 0 else None

    return source


def population(database: Path) -> dict[str, tuple[int, int]]:
    """Each module's (mutants, sampled) when session a ran a sample, else nothing."""
    with sqlite3.connect(database) as connection:
        if not connection.execute("select 1 from sqlite_master where name = 'population'").fetchone():
            return {}
        return {module: (n, k) for module, n, k in connection.execute("select * from population")}


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95 % interval of a proportion killed / n."""
    if n == 0:
        return 0.0, 1.0
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified(strata: list[tuple[int, int, int, int]], z: float = 1.96) -> tuple[float, float, float]:
    """Estimate and 95 % interval over modules, each (mutants, sampled, equivalent, killed)."""
    weights = [mutants * (sampled - equivalent) / sampled for mutants, sampled, equivalent, _ in strata]
    total = sum(weights)
    estimate, variance = 0.0, 0.0
    for weight, (mutants, sampled, equivalent, killed) in zip(weights, strata, strict=True):
        scored = sampled - equivalent
        if scored == 0:
            continue
        estimate += weight / total * killed / scored
        adjusted = (killed + 2) / (scored + 4)
        correction = 1 - sampled / mutants
        variance += (weight / total) ** 2 * adjusted * (1 - adjusted) / (scored + 4) * correction
    half = z * math.sqrt(variance)
    return estimate, max(0.0, estimate - half), min(1.0, estimate + half)


def main(work: Path) -> int:
    sessions = {
        name: outcomes(work / f"{name}.sqlite") for name in WHOLE if (work / f"{name}.sqlite").exists()
    }
    if "a" not in sessions:
        print(f"score.py: {str(work)!r} holds no a.sqlite: name a run.sh WORK folder", file=sys.stderr)
        return 2
    every = sessions["a"]
    killed_by = {
        key: {name for name, results in sessions.items() if results.get(key, ("",))[0] == "KILLED"}
        for key in every
    }
    listed = equivalent_list.Listed(run_source(work))
    mutants = {
        key: equivalent_list.Mutant(
            module=key[0],
            row=row,
            column=column,
            operator=key[1],
            occurrence=key[2],
            mutated=equivalent_list.mutated_line(diff),
        )
        for key, (_, row, column, diff) in every.items()
    }
    equivalent = {key for key, mutant in mutants.items() if listed.listing(mutant) is not None}
    errors = [f"listed as equivalent but killed: {key}" for key in equivalent if killed_by[key]]
    sampled = population(work / "a.sqlite")
    scored_modules = {key[0] for key in every}
    for entry in listed.entries:
        # A line about another module, or a mutant a sample left out, names nothing here.
        if sampled or entry.module not in scored_modules:
            continue
        if not any(listed.names(entry, mutant) for mutant in mutants.values()):
            errors.append(f"equivalent.txt names no mutant: {entry.module}:{entry.row} {entry.operator}")
    table: dict[str, Counter[str]] = {}
    for key in every:
        counts = table.setdefault(key[0], Counter())
        counts["mutants"] += 1
        if key in equivalent:
            counts["equivalent"] += 1
            continue
        counts["model-checking"] += bool(killed_by[key] & set(MODEL_CHECKING))
        counts["whole"] += bool(killed_by[key])
    total: Counter[str] = sum(table.values(), Counter())
    top = {module.split("/")[0] for module in table}
    print(f"sessions: {', '.join(sessions)}")
    if sampled:
        print("sampled: " + ", ".join(f"{module} {k} of {n}" for module, (n, k) in sorted(sampled.items())))
    print("| module | mutants | equivalent | model-checking suite | whole suite |")
    print("|---|---|---|---|---|")

    def score(killed: int, scored: int) -> str:
        text = f"{killed} / {scored} = {100 * killed / scored:.1f} %" if scored else f"{killed} / 0"
        if sampled and scored:
            low, high = wilson(killed, scored)
            text += f" [{100 * low:.1f}, {100 * high:.1f}]"
        return text

    for module, counts in [*sorted(table.items()), (f"all of {'/, '.join(sorted(top))}/", total)]:
        scored = counts["mutants"] - counts["equivalent"]
        print(
            f"| {module} | {counts['mutants']} | {counts['equivalent']} | "
            f"{score(counts['model-checking'], scored)} | {score(counts['whole'], scored)} |"
        )
    if sampled:
        for suite in ("model-checking", "whole"):
            strata = [
                (sampled[module][0], counts["mutants"], counts["equivalent"], counts[suite])
                for module, counts in sorted(table.items())
            ]
            estimate, low, high = stratified(strata)
            print(
                f"{suite} suite, every mutant of the modules (stratified estimate): "
                f"{100 * estimate:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"
            )
    # A survivor of the model-checking suite was killed, if at all, by a session outside it.
    failed = {name: failing_tests(work / f"{name}.sqlite") for name in sessions if name not in MODEL_CHECKING}
    print(
        "\nnot killed by the model-checking suite, and not listed as equivalent (with what each kill failed):"
    )
    for key in sorted(every, key=lambda key: (key[0], every[key][1], every[key][2])):
        if key not in equivalent and not killed_by[key] & set(MODEL_CHECKING):
            diff = " | ".join(
                line.strip()[:100]
                for line in every[key][3].splitlines()
                if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
            )
            where = f"{key[0]}:{every[key][1]}:{every[key][2]} {key[1].split('/')[-1]}#{key[2]}"
            print(f"  {where} killed by {sorted(killed_by[key]) or '-'}: {diff}")
            for name in sorted(killed_by[key] & set(failed)):
                for test in failed[name].get(key, []):
                    print(f"    {name}: {test}")
    for error in errors:
        print(f"error: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ppk-mutation")))
