"""The seed's rules as drop-in replacements for kernel functions, for the teeth tests.

Each function here has the signature of the kernel function it replaces and computes what
`seed/partial-payments-v10.md` computes, in the kernel's integer units. `test_teeth.py` patches one
in, switches the kernel's own run-time contracts off, and requires the state machines to find a
counterexample: a checker that cannot find a known bug is not a checker (spec.md#errata).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import attrs

from ppk.adapters.dispatcher import Gateway
from ppk.kernel.state import (
    BP_PER_WHOLE,
    Account,
    Applied,
    Command,
    Lookup,
    LossWrittenOff,
    RecordBalance,
    Rejected,
    Repeated,
    Settle,
    Settled,
)
from ppk.kernel.transitions import record_balance_applied, settle_applied

INDUCTIVE_CONTRACTS = (
    "capital_is_conserved",
    "totals_follow_events",
    "capital_is_not_negative",
    "loss_opens_only_when_none_is_active",
    "loss_implies_capital_above_balance",
    "balance_agrees_with_loss",
    "shares_add_up_to_payments",
    "settlements_split_their_payment",
    "payouts_are_within_profit_withdrawn",
    "payouts_follow_withdrawals",
    "command_id_is_recorded_once",
    "refusal_changes_nothing_else",
    "loss_is_accounted",
    "amounts_are_not_negative",
    "shares_are_percentages",
)
"""The predicates of `ppk.kernel.contracts` that `fold`'s contracts call: patched to True, they are off."""


def capital_closed_half_up_minor(payment_minor: int, remaining_minor: int, total_share_bp: int) -> int:
    """spec.md#e4, the seed: ROUND_HALF_UP of p · 10 000 / t (no contracts)."""
    return (2 * payment_minor * BP_PER_WHOLE + total_share_bp) // (2 * total_share_bp)


def settle_applied_shares_of_capital_closed(account: Account, command: Settle) -> Applied:
    """spec.md#e1, the seed: each share is its percentage of capital closed, not of the payment."""
    decided = settle_applied(account, command)
    (settled,) = decided.events
    assert isinstance(settled, Settled) and account.loss is not None
    closed = settled.capital_closed_minor
    my_minor = closed * account.loss.my_share_bp // BP_PER_WHOLE
    company_minor = closed * account.loss.company_share_bp // BP_PER_WHOLE
    event = attrs.evolve(settled, my_share_minor=my_minor, company_share_minor=company_minor)
    return attrs.evolve(decided, events=(event,))


def settle_applied_unrounded_payable(account: Account, command: Settle) -> Applied:
    """spec.md#e8, the seed: the payable is not rounded, so only an exact payment closes the loss."""
    loss = account.loss
    payment = command.payment_minor
    assert loss is not None and isinstance(payment, int)
    total_share_bp = loss.my_share_bp + loss.company_share_bp
    if payment * BP_PER_WHOLE == loss.remaining_minor * total_share_bp:
        closed = loss.remaining_minor
    else:
        closed = min(payment * BP_PER_WHOLE // total_share_bp, loss.remaining_minor)
    my_minor = payment * loss.my_share_bp // total_share_bp
    event = Settled(
        loss=loss.opened_by,
        payment_minor=payment,
        capital_closed_minor=closed,
        my_share_minor=my_minor,
        company_share_minor=payment - my_minor,
    )
    return Applied(command=command, events=(event,))


def record_balance_applied_without_write_off(account: Account, command: RecordBalance) -> Applied:
    """spec.md#e9, the seed: a loss that owes nothing stays open (and with 0 % it divides by zero)."""
    decided = record_balance_applied(account, command)
    events = tuple(event for event in decided.events if not isinstance(event, LossWrittenOff))
    return attrs.evolve(decided, events=events)


def repetition_by_fresh_uuid(
    account: Account, command: Command, lookup: Lookup
) -> Repeated | Rejected | None:
    """spec.md#e2, the seed: the key is a fresh uuid4 per call, so no retry is ever recognised."""
    return None


class GatewayWithFreshKeys:
    """spec.md#e3, the seed: a flag and a fresh withdrawal id per attempt, so a retry pays again."""

    _attempts: Iterator[int] = itertools.count()

    def __init__(self, inner: Gateway) -> None:
        self._inner = inner

    def send(self, payout_id: str, amount_minor: int) -> None:
        # uuid4() in the seed: a key the gateway has never seen, on every attempt.
        self._inner.send(f"{payout_id}#{next(self._attempts)}", amount_minor)
