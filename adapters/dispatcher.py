"""The payout dispatcher: sends each pending payout's transfer, then confirms it (spec.md#e3).

A withdrawn profit is committed as a pending payout under the deterministic id
`<account>:<command id>`, in the same transaction as the balance record: that is the outbox. The
dispatcher sends each pending payout to the transfer gateway with its payout id as the transfer's
idempotency key, and only then confirms it with a `confirm_payout` whose command id is derived
from the payout id. Whatever point it dies at, running it again sends the same key (the gateway
transfers once) and confirms under the same id (a duplicate at worst): exactly one transfer.
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

import attrs

from ppk.adapters.store import PendingPayout, Store
from ppk.kernel.state import Applied, ConfirmPayout, Decision, Refused, Rejected, Repeated

CONFIRM_ID_PREFIX: Final = "payout-confirmed:"


class Gateway(Protocol):
    """The port to an external transfer service, which deduplicates by idempotency key as real ones do."""

    def send(self, payout_id: str, amount_minor: int) -> None:
        """Move the money once per `payout_id`; a repeat with the same key moves nothing. Returns once
        the transfer is accepted; raises if it is not (the payout stays pending, to be sent again)."""
        ...


class DispatchError(Exception):
    """The store would not confirm a transferred payout: the books need a person to look."""


@attrs.frozen(kw_only=True)
class Dispatched:
    """What one dispatcher run did."""

    transferred: int
    """Payouts sent to the gateway (a repeat after a crash counts again)."""
    confirmed: int
    """Payouts confirmed in the store."""


def confirm_id(payout_id: str) -> str:
    """The command id of a payout's confirmation: the same on every attempt, at most 128 characters."""
    # A payout id can be 193 characters (64 of account, ':', 128 of command id), over the id limit.
    return CONFIRM_ID_PREFIX + hashlib.sha256(payout_id.encode("utf-8")).hexdigest()


class Dispatcher:
    """Sends pending payouts through a gateway and confirms them in a store."""

    def __init__(self, store: Store, gateway: Gateway) -> None:
        self._store = store
        self._gateway = gateway

    def dispatch(self) -> Dispatched:
        """Transfer and confirm every pending payout, each under its payout id (spec.md#e3)."""
        transferred = confirmed = 0
        for pending in list(self._store.pending_payouts()):
            # The payout id is the transfer's idempotency key: the same on every attempt.
            self._gateway.send(pending.payout.id, pending.payout.amount_minor)
            transferred += 1
            self._confirm(pending)
            confirmed += 1
        return Dispatched(transferred=transferred, confirmed=confirmed)

    def _confirm(self, pending: PendingPayout) -> None:
        command = ConfirmPayout(
            id=confirm_id(pending.payout.id), account=pending.account, payout=pending.payout.id
        )
        decision: Decision = self._store.execute(command)
        if isinstance(decision, Applied):
            return
        if isinstance(decision, Repeated) and isinstance(decision.entry, Applied):
            return
        reason = decision.code if isinstance(decision, (Refused, Rejected)) else decision.entry
        raise DispatchError(f"payout {pending.payout.id!r} was transferred but not confirmed: {reason}")
