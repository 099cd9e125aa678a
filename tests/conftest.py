"""Shared helpers: a `book` of accounts and ledgers that drives the kernel as a backend would."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import attrs
import pytest

from ppk.kernel.contracts import broken_invariants_over
from ppk.kernel.state import (
    Account,
    Applied,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    OpenAccount,
    Quantity,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
)
from ppk.kernel.transitions import execute, fold, replay


def outcome(decision: Decision) -> str:
    """A decision as the result line names it: `applied`, `duplicate`, or the rejection's code."""
    if isinstance(decision, Applied):
        return "applied"
    if isinstance(decision, Repeated):
        entry = decision.entry
        return "duplicate" if isinstance(entry, Applied) else entry.code.value
    return decision.code.value


@attrs.define
class Book:
    """Accounts and their ledgers: decide, append, fold; and check what must not change."""

    accounts: dict[str, Account] = attrs.Factory(dict)
    ledgers: dict[str, list[Entry]] = attrs.Factory(dict)

    def do(self, command: Command) -> Decision:
        """Execute a command; a rejection or a repeat changes nothing, a refusal only its record."""
        before = self.accounts.get(command.account)
        decision, after = execute(before, command)
        if isinstance(decision, (Rejected, Repeated)):
            assert after is before
            return decision
        if isinstance(decision, Refused):
            assert before is not None and after is not None
            assert attrs.evolve(after, outcomes=before.outcomes) == before
            assert len(after.outcomes) == len(before.outcomes) + 1
        assert after is not None
        self.accounts[command.account] = after
        self.ledgers.setdefault(command.account, []).append(decision)
        return decision

    def append(self, entry: Entry) -> None:
        """Fold a hand-made entry, as a ledger written by something other than `decide` would hold."""
        account_id = entry.command.account
        self.accounts[account_id] = fold(self.accounts.get(account_id), entry)
        self.ledgers.setdefault(account_id, []).append(entry)

    def run(self, *commands: Command) -> list[str]:
        """Execute each command; their outcomes."""
        return [outcome(self.do(command)) for command in commands]

    def account(self, account_id: str = "acme") -> Account:
        return self.accounts[account_id]

    def ledger(self, account_id: str = "acme") -> list[Entry]:
        return self.ledgers.get(account_id, [])

    def check(self) -> None:
        """Every ledger replays to its account and breaks no invariant in its full form."""
        for account_id, ledger in self.ledgers.items():
            assert replay(ledger) == self.accounts[account_id]
            assert broken_invariants_over(ledger, self.accounts[account_id]) == []

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
