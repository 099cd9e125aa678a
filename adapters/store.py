"""Where accounts and their ledgers live: the `Store` protocol, and the in-memory store.

A store executes one command at a time per account, atomically: it reads the account, asks the pure
kernel to decide, and persists the ledger entry and the account it folds into together, or nothing
(spec.md#commands). The persistence adapter implements the same protocol on a database, so the
model-checking machines in `stateful_tests/` run against either.

Crash points are part of the protocol: `execute(command, crash=...)` fails at a named point, as a
process would that dies there, so a machine can check that every interleaving of crashes, restarts
and retries leaves the books right (spec.md#e3).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Protocol

import attrs

from ppk.kernel.state import Account, Applied, Command, Decision, Entry, Payout, PayoutStatus, Refused
from ppk.kernel.transitions import decide, fold, replay


class CrashPoint(enum.StrEnum):
    """The points at which a process may die, in the order a command or a payout passes them."""

    AFTER_DECIDE = "after_decide"
    """The kernel decided; nothing was persisted, and the caller never hears back."""
    AFTER_PERSIST = "after_persist"
    """The entry was persisted; the caller never hears back."""
    AFTER_TRANSFER = "after_transfer"
    """The dispatcher sent a payout's transfer and died before confirming it."""


class Crash(Exception):  # noqa: N818 (a crash is an event, not an error of the caller)
    """A simulated process death at a crash point; whatever was not persisted is gone."""

    def __init__(self, point: CrashPoint) -> None:
        super().__init__(f"crashed {point}")
        self.point = point


@attrs.frozen(kw_only=True)
class PendingPayout:
    """A payout waiting for its transfer: the outbox row of spec.md#e3."""

    account: str
    payout: Payout


class Store(Protocol):
    """Accounts and ledgers, one atomic command at a time per account."""

    def execute(self, command: Command, *, crash: CrashPoint | None = None) -> Decision:
        """Decide the command against its account and persist the entry with the account, or nothing.

        With `crash`, raise `Crash` at that point instead of answering (AFTER_DECIDE: nothing
        persisted; AFTER_PERSIST: persisted).
        """
        ...

    def account(self, account_id: str) -> Account | None:
        """The account as persisted, or None if it does not exist."""
        ...

    def ledger(self, account_id: str) -> Sequence[Entry]:
        """The account's ledger entries, in their order."""
        ...

    def account_ids(self) -> list[str]:
        """Every account id, sorted code point by code point."""
        ...

    def pending_payouts(self) -> Iterator[PendingPayout]:
        """Every payout not yet confirmed, by account, then payout id."""
        ...

    def restart(self) -> None:
        """Forget everything not persisted, as a new process would; read the rest afresh."""
        ...


class MemoryStore:
    """The in-memory store: the ledgers are what survives a restart; accounts are rebuilt from them."""

    def __init__(self) -> None:
        self._ledgers: dict[str, list[Entry]] = {}
        self._accounts: dict[str, Account] = {}

    def execute(self, command: Command, *, crash: CrashPoint | None = None) -> Decision:
        before = self._accounts.get(command.account)
        decision = decide(before, command)
        if crash is CrashPoint.AFTER_DECIDE:
            raise Crash(crash)
        if isinstance(decision, (Applied, Refused)):
            after = fold(before, decision)
            # The entry and the account it folds into are persisted together: one transaction.
            self._ledgers.setdefault(command.account, []).append(decision)
            self._accounts[command.account] = after
        if crash is CrashPoint.AFTER_PERSIST:
            raise Crash(crash)
        return decision

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def ledger(self, account_id: str) -> Sequence[Entry]:
        return tuple(self._ledgers.get(account_id, ()))

    def account_ids(self) -> list[str]:
        return sorted(self._ledgers)

    def pending_payouts(self) -> Iterator[PendingPayout]:
        for account_id in self.account_ids():
            payouts = self._accounts[account_id].payouts
            for payout_id in sorted(payouts.keys()):
                payout = payouts[payout_id]
                if payout.status is PayoutStatus.PENDING:
                    yield PendingPayout(account=account_id, payout=payout)

    def restart(self) -> None:
        accounts: dict[str, Account] = {}
        for account_id, entries in self._ledgers.items():
            account = replay(entries)
            assert account is not None, "a persisted ledger opens its account"
            accounts[account_id] = account
        self._accounts = accounts
