"""The reference model (`stateful_tests/reference.py`) as a process, for `bench/perf.py`'s row 1:
`python bench/reference_replay.py FILE` prints each result, then each account's view, one JSON line
each, as `ppk replay --show FILE` prints them (the messages of refusals are worded in the model's own
way). It imports the model and the standard library only, so its start-up is the interpreter's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ppk.stateful_tests.reference import ReferenceBook, replay_bytes


def main() -> int:
    book = ReferenceBook()
    out = sys.stdout
    for result in replay_bytes(Path(sys.argv[1]).read_bytes(), book):
        out.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
    for view in book.views():
        out.write(json.dumps(view, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
