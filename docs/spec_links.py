"""Keep the line anchors of docs/spec.md's code links true: `python docs/spec_links.py [--fix]`.

A link is written ``[`name`](../path.py#L12)`` and must land on the line that defines `name`
(`def name`, `class name` or `name =`), or ``[`"I5"`](../path.py#L12)`` and must land on the one
line holding that literal. `--fix` rewrites every anchor to where its target is now; without it the
script lists the stale ones and exits 1 (a test runs it that way).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SPEC = DOCS / "spec.md"
LINK = re.compile(r"\[`(?P<target>[^`]+)`\]\((?P<path>\.\./[\w./-]+\.py)#L(?P<line>\d+)\)")


def target_line(path: Path, target: str) -> int | None:
    """The 1-based line of `target` in `path`, or None if it is missing or not unique."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if target.startswith('"'):
        found = [number for number, line in enumerate(lines, 1) if target in line]
        return found[0] if len(found) == 1 else None
    *owners, name = target.split(".")
    start = 0
    for owner in owners:
        start = _first_definition(lines, owner, start)
        if start < 0:
            return None
    found = [number for number in _definitions(lines, name, start, nested=bool(owners))]
    return found[0] if len(found) == 1 else None


def _definitions(lines: list[str], name: str, start: int, *, nested: bool) -> list[int]:
    """The 1-based lines from `start` on that define `name` (inside a class when `nested`)."""
    indent = r"\s+" if nested else ""
    definition = re.compile(
        rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b|^{indent}{re.escape(name)}\s*[:=]"
    )
    found = [number for number, line in enumerate(lines[start:], start + 1) if definition.match(line)]
    return found[:1] if nested else found


def _first_definition(lines: list[str], name: str, start: int) -> int:
    found = _definitions(lines, name, start, nested=False)
    return found[0] if found else -1


def stale_links(text: str) -> list[str]:
    """Every link whose anchor misses its target, described."""
    problems = []
    for match in LINK.finditer(text):
        path = (DOCS / match["path"]).resolve()
        if not path.exists():
            problems.append(f"{match[0]}: no file {match['path']}")
            continue
        line = target_line(path, match["target"])
        if line is None:
            problems.append(f"{match[0]}: {match['target']} is not defined exactly once")
        elif line != int(match["line"]):
            problems.append(f"{match[0]}: {match['target']} is on line {line}")
    return problems


def fixed(text: str) -> str:
    """The text with every anchor moved to where its target is now."""

    def move(match: re.Match[str]) -> str:
        line = target_line((DOCS / match["path"]).resolve(), match["target"])
        return match[0] if line is None else f"[`{match['target']}`]({match['path']}#L{line})"

    return LINK.sub(move, text)


def main() -> int:
    text = SPEC.read_text(encoding="utf-8")
    if "--fix" in sys.argv[1:]:
        SPEC.write_text(fixed(text), encoding="utf-8")
        text = SPEC.read_text(encoding="utf-8")
    problems = stale_links(text)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
