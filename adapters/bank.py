"""A bank for the demo and the tests: the transfer gateway as a second SQLite file (spec.md#e3).

It stands where a real payment gateway would, and behaves as one does: a transfer is accepted once
per payout id, a repeat of the same payout id and amount is accepted again and moves nothing, and a
repeat with another amount is refused. Each accepted transfer is one durable row (WAL,
`synchronous=FULL`), so a dispatcher killed after `send` returned finds it there on its next run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from ppk.adapters.sql import busy_timeout_s

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS transfers (
    payout_id TEXT PRIMARY KEY,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0)
)
"""


class TransferRefusedError(Exception):
    """The bank refused a transfer: its payout id was sent before with another amount."""


class SqliteBank:
    """A `Gateway` on a SQLite file: one row per payout id transferred."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # isolation_level=None: ppk says when transactions begin (BEGIN IMMEDIATE, below). Two
        # dispatchers queue at the bank's lock as at the store's: $PPK_BUSY_TIMEOUT, 60 s unset.
        self._connection = sqlite3.connect(self.path, timeout=busy_timeout_s(), isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute(_SCHEMA)

    def send(self, payout_id: str, amount_minor: int) -> None:
        """Transfer once per payout id; the same transfer again moves nothing; another amount is refused."""
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT amount_minor FROM transfers WHERE payout_id = ?", (payout_id,)
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO transfers (payout_id, amount_minor) VALUES (?, ?)", (payout_id, amount_minor)
                )
            elif row[0] != amount_minor:
                raise TransferRefusedError(
                    f"payout {payout_id!r} was transferred before for {row[0]} minor units, "
                    f"not {amount_minor}"
                )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def transfers(self) -> dict[str, int]:
        """Every transfer the bank accepted: payout id → amount in minor units."""
        rows = self._connection.execute("SELECT payout_id, amount_minor FROM transfers ORDER BY payout_id")
        return dict(rows.fetchall())

    def close(self) -> None:
        self._connection.close()
