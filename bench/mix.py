"""The command mix the benchmarks share: kinds of command, their weights and the figures they use.

`bench/store.py` drives the SQL store with it and `bench/audit.py` builds ledgers for `ppk audit` from
it; both decide every command with the kernel, so a kind's verdict is checked, not assumed.
"""

from __future__ import annotations

import datetime
import enum
from typing import Final

from ppk.kernel.state import Account, Code
from ppk.kernel.transitions import BP_PER_WHOLE, payable_minor

DAY_FIRST: Final = datetime.date(2020, 1, 1)
DAY_STALE: Final = datetime.date(2000, 1, 1)
"""Earlier than every date a benchmark writes, so a balance recorded with it is `stale_balance`."""
FUND_MINOR_MIN: Final = 10_000
FUND_MINOR_MAX: Final = 1_000_000
PROFIT_MINOR_MAX: Final = 100_000
LOSS_CAPITAL_MIN: Final = 10_000
"""A loss is recorded only on this much capital: at least 500 minor units, so never written
off at shares of 5 % or more."""
REFUSED_PAYMENT_MINOR_MAX: Final = 1_000


class Kind(enum.StrEnum):
    """What a benchmark command does; a refused kind names the rule that refuses it."""

    OPEN = "open_account"
    FUND = "fund"
    RECORD_BALANCE_PROFIT = "record_balance, profit"
    RECORD_BALANCE_EQUAL = "record_balance, equal"
    RECORD_BALANCE_LOSS = "record_balance, loss"
    RECORD_BALANCE_WRITE_OFF = "record_balance, written off"
    SETTLE_PARTIAL = "settle, partial"
    SETTLE_FULL = "settle, full"
    SET_SHARES = "set_shares"
    CONFIRM_PAYOUT = "confirm_payout"
    LOSS_ACTIVE = "refused: loss_active"
    STALE_BALANCE = "refused: stale_balance"
    NO_ACTIVE_LOSS = "refused: no_active_loss"
    PAYMENT_EXCEEDS_PAYABLE = "refused: payment_exceeds_payable"
    UNKNOWN_PAYOUT = "refused: unknown_payout"
    DUPLICATE = "duplicate (a retried id)"


REFUSAL_CODES: Final[dict[Kind, Code]] = {
    Kind.LOSS_ACTIVE: Code.LOSS_ACTIVE,
    Kind.STALE_BALANCE: Code.STALE_BALANCE,
    Kind.NO_ACTIVE_LOSS: Code.NO_ACTIVE_LOSS,
    Kind.PAYMENT_EXCEEDS_PAYABLE: Code.PAYMENT_EXCEEDS_PAYABLE,
    Kind.UNKNOWN_PAYOUT: Code.UNKNOWN_PAYOUT,
}
"""The code each refused kind must get; a duplicate must be repeated, every other kind applied."""

# The mix, as weights: roughly a busy account's, with a loss settled over a few payments.
WEIGHTS_WITHOUT_LOSS: Final[dict[Kind, int]] = {
    Kind.FUND: 20,
    Kind.RECORD_BALANCE_PROFIT: 18,
    Kind.RECORD_BALANCE_EQUAL: 6,
    Kind.RECORD_BALANCE_LOSS: 14,
    Kind.RECORD_BALANCE_WRITE_OFF: 2,
    Kind.CONFIRM_PAYOUT: 14,
    Kind.SET_SHARES: 3,
    Kind.STALE_BALANCE: 3,
    Kind.NO_ACTIVE_LOSS: 3,
    Kind.UNKNOWN_PAYOUT: 3,
    Kind.DUPLICATE: 4,
}
WEIGHTS_WITH_LOSS: Final[dict[Kind, int]] = {
    Kind.SETTLE_PARTIAL: 35,
    Kind.SETTLE_FULL: 25,
    Kind.PAYMENT_EXCEEDS_PAYABLE: 5,
    Kind.FUND: 10,
    Kind.LOSS_ACTIVE: 5,
    Kind.CONFIRM_PAYOUT: 10,
    Kind.UNKNOWN_PAYOUT: 2,
    Kind.DUPLICATE: 4,
}


def require(condition: bool, message: str) -> None:
    """A check of the benchmark's own setup that, unlike `assert`, survives `python -O`."""
    if not condition:
        raise RuntimeError(message)


def payable_minor_of(account: Account) -> int:
    loss = account.loss
    require(loss is not None, "a settlement needs an active loss")
    assert loss is not None
    return payable_minor(loss.remaining_minor, loss.my_share_bp + loss.company_share_bp)


def write_off_minor_max(account: Account) -> int:
    """The largest loss whose payable is 0 at the account's shares."""
    if account.total_share_bp == 0:
        return account.capital_minor
    return min((BP_PER_WHOLE - 1) // account.total_share_bp, account.capital_minor)
