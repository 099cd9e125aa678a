"""Fault injection for the state machines: a store and a gateway that die where they are told to.

Production code has no crash parameters (spec.md#e3): a machine wraps the store it checks in a
`FaultyStore` and the gateway in a `FaultyGateway`, arms one crash point, and makes its call. The
wrapper raises `Crash` at that point, as a process would die there: before the command's transaction
commits (nothing persisted, no answer), inside it (after the entry was written and before the
commit: the database must roll all of it back), after it commits (persisted, the
answer lost), or after a payout's transfer left for the bank and before anything else happened.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import event

from ppk.adapters.dispatcher import Gateway
from ppk.adapters.store import PendingPayout, Store
from ppk.kernel.state import Account, Command, Decision, Entry, Payout

T = TypeVar("T")


class CrashPoint(enum.StrEnum):
    """The points at which a process may die, in the order a command or a payout passes them."""

    BEFORE_COMMIT = "before_commit"
    """The command's transaction never committed: nothing persisted, and the caller never hears back."""
    INSIDE_TRANSACTION = "inside_transaction"
    """The process died after the entry was written, before the commit (a SQL store; for one with no
    transaction to die in, as BEFORE_COMMIT)."""
    AFTER_COMMIT = "after_commit"
    """The transaction committed; the caller never hears back."""
    AFTER_TRANSFER = "after_transfer"
    """The dispatcher sent a payout's transfer and died before confirming it."""


class Crash(Exception):  # noqa: N818 (a crash is an event, not an error of the caller)
    """A simulated process death at a crash point; whatever was not persisted is gone."""

    def __init__(self, point: CrashPoint) -> None:
        super().__init__(f"crashed {point}")
        self.point = point


class FaultyStore:
    """A store that crashes its next `execute` (or `execute_many`) at the armed point, then works again."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self._armed: CrashPoint | None = None

    def arm(self, point: CrashPoint | None) -> None:
        """Crash the next command at `point` (BEFORE_COMMIT, INSIDE_TRANSACTION or AFTER_COMMIT);
        None: do not crash."""
        assert point is not CrashPoint.AFTER_TRANSFER, point
        self._armed = point

    def execute(self, command: Command) -> Decision:
        return self._crashing(lambda: self.inner.execute(command))

    def execute_many(self, commands: Sequence[Command]) -> list[Decision]:
        """A SQL store's group commit (`SqlStore.execute_many`): the whole group crashes at the armed
        point, as the process running `ppk apply` would die with the group's transaction open."""
        many: Callable[[Sequence[Command]], list[Decision]] = self.inner.execute_many  # type: ignore[attr-defined]
        return self._crashing(lambda: many(commands))

    def _crashing(self, call: Callable[[], T]) -> T:
        point, self._armed = self._armed, None
        engine = getattr(self.inner, "engine", None)
        if point is CrashPoint.BEFORE_COMMIT or (point is CrashPoint.INSIDE_TRANSACTION and engine is None):
            raise Crash(point)
        if point is CrashPoint.INSIDE_TRANSACTION:
            return self._crash_inside(engine, call)
        result = call()
        if point is CrashPoint.AFTER_COMMIT:
            raise Crash(point)
        return result

    def _crash_inside(self, engine: Any, call: Callable[[], T]) -> T:
        """Run `call` with the connection dying right after the ledger's insert, inside the transaction."""

        def die(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
            # The entry is written and the transaction open: dying here, the database must roll it
            # all back, as it does when a connection drops (the store's `begin` block rolls back).
            if statement.lstrip().upper().startswith("INSERT INTO LEDGER"):
                raise Crash(CrashPoint.INSIDE_TRANSACTION)

        event.listen(engine, "after_cursor_execute", die)
        try:
            return call()
        finally:
            event.remove(engine, "after_cursor_execute", die)

    def account(self, account_id: str) -> Account | None:
        return self.inner.account(account_id)

    def entry(self, account_id: str, command_id: str) -> Entry | None:
        return self.inner.entry(account_id, command_id)

    def ledger(self, account_id: str) -> Iterator[Entry]:
        return self.inner.ledger(account_id)

    def payouts(self, account_id: str) -> list[Payout]:
        return self.inner.payouts(account_id)

    def account_ids(self) -> list[str]:
        return self.inner.account_ids()

    def pending_payouts(self) -> Iterator[PendingPayout]:
        return self.inner.pending_payouts()


class FaultyGateway:
    """A gateway whose next transfer goes through and then crashes the dispatcher, when armed."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self._armed = False

    def arm(self, point: CrashPoint | None) -> None:
        """Crash right after the next transfer (AFTER_TRANSFER); None: do not crash."""
        assert point in (None, CrashPoint.AFTER_TRANSFER), point
        self._armed = point is CrashPoint.AFTER_TRANSFER

    def send(self, payout_id: str, amount_minor: int) -> None:
        armed, self._armed = self._armed, False
        self.inner.send(payout_id, amount_minor)
        if armed:
            raise Crash(CrashPoint.AFTER_TRANSFER)
