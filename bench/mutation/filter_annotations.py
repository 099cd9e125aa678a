"""Mark as skipped the mutants of a cosmic-ray session that fall inside a type annotation.

kernel/ starts every module with `from __future__ import annotations`, and attrs keeps field
annotations as strings, so a mutated annotation is never evaluated: such a mutant is equivalent by
construction. Type aliases (`Quantity: TypeAlias = int | InvalidAmount`) are values, not
annotations, and stay.

    python bench/mutation/filter_annotations.py SESSION.sqlite
"""

from __future__ import annotations

import ast
import pathlib
import sys

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult


def annotation_spans(path: pathlib.Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of every annotation, as (line, character column), line 1-based."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()

    def char_col(line: int, byte_col: int) -> int:
        return len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    spans = []
    for node in ast.walk(ast.parse(source)):
        annotations = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for a in annotations:
            assert a.end_lineno is not None and a.end_col_offset is not None
            spans.append(
                (
                    (a.lineno, char_col(a.lineno, a.col_offset)),
                    (a.end_lineno, char_col(a.end_lineno, a.end_col_offset)),
                )
            )
    return spans


def main(session: str) -> None:
    with use_db(session, WorkDB.Mode.open) as db:
        spans: dict[str, list] = {}
        skipped = 0
        for item in list(db.pending_work_items):
            for mutation in item.mutations:
                path = pathlib.Path(mutation.module_path)
                if str(path) not in spans:
                    spans[str(path)] = annotation_spans(path)
                start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
                if any(lo <= start and end <= hi for lo, hi in spans[str(path)]):
                    db.set_result(
                        item.job_id,
                        WorkResult(
                            output="Filtered: inside an annotation", worker_outcome=WorkerOutcome.SKIPPED
                        ),
                    )
                    skipped += 1
                    break
        print(f"skipped {skipped} mutants inside annotations")


if __name__ == "__main__":
    main(sys.argv[1])
