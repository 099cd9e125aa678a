"""Where accounts and their ledgers live: the `Store` protocol, and the in-memory store.

A store executes one command at a time per account, atomically: it reads the account's row and
looks up, by key, what the command names of the history (the entry under its id, the payout it
confirms); it asks the pure kernel to decide; and it persists the ledger entry, the account it folds
into and the payouts it writes together, or nothing (spec.md#commands, spec.md#storage). Every way
in — `ppk replay`, a backend, the state machines — goes through `execute`, so there is one
execution path; the persistence adapter implements the same protocol on a database.

Faults are not part of the protocol: the state machines wrap a store to crash it
(`ppk.stateful_tests.faults`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Protocol

import attrs

from ppk.kernel.state import (
    NOTHING_RECORDED,
    Account,
    Applied,
    Command,
    Decision,
    Entry,
    Lookup,
    Payout,
    PayoutStatus,
    Refused,
)
from ppk.kernel.transitions import execute, payout_looked_up, payouts_written, replay_with_payouts

DATABASE_ENV: Final = "PPK_DATABASE_URL"
"""The environment variable naming the database when `--db` does not."""

DATABASE_DEFAULT: Final = "ppk.db"
"""The database when neither `--db` nor `PPK_DATABASE_URL` names one: a SQLite file here."""


class DatabaseError(Exception):
    """The database cannot be used as asked: one line that says why and what to do, never a password.

    Defined here, beside the protocol, so that what only catches it (`ppk replay`) need not import
    the SQL store and SQLAlchemy."""


@attrs.frozen(kw_only=True)
class PendingPayout:
    """A payout waiting for its transfer: the outbox row of spec.md#e3."""

    account: str
    payout: Payout


class Store(Protocol):
    """Accounts, their ledgers and their payouts, one atomic command at a time per account."""

    def execute(self, command: Command) -> Decision:
        """Decide the command against its account and persist the entry, the account and its payouts,
        or nothing; the decision is returned only once it is persisted."""
        ...

    def account(self, account_id: str) -> Account | None:
        """The account as persisted, or None if it does not exist."""
        ...

    def entry(self, account_id: str, command_id: str) -> Entry | None:
        """The entry recorded under a command id on an account, or None if the id is free."""
        ...

    def ledger(self, account_id: str) -> Iterator[Entry]:
        """The account's ledger entries, in their order."""
        ...

    def payouts(self, account_id: str) -> list[Payout]:
        """The account's payouts, pending and confirmed, sorted by payout id."""
        ...

    def account_ids(self) -> list[str]:
        """Every account id, sorted code point by code point."""
        ...

    def pending_payouts(self) -> Iterator[PendingPayout]:
        """Every payout not yet confirmed, by account, then payout id."""
        ...


class MemoryStore:
    """The in-memory store: per account, its value, its ledger keyed by command id, its payouts by id."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._ledgers: dict[str, dict[str, Entry]] = {}
        """Each account's entries by command id; a dict keeps them in ledger order."""
        self._payouts: dict[str, dict[str, Payout]] = {}

    def execute(self, command: Command) -> Decision:
        before = self._accounts.get(command.account)
        lookup = self._lookup(command) if before is not None else NOTHING_RECORDED
        decision, after = execute(before, command, lookup)
        if isinstance(decision, (Applied, Refused)):
            assert after is not None
            self._persist(decision, after)
        return decision

    def _persist(self, entry: Entry, after: Account) -> None:
        """The entry, the account it folds into and the payouts it writes, persisted together."""
        account_id = entry.command.account
        self._ledgers.setdefault(account_id, {})[entry.command.id] = entry
        payouts = self._payouts.setdefault(account_id, {})
        for payout in payouts_written(entry):
            payouts[payout.id] = payout
        self._accounts[account_id] = after

    def _lookup(self, command: Command) -> Lookup:
        """spec.md#storage: what the account's history holds under the keys the command names."""
        entry = self._ledgers[command.account].get(command.id)
        named = payout_looked_up(command)
        payout = None if named is None else self._payouts.get(command.account, {}).get(named)
        if entry is None and payout is None:
            return NOTHING_RECORDED
        return Lookup(entry=entry, payout=payout)

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def entry(self, account_id: str, command_id: str) -> Entry | None:
        return self._ledgers.get(account_id, {}).get(command_id)

    def ledger(self, account_id: str) -> Iterator[Entry]:
        return iter(tuple(self._ledgers.get(account_id, {}).values()))

    def payouts(self, account_id: str) -> list[Payout]:
        payouts = self._payouts.get(account_id, {})
        return [payouts[payout_id] for payout_id in sorted(payouts)]

    def account_ids(self) -> list[str]:
        return sorted(self._accounts)

    def pending_payouts(self) -> Iterator[PendingPayout]:
        for account_id in self.account_ids():
            for payout in self.payouts(account_id):
                if payout.status is PayoutStatus.PENDING:
                    yield PendingPayout(account=account_id, payout=payout)

    def reopened(self) -> MemoryStore:
        """The store a new process would build from these ledgers alone: each account and its payouts
        replayed from its entries."""
        store = MemoryStore()
        for account_id, entries in self._ledgers.items():
            account, payouts = replay_with_payouts(entries.values())
            assert account is not None, "a persisted ledger opens its account"
            store._accounts[account_id] = account
            store._ledgers[account_id] = dict(entries)
            store._payouts[account_id] = payouts
        return store
