"""Shared helpers: a `book` that drives the kernel as a backend does, through the `Store` protocol."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import attrs
import pytest

from ppk.adapters.store import MemoryStore, Store
from ppk.kernel.contracts import broken_invariants_over
from ppk.kernel.state import (
    NOTHING_RECORDED,
    Account,
    Applied,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    Lookup,
    OpenAccount,
    Payout,
    Quantity,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
)
from ppk.kernel.transitions import fold, payout_looked_up, payouts_written, replay_with_payouts


def outcome(decision: Decision) -> str:
    """A decision as the result line names it: `applied`, `duplicate`, or the rejection's code."""
    if isinstance(decision, Applied):
        return "applied"
    if isinstance(decision, Repeated):
        entry = decision.entry
        return "duplicate" if isinstance(entry, Applied) else entry.code.value
    return decision.code.value


def lookup_of(store: Store, command: Command) -> Lookup:
    """What the store's history holds under the keys `command` names, read through the Store protocol
    alone (not the store's own lookup): the lookup `decide` and `fold` must be given for it."""
    if store.account(command.account) is None:
        return NOTHING_RECORDED
    named = payout_looked_up(command)
    payouts = {payout.id: payout for payout in store.payouts(command.account)}
    return Lookup(
        entry=store.entry(command.account, command.id),
        payout=None if named is None else payouts.get(named),
    )


class HandWrittenStore(MemoryStore):
    """Test-only: a MemoryStore that can also record an entry no `decide` made (`append`), as a ledger
    written before today's rules would hold. Production has no such door: every entry is a decision."""

    def append(self, entry: Entry) -> None:
        """Fold `entry` with the lookup of its command, and persist it with its account and payouts."""
        command = entry.command
        self._persist(entry, fold(self.account(command.account), entry, lookup_of(self, command)))


@attrs.define
class Book:
    """A store of accounts, driven command by command; and checks of what each command must not change."""

    store: HandWrittenStore = attrs.Factory(HandWrittenStore)

    def do(self, command: Command) -> Decision:
        """Execute a command through the store; a rejection or a repeat changes nothing, a refusal only
        records itself under its id, and an entry is recorded under its id and nothing else."""
        account_id = command.account
        before = self.store.account(account_id)
        payouts_before = self.store.payouts(account_id)
        ledger_before = list(self.store.ledger(account_id))
        recorded_before = self.store.entry(account_id, command.id)
        decision = self.store.execute(command)
        after = self.store.account(account_id)
        if isinstance(decision, (Rejected, Repeated)):
            assert after is before
            assert self.store.payouts(account_id) == payouts_before
            assert list(self.store.ledger(account_id)) == ledger_before
            assert self.store.entry(account_id, command.id) == recorded_before
            if isinstance(decision, Repeated):
                assert decision.entry == recorded_before
            return decision
        assert recorded_before is None, "an entry is recorded only under a free id"
        assert after is not None
        assert after.entry_count == (before.entry_count if before is not None else 0) + 1
        if isinstance(decision, Refused):
            assert before is not None
            assert attrs.evolve(after, entry_count=before.entry_count) == before
            assert self.store.payouts(account_id) == payouts_before
        # The payouts change by exactly the rows the entry writes (none for a refusal).
        payouts = {payout.id: payout for payout in payouts_before}
        payouts.update((payout.id, payout) for payout in payouts_written(decision))
        assert self.store.payouts(account_id) == [payouts[payout_id] for payout_id in sorted(payouts)]
        assert self.store.entry(account_id, command.id) == decision
        assert list(self.store.ledger(account_id)) == [*ledger_before, decision]
        return decision

    def append(self, entry: Entry) -> None:
        """Fold a hand-made entry, as a ledger written by something other than `decide` would hold."""
        self.store.append(entry)

    def run(self, *commands: Command) -> list[str]:
        """Execute each command; their outcomes."""
        return [outcome(self.do(command)) for command in commands]

    def account(self, account_id: str = "acme") -> Account:
        account = self.store.account(account_id)
        assert account is not None, account_id
        return account

    def ledger(self, account_id: str = "acme") -> list[Entry]:
        return list(self.store.ledger(account_id))

    def payouts(self, account_id: str = "acme") -> list[Payout]:
        """The account's stored payouts, sorted by id."""
        return self.store.payouts(account_id)

    def payout(self, payout_id: str, account_id: str = "acme") -> Payout:
        (payout,) = [payout for payout in self.payouts(account_id) if payout.id == payout_id]
        return payout

    def lookup(self, command: Command) -> Lookup:
        """The lookup the store would give `decide` for `command` now."""
        return lookup_of(self.store, command)

    def check(self) -> None:
        """Every ledger replays to its stored account and payouts, and breaks no invariant in full form."""
        for account_id in self.store.account_ids():
            ledger = self.ledger(account_id)
            stored, stored_payouts = self.store.account(account_id), self.payouts(account_id)
            replayed, replayed_payouts = replay_with_payouts(ledger)
            assert replayed == stored
            assert [replayed_payouts[payout_id] for payout_id in sorted(replayed_payouts)] == stored_payouts
            assert broken_invariants_over(ledger, stored, stored_payouts) == []

    # Builders: each command, built directly, on `acme` unless told.

    def open_account(
        self, id: str, my_share_bp: Quantity = 100, company_share_bp: Quantity = 900, account: str = "acme"
    ) -> Decision:
        return self.do(
            OpenAccount(id=id, account=account, my_share_bp=my_share_bp, company_share_bp=company_share_bp)
        )

    def fund(self, id: str, amount_minor: Quantity, account: str = "acme") -> Decision:
        return self.do(Fund(id=id, account=account, amount_minor=amount_minor))

    def record_balance(
        self, id: str, balance_minor: Quantity, date: datetime.date | None = None, account: str = "acme"
    ) -> Decision:
        return self.do(RecordBalance(id=id, account=account, balance_minor=balance_minor, date=date))

    def settle(self, id: str, payment_minor: Quantity, account: str = "acme") -> Decision:
        return self.do(Settle(id=id, account=account, payment_minor=payment_minor))

    def set_shares(
        self, id: str, my_share_bp: Quantity, company_share_bp: Quantity, account: str = "acme"
    ) -> Decision:
        return self.do(
            SetShares(id=id, account=account, my_share_bp=my_share_bp, company_share_bp=company_share_bp)
        )

    def confirm_payout(self, id: str, payout: str, account: str = "acme") -> Decision:
        return self.do(ConfirmPayout(id=id, account=account, payout=payout))


@pytest.fixture
def book() -> Iterator[Book]:
    """A fresh book; after the test, every ledger must replay to its account and break nothing."""
    fresh = Book()
    yield fresh
    fresh.check()
