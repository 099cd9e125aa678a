"""`ppk demo`: the worked example of spec.md §11, step by step, on a durable store, ending in an audit.

Every step sends its commands through the store (the one execution path), prints what each command's
result says and the account as stored, and checks that the result is the one the story tells: the
first time, what spec.md §11 shows; on a database that already holds the demo, the same answer from
its record (`duplicate`, or the recorded refusal again). So a second run doubles nothing, and says so.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Final

import attrs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ppk.adapters import jsonl, views
from ppk.adapters.audit import Report
from ppk.adapters.audit import audit as audit_books
from ppk.adapters.dispatcher import Dispatcher, Gateway
from ppk.adapters.sql import SqlStore
from ppk.kernel.state import (
    Applied,
    Code,
    Command,
    Decision,
    Fund,
    OpenAccount,
    RecordBalance,
    Repeated,
    Settle,
    minor_text,
)

ACCOUNT: Final = "acme"
"""The demo's one account, as in spec.md §11."""


@attrs.frozen(kw_only=True)
class Send:
    """A command of the story and the result it gets the first time."""

    command: Command
    status: str
    """`applied`, `duplicate` or `rejected`."""
    code: Code | None = None
    """The code of a `rejected` result."""


@attrs.frozen(kw_only=True)
class Step:
    """One step of the story: what it shows, and the commands that show it."""

    title: str
    story: str
    sends: tuple[Send, ...] = ()


STEPS: Final = (
    Step(
        title="1. Open the account",
        story="Losses will be shared 1 % by the operator and 9 % by the company.",
        sends=(
            Send(
                command=OpenAccount(id="c1", account=ACCOUNT, my_share_bp=100, company_share_bp=900),
                status="applied",
            ),
        ),
    ),
    Step(
        title="2. Fund it",
        story="The client funds ₹1000: the capital.",
        sends=(Send(command=Fund(id="c2", account=ACCOUNT, amount_minor=100_000), status="applied"),),
    ),
    Step(
        title="3. A loss, with its shares frozen",
        story=(
            "The exchange shows ₹900: a loss of ₹100. Its shares are frozen at 1 % + 9 % while it is "
            "open, whatever set_shares says later; the client owes 10 % of it, ₹10.00 (the payable)."
        ),
        sends=(
            Send(
                command=RecordBalance(
                    id="c3", account=ACCOUNT, balance_minor=90_000, date=datetime.date(2026, 1, 5)
                ),
                status="applied",
            ),
        ),
    ),
    Step(
        title="4. A first partial payment",
        story=(
            "₹4.00 closes ⌊400 · 10 000 / 1000⌋ = 4000 minor units (₹40) of capital, split ₹0.40 to "
            "the operator and ₹3.60 to the company; ₹60 of the loss remains, and ₹6.00 is payable."
        ),
        sends=(Send(command=Settle(id="c4", account=ACCOUNT, payment_minor=400), status="applied"),),
    ),
    Step(
        title="5. The bank retries the same payment",
        story="Same id, same command: a duplicate. Nothing is paid twice.",
        sends=(Send(command=Settle(id="c4", account=ACCOUNT, payment_minor=400), status="duplicate"),),
    ),
    Step(
        title="6. An overpayment, refused; and its retry",
        story=(
            "₹7.00 is more than the ₹6.00 payable: refused, and the refusal is recorded under its id "
            '("recorded": true), so the retry gets the same refusal. A new payment needs a new id.'
        ),
        sends=(
            Send(
                command=Settle(id="c5", account=ACCOUNT, payment_minor=700),
                status="rejected",
                code=Code.PAYMENT_EXCEEDS_PAYABLE,
            ),
            Send(
                command=Settle(id="c5", account=ACCOUNT, payment_minor=700),
                status="rejected",
                code=Code.PAYMENT_EXCEEDS_PAYABLE,
            ),
        ),
    ),
    Step(
        title="7. The payable, paid",
        story=(
            "₹6.00 closes the rest: ₹10.00 paid in all closed ₹100 of capital, and the shares add up "
            "to the payments (₹1.00 + ₹9.00), not to the capital closed."
        ),
        sends=(Send(command=Settle(id="c6", account=ACCOUNT, payment_minor=600), status="applied"),),
    ),
    Step(
        title="8. A profit, withdrawn",
        story=(
            "The exchange shows ₹1200: the ₹300 profit is withdrawn at once as a pending payout "
            "acme:c7, and the balance returns to the capital."
        ),
        sends=(
            Send(
                command=RecordBalance(
                    id="c7", account=ACCOUNT, balance_minor=120_000, date=datetime.date(2026, 1, 12)
                ),
                status="applied",
            ),
        ),
    ),
)
"""spec.md §11, as sent to the store: the commands of examples/worked.jsonl, up to the payout."""

PAYOUT: Final = "acme:c7"


class DemoError(Exception):
    """The database cannot hold the demo, or a result is not the one the story tells."""


@attrs.frozen(kw_only=True)
class Outcome:
    """What a demo run did."""

    again: bool
    """Whether the database already held the demo (every command answered from its record)."""
    transferred: int
    report: Report


def _check_database(store: SqlStore) -> bool:
    """Whether the database already holds the demo; a DemoError when it holds anything else."""
    others = [account_id for account_id in store.account_ids() if account_id != ACCOUNT]
    if others:
        raise DemoError(
            f"the database holds {len(others)} account(s) besides the demo's {ACCOUNT!r} "
            f"(first: {others[0]!r}); run the demo on a database of its own, for example --db demo.db"
        )
    if store.account(ACCOUNT) is None:
        return False
    for step in STEPS:
        for send in step.sends:
            entry = store.entry(ACCOUNT, send.command.id)
            if entry is not None and entry.command != send.command:
                raise DemoError(
                    f"the database's account {ACCOUNT!r} recorded another command under id "
                    f"{send.command.id!r}; run the demo on a database of its own, for example --db demo.db"
                )
    return True


def _matches(send: Send, result: jsonl.JsonObject) -> bool:
    """Whether a result is the story's, the first time or answered from the record."""
    status = result["status"]
    if send.status == "rejected":
        error = result.get("error")
        return status == "rejected" and error is not None and error["code"] == send.code and error["recorded"]
    return status in (send.status, "duplicate")


def _what_happened(decision: Decision, result: jsonl.JsonObject) -> str:
    if isinstance(decision, Applied):
        return views.entry_text(decision)
    if isinstance(decision, Repeated) and isinstance(decision.entry, Applied):
        return "nothing: answered from the record (" + views.entry_text(decision.entry) + ")"
    error = result["error"]
    retry = (
        "recorded: a retry gets the same" if error["recorded"] else "nothing recorded: the id is still free"
    )
    return f"{error['code']} ({retry}): {error['message']}"


def _account_table(store: SqlStore) -> Table:
    account = store.account(ACCOUNT)
    if account is None:
        raise DemoError(f"the account {ACCOUNT!r} is not in the database after it was opened")
    return views.account_summary(jsonl.account_view(account, store.payouts(ACCOUNT)))


def _payouts_table(store: SqlStore) -> Table:
    rows = [(ACCOUNT, p.id, minor_text(p.amount_minor), p.status.value) for p in store.payouts(ACCOUNT)]
    return views.payouts_table(rows)


def _send(store: SqlStore, sends: Sequence[Send], out: Console) -> None:
    rows = []
    for number, send in enumerate(sends, start=1):
        decision = store.execute(send.command)
        result = jsonl.decision_result(number, send.command, decision)
        if not _matches(send, result):
            raise DemoError(
                f"command {send.command.id!r} got {result['status']!r}"
                + (f" ({result['error']['code']})" if "error" in result else "")
                + f" where the story expects {send.status!r}: the database's history is not the demo's"
            )
        command = jsonl.command_object(send.command)
        rows.append(
            (send.command.id, views.command_text(command), result["status"], _what_happened(decision, result))
        )
    out.print(views.results_table(rows))


def run_demo(store: SqlStore, gateway: Gateway, out: Console) -> Outcome:
    """Walk through spec.md §11 on `store`, pay the payout through `gateway`, and audit the database."""
    again = _check_database(store)
    if again:
        out.print(
            Text(
                "This database already holds the demo: every command below is answered from its "
                "record, and nothing is done twice.",
                style="bold",
            )
        )
    for step in STEPS:
        out.rule(Text(step.title, style="bold"), align="left")
        out.print(step.story)
        _send(store, step.sends, out)
        out.print(_account_table(store))
        out.print()

    out.rule(Text("9. The payout, dispatched and confirmed", style="bold"), align="left")
    out.print(
        "The dispatcher sends each pending payout to the bank under its payout id (the bank takes an "
        "id once), then confirms it in the books: killed and run again, it pays each payout once."
    )
    dispatched = Dispatcher(store, gateway).dispatch()
    out.print(f"transferred {dispatched.transferred}, confirmed {dispatched.confirmed}")
    out.print(_payouts_table(store))
    statuses = {payout.id: payout.status.value for payout in store.payouts(ACCOUNT)}
    if statuses.get(PAYOUT) != "confirmed":
        raise DemoError(f"the payout {PAYOUT} is {statuses.get(PAYOUT)!r} after the dispatch, not confirmed")

    out.rule(Text("10. The audit", style="bold"), align="left")
    out.print(
        "The audit replays every ledger through the kernel, checks the hash chains, the ten invariants "
        "and the stored books against the replay, and gives the database's digest: keep it, and "
        "`ppk audit --expect DIGEST` later proves that history was only appended to."
    )
    report = audit_books(store.engine)
    return Outcome(again=again, transferred=dispatched.transferred, report=report)
