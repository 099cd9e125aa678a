"""What the benchmarks print: a Markdown table padded so that it reads as plain text too."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(header: Sequence[str], rows: list[tuple[str, ...]], right: Sequence[bool]) -> None:
    """A Markdown table, padded so that it reads as plain text too."""
    widths = [max(len(cells[i]) for cells in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(cells, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    print(line(header))
    print(
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    for cells in rows:
        print(line(cells))
