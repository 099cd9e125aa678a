"""The JSON Lines stream that `bench/perf.py` feeds to whole processes: `ppk replay`, `ppk apply` and the
reference model read the same bytes.

Fund, record_balance and settle on many accounts (each opened first), drawn with the mix's weights
(bench/mix.py) restricted to those three types, refusals of those types included; every command is
decided by a `MemoryStore` as it is drawn (bench/store.py's `Driver`), so each kind's verdict is
checked, not assumed. Deterministic: the same arguments give the same bytes.

A long file is `copies` copies of one stream, each on its own accounts and ids, so that writing it takes
the memory of one copy: `python -O bench/stream.py PATH --commands 100000 --copies 10`.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from mix import WEIGHTS_WITH_LOSS, WEIGHTS_WITHOUT_LOSS, Kind, require
from store import Driver

from ppk.adapters.jsonl import command_object, encode_line
from ppk.adapters.store import MemoryStore

SEED: Final = 20_251_126
KINDS: Final = frozenset(
    {
        Kind.FUND,
        Kind.RECORD_BALANCE_PROFIT,
        Kind.RECORD_BALANCE_EQUAL,
        Kind.RECORD_BALANCE_LOSS,
        Kind.RECORD_BALANCE_WRITE_OFF,
        Kind.STALE_BALANCE,
        Kind.SETTLE_PARTIAL,
        Kind.SETTLE_FULL,
        Kind.PAYMENT_EXCEEDS_PAYABLE,
        Kind.LOSS_ACTIVE,
        Kind.NO_ACTIVE_LOSS,
    }
)
"""The kinds drawn after an account's open: fund, record_balance and settle, applied or refused."""


def lines(commands: int, accounts: int, prefix: str = "", seed: int = SEED) -> Iterator[bytes]:
    """`commands` input lines: each of `accounts` accounts opened (the first `accounts` lines), then
    kinds drawn per account from the mix's weights, restricted to `KINDS`."""
    require(commands >= accounts, "every account needs its open_account line")
    rng = random.Random(seed)
    driver = Driver(rng=rng, store=MemoryStore(), id_prefix=f"{prefix}c")
    names = [f"{prefix}a{index}" for index in range(accounts)]
    for name in names:
        command, _ = driver.step(Kind.OPEN, name)
        yield encode_line(command_object(command))
    for _ in range(commands - accounts):
        name = rng.choice(names)
        account = driver.store.account(name)
        assert account is not None
        weights = WEIGHTS_WITH_LOSS if account.loss is not None else WEIGHTS_WITHOUT_LOSS
        kinds = [kind for kind in weights if kind in KINDS and driver.applicable(kind, name)]
        kind = rng.choices(kinds, weights=[weights[kind] for kind in kinds])[0]
        command, _ = driver.step(kind, name)
        yield encode_line(command_object(command))


def write(path: Path, commands: int, accounts: int, copies: int = 1) -> Counter[str]:
    """Write `copies` streams of `commands` lines on `accounts` accounts each (copy k's accounts and
    ids start with `k-`, so the copies never meet) to `path`; the count of each command type."""
    types: Counter[str] = Counter()
    with path.open("wb") as out:
        for copy in range(copies):
            for line in lines(commands, accounts, prefix=f"{copy}-" if copies > 1 else ""):
                out.write(line)
                types[line.split(b'"type":"', 1)[1].split(b'"', 1)[0].decode()] += 1
    return types


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path)
    parser.add_argument("--commands", type=int, default=20_000, help="lines per copy (20 000)")
    parser.add_argument("--accounts", type=int, default=50, help="accounts per copy (50)")
    parser.add_argument("--copies", type=int, default=1, help="copies on distinct accounts (1)")
    args = parser.parse_args(argv)
    types = write(args.path, args.commands, args.accounts, args.copies)
    sys.stderr.write(f"{args.path}: {sum(types.values()):,} lines, {dict(types)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
