"""The seed's invariant enforcement, reimplemented faithfully on SQLite as the baseline of `bench/perf.py`'s
per-command-cost-vs-history row (spec.md, Errata E6).

The seed (`partial-payments-v10.md`, "CRITICAL ERROR 3" and "Complete corrected flows") runs
`enforce_invariants(client_exchange)` inside every write's transaction, before its commit, and that
function recomputes everything from the ledger: Σ funding and Σ capital_closed over the account's
transactions (twice: once for CAPITAL, `get_capital`, once for Invariant 1), the count of unsettled loss
snapshots, the active one, and then loads every settlement of the account to check Invariant 6 one
row at a time. `create_balance_record` and `settle_payment` also read CAPITAL from the ledger before they
write. So each write reads the account's whole history: O(n) per command.

Here the seed's Django models are tables with the same columns and the index Django gives a foreign key;
the writes are its `fund` (a FUNDING transaction), `create_balance_record` and `settle_payment`, each one
transaction (`BEGIN IMMEDIATE` to `COMMIT`) with ppk's durability (WAL, synchronous=FULL, through
bench/store.py's `raw_connection`). Two departures, neither of which changes what is read per write:
amounts are integer minor units and shares basis points (SQLite has no decimal type; the seed uses
`Decimal`), and the ids the seed draws from `uuid4` are counters (deterministic runs).

An account is aged by writing a consistent history directly (fund, a balance with a loss, the loss
settled in full: three ledger rows a cycle); the batch is then timed through the seed's functions.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from mix import require
from store import copy_database, raw_connection, remove_database

CLIENT: Final = 1
MY_BP: Final = 250
COMPANY_BP: Final = 250
FUNDING: Final = "FUNDING"
SETTLEMENT: Final = "SETTLEMENT"
PROFIT_WITHDRAWAL: Final = "PROFIT_WITHDRAWAL"

SCHEMA: Final = (
    "CREATE TABLE client_exchange (id INTEGER PRIMARY KEY, my_share_pct INTEGER, company_share_pct INTEGER)",
    "CREATE TABLE balance_record (id INTEGER PRIMARY KEY, client_exchange_id INTEGER REFERENCES "
    "client_exchange, date TEXT, remaining_balance INTEGER, capital_at_balance_time INTEGER, "
    "loss_at_balance_time INTEGER, profit_consumed INTEGER, profit_withdrawal_id TEXT UNIQUE)",
    "CREATE INDEX balance_record_client ON balance_record (client_exchange_id)",
    'CREATE TABLE "transaction" (id INTEGER PRIMARY KEY, client_exchange_id INTEGER REFERENCES '
    "client_exchange, transaction_type TEXT, amount INTEGER, capital_closed INTEGER, your_share_amount "
    "INTEGER, company_share_amount INTEGER, balance_record_id INTEGER, withdrawal_id TEXT UNIQUE, "
    "settlement_id TEXT UNIQUE, note TEXT)",
    'CREATE INDEX transaction_client ON "transaction" (client_exchange_id)',
    "CREATE TABLE loss_snapshot (id INTEGER PRIMARY KEY, client_exchange_id INTEGER REFERENCES "
    "client_exchange, balance_record_id INTEGER REFERENCES balance_record, loss_amount INTEGER, "
    "my_share_pct INTEGER, company_share_pct INTEGER, is_settled INTEGER)",
    "CREATE INDEX loss_snapshot_client ON loss_snapshot (client_exchange_id)",
    "CREATE INDEX loss_snapshot_balance_record ON loss_snapshot (balance_record_id)",
)


class Seed:
    """The seed's write functions and `enforce_invariants`, over a raw sqlite3 connection."""

    def __init__(self, path: Path) -> None:
        self.db = raw_connection(path)
        self.next_id = self.db.execute('SELECT count(*) FROM "transaction"').fetchone()[0] + 1

    def one(self, sql: str, *parameters: Any) -> Any:
        row = self.db.execute(sql, parameters).fetchone()
        return None if row is None else row[0]

    # The seed's ledger reads.
    def total_funding(self, ce: int) -> int:
        sql = 'SELECT sum(amount) FROM "transaction" WHERE client_exchange_id = ? AND transaction_type = ?'
        return int(self.one(sql, ce, FUNDING) or 0)

    def total_capital_closed(self, ce: int) -> int:
        sql = (
            'SELECT sum(capital_closed) FROM "transaction" WHERE client_exchange_id = ? '
            "AND transaction_type = ?"
        )
        return int(self.one(sql, ce, SETTLEMENT) or 0)

    def capital(self, ce: int) -> int:
        return self.total_funding(ce) - self.total_capital_closed(ce)

    def exchange_balance(self, ce: int) -> int:
        sql = (
            "SELECT remaining_balance FROM balance_record WHERE client_exchange_id = ? "
            "ORDER BY date DESC, id DESC"
        )
        return int(self.one(sql, ce) or 0)

    def enforce_invariants(self, ce: int) -> None:
        """The seed's `enforce_invariants`, check for check; raises ValueError (the caller rolls back)."""
        capital = self.capital(ce)
        cb = self.exchange_balance(ce)
        total_funding = self.total_funding(ce)
        total_capital_closed = self.total_capital_closed(ce)
        if capital != total_funding - total_capital_closed:
            raise ValueError("Invariant 1")
        if total_capital_closed > total_funding:
            raise ValueError("Invariant 2")
        active = "FROM loss_snapshot WHERE client_exchange_id = ? AND is_settled = 0"
        if self.one(f"SELECT count(*) {active}", ce) > 1:
            raise ValueError("Invariant 3")
        loss = self.db.execute(f"SELECT loss_amount, balance_record_id {active} LIMIT 1", (ce,)).fetchone()
        if loss is not None:
            if capital <= cb:
                raise ValueError("Invariant 4")
            cb_snapshot = self.one("SELECT remaining_balance FROM balance_record WHERE id = ?", loss[1])
            if loss[0] != max(capital - cb_snapshot, 0):
                raise ValueError("Invariant 5")
        settlements = self.db.execute(
            "SELECT your_share_amount, company_share_amount, capital_closed "
            'FROM "transaction" WHERE client_exchange_id = ? AND transaction_type = ?',
            (ce, SETTLEMENT),
        )
        for your_share, company_share, capital_closed in settlements:
            if (your_share or 0) + (company_share or 0) != capital_closed:
                raise ValueError("Invariant 6")

    def _insert_transaction(self, ce: int, kind: str, amount: int, **columns: Any) -> None:
        names = ", ".join(["id", "client_exchange_id", "transaction_type", "amount", *columns])
        marks = ", ".join("?" * (4 + len(columns)))
        self.db.execute(
            f'INSERT INTO "transaction" ({names}) VALUES ({marks})',
            (self.next_id, ce, kind, amount, *columns.values()),
        )
        self.next_id += 1

    def atomic(self, write: Any, *arguments: Any) -> str:
        """One write in its own transaction, invariants enforced before the commit: "applied", or the
        refusal's message (rolled back)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            write(*arguments)
            self.enforce_invariants(arguments[0])
        except LookupError as refusal:
            self.db.execute("ROLLBACK")
            return str(refusal)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return "applied"

    # The seed's writes.
    def fund(self, ce: int, amount: int) -> None:
        self._insert_transaction(ce, FUNDING, amount)

    def create_balance_record(self, ce: int, date: str, remaining_balance: int) -> None:
        if self.one("SELECT 1 FROM loss_snapshot WHERE client_exchange_id = ? AND is_settled = 0", ce):
            raise LookupError("loss exists")
        capital = self.capital(ce)
        loss, profit = max(capital - remaining_balance, 0), max(remaining_balance - capital, 0)
        cursor = self.db.execute(
            "INSERT INTO balance_record (client_exchange_id, date, remaining_balance, "
            "capital_at_balance_time, loss_at_balance_time, profit_consumed) VALUES (?, ?, ?, ?, ?, 0)",
            (ce, date, remaining_balance, capital, loss),
        )
        record = cursor.lastrowid
        if profit > 0:
            withdrawal = f"w{self.next_id}"
            self.db.execute(
                "UPDATE balance_record SET profit_consumed = 1, profit_withdrawal_id = ? WHERE id = ?",
                (withdrawal, record),
            )
            self._insert_transaction(
                ce, PROFIT_WITHDRAWAL, profit, balance_record_id=record, withdrawal_id=withdrawal
            )
            self.db.execute("UPDATE balance_record SET remaining_balance = ? WHERE id = ?", (capital, record))
        if loss > 0:
            shares = self.db.execute(
                "SELECT my_share_pct, company_share_pct FROM client_exchange WHERE id = ?", (ce,)
            ).fetchone()
            self.db.execute(
                "INSERT INTO loss_snapshot (client_exchange_id, balance_record_id, loss_amount, "
                "my_share_pct, company_share_pct, is_settled) VALUES (?, ?, ?, ?, ?, 0)",
                (ce, record, loss, *shares),
            )

    def settle_payment(self, ce: int, payment: int) -> None:
        snapshot = self.db.execute(
            "SELECT id, loss_amount, my_share_pct, company_share_pct, balance_record_id FROM loss_snapshot "
            "WHERE client_exchange_id = ? AND is_settled = 0",
            (ce,),
        ).fetchone()
        if snapshot is None:
            raise LookupError("no loss to settle")
        snapshot_id, loss, my_bp, company_bp, record = snapshot
        total_bp = my_bp + company_bp
        if payment * 10_000 > loss * total_bp:
            raise LookupError("payment exceeds payable")
        capital_closed = (payment * 10_000 * 2 + total_bp) // (2 * total_bp)  # ROUND_HALF_UP
        capital_closed = min(capital_closed, loss)
        if self.total_capital_closed(ce) + capital_closed > self.total_funding(ce):
            raise LookupError("capital negative")
        remaining = loss - capital_closed
        your_share = capital_closed * my_bp // total_bp
        self._insert_transaction(
            ce,
            SETTLEMENT,
            payment,
            capital_closed=capital_closed,
            your_share_amount=your_share,
            company_share_amount=capital_closed - your_share,
            balance_record_id=record,
            settlement_id=f"s{self.next_id}",
        )
        self.db.execute(
            "UPDATE loss_snapshot SET loss_amount = ?, is_settled = ? WHERE id = ?",
            (remaining, int(remaining == 0), snapshot_id),
        )

    def close(self) -> None:
        self.db.close()


FUND_MINOR: Final = 100_000
LOSS_MINOR: Final = 20_000


def build(path: Path, entries: int) -> None:
    """A database whose one account has `entries` ledger rows (transactions and balance records), written
    directly as the seed's writes would leave them: cycles of fund, a balance with a loss, and that loss
    settled in full; no loss active at the end."""
    remove_database(path)
    db = raw_connection(path)
    try:
        for statement in SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO client_exchange VALUES (?, ?, ?)", (CLIENT, MY_BP, COMPANY_BP))
        transactions: list[tuple[Any, ...]] = []
        records: list[tuple[Any, ...]] = []
        snapshots: list[tuple[Any, ...]] = []
        capital, written = 0, 0
        while written < entries:
            capital += FUND_MINOR
            transactions.append((len(transactions) + 1, CLIENT, FUNDING, FUND_MINOR, None, None, None, None))
            written += 1
            if written == entries:
                break
            record = len(records) + 1
            balance = capital - LOSS_MINOR
            date = f"{1000 + record // 365:04d}-01-01+{record % 365:03d}"
            records.append((record, CLIENT, date, balance, capital, LOSS_MINOR, 0))
            written += 1
            if written == entries:
                snapshots.append((CLIENT, record, LOSS_MINOR, MY_BP, COMPANY_BP, 0))
                break
            snapshots.append((CLIENT, record, 0, MY_BP, COMPANY_BP, 1))
            payment = LOSS_MINOR * (MY_BP + COMPANY_BP) // 10_000
            share = LOSS_MINOR * MY_BP // (MY_BP + COMPANY_BP)
            transactions.append(
                (
                    len(transactions) + 1,
                    CLIENT,
                    SETTLEMENT,
                    payment,
                    LOSS_MINOR,
                    share,
                    LOSS_MINOR - share,
                    record,
                )
            )
            capital -= LOSS_MINOR
            written += 1
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            'INSERT INTO "transaction" (id, client_exchange_id, transaction_type, amount, capital_closed, '
            "your_share_amount, company_share_amount, balance_record_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            transactions,
        )
        db.executemany("INSERT INTO balance_record VALUES (?, ?, ?, ?, ?, ?, ?, NULL)", records)
        db.executemany(
            "INSERT INTO loss_snapshot (client_exchange_id, balance_record_id, loss_amount, my_share_pct, "
            "company_share_pct, is_settled) VALUES (?, ?, ?, ?, ?, ?)",
            snapshots,
        )
        db.execute("COMMIT")
    finally:
        db.close()
    seed = Seed(path)
    try:
        seed.enforce_invariants(CLIENT)  # the built history passes the seed's own checks
    finally:
        seed.close()


def run_batch(seed: Seed, cycles: int) -> list[str]:
    """The timed batch: per cycle, a balance with a profit, a fund, a balance with a loss, a refused
    balance (loss exists), a partial and a full settle, a refused settle (no loss): 7 commands."""
    outcomes = []
    capital = seed.capital(CLIENT)
    for cycle in range(cycles):
        date = f"9999-{cycle:06d}"
        outcomes.append(seed.atomic(seed.create_balance_record, CLIENT, f"{date}a", capital + 5_000))
        outcomes.append(seed.atomic(seed.fund, CLIENT, FUND_MINOR))
        capital += FUND_MINOR
        outcomes.append(seed.atomic(seed.create_balance_record, CLIENT, f"{date}b", capital - LOSS_MINOR))
        outcomes.append(seed.atomic(seed.create_balance_record, CLIENT, f"{date}c", capital))
        payable = LOSS_MINOR * (MY_BP + COMPANY_BP) // 10_000
        outcomes.append(seed.atomic(seed.settle_payment, CLIENT, payable // 2))
        outcomes.append(seed.atomic(seed.settle_payment, CLIENT, payable - payable // 2))
        outcomes.append(seed.atomic(seed.settle_payment, CLIENT, 1))
        capital -= LOSS_MINOR
    expected = ["applied", "applied", "applied", "loss exists", "applied", "applied", "no loss to settle"]
    require(outcomes == expected * cycles, f"the seed's batch got {outcomes[:7]}")
    return outcomes


def measure(folder: Path, ages: tuple[int, ...], cycles: int, rounds: int) -> dict[str, Any]:
    """µs per command of the batch on a fresh copy of the account aged to each age, round after round."""
    aged = {entries: folder / f"seed-{entries}.db" for entries in ages}
    for entries, path in aged.items():
        build(path, entries)
    run = folder / "seed-run.db"
    seconds: dict[int, list[float]] = {entries: [] for entries in ages}
    commands = cycles * 7
    for round_index in range(rounds):
        for entries in ages if round_index % 2 == 0 else ages[::-1]:
            copy_database(aged[entries], run)
            seed = Seed(run)
            try:
                start = time.perf_counter()
                run_batch(seed, cycles)
                seconds[entries].append(time.perf_counter() - start)
            finally:
                seed.close()
    remove_database(run)
    for path in aged.values():
        remove_database(path)
    young, old = min(ages), max(ages)
    return {
        "batch_commands": commands,
        "us_per_command": {str(e): statistics.median(seconds[e]) / commands * 1e6 for e in ages},
        "ratio_largest_smallest": statistics.median(
            o / y for o, y in zip(seconds[old], seconds[young], strict=True)
        ),
        "rounds_s": {str(e): seconds[e] for e in ages},
    }


def main() -> int:
    """A look on its own: `python bench/rescan.py` prints the figures at 100 and 10 000 entries."""
    with tempfile.TemporaryDirectory(prefix="ppk-bench-rescan-") as folder:
        print(measure(Path(folder), (100, 10_000), 2, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
