"""What a person reads: accounts, ledgers, payouts and results as tables (`ppk show`, `ppk ledger`,
`ppk payouts`, `ppk demo`).

Presentation only, from the same values the JSON views print (spec.md#results): every amount and
percentage is the view's two-decimal text, so a table and `--json` can never disagree on a figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Final

from rich import box
from rich.console import Console
from rich.table import Table

from ppk.adapters import jsonl
from ppk.kernel.state import (
    AccountOpened,
    Applied,
    BalanceRecorded,
    Event,
    Funded,
    LossOpened,
    LossWrittenOff,
    PayoutConfirmed,
    ProfitWithdrawn,
    Refused,
    Settled,
    SharesSet,
    minor_text,
)

WIDTH_NOT_A_TERMINAL: Final = 160
"""Columns a table may use when the output is a file or a pipe, where no terminal says how wide."""


def console(stream: IO[str]) -> Console:
    """A console on `stream`: colour and the terminal's width on a terminal, plain text elsewhere."""
    terminal = stream.isatty()
    return Console(
        file=stream,
        width=None if terminal else WIDTH_NOT_A_TERMINAL,
        color_system="auto" if terminal else None,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def _shares(shares: jsonl.JsonObject) -> str:
    return f"{shares['my']} % + {shares['company']} %"


def _loss_text(loss: jsonl.JsonObject | None) -> str:
    if loss is None:
        return "none"
    return (
        f"{loss['remaining']} of {loss['original']} remaining, payable {loss['payable']}, "
        f"shares frozen at {_shares(loss['shares'])}"
    )


def accounts_table(views: Iterable[jsonl.JsonObject], title: str | None = None) -> Table:
    """One row per account view: its figures, its active loss, its totals and its payouts."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("account")
    for name in ("capital", "balance"):
        table.add_column(name, justify="right")
    table.add_column("shares")
    table.add_column("active loss")
    for name in ("funded", "closed", "settled", "my share", "company", "withdrawn"):
        table.add_column(name, justify="right")
    table.add_column("payouts")
    for view in views:
        totals = view["totals"]
        pending = sum(1 for payout in view["payouts"] if payout["status"] == "pending")
        table.add_row(
            view["account"],
            view["capital"],
            view["balance"],
            _shares(view["shares"]),
            _loss_text(view["loss"]),
            totals["funding"],
            totals["capital_closed"],
            totals["settled_payments"],
            totals["my_share"],
            totals["company_share"],
            totals["profit_withdrawn"],
            f"{pending} pending of {len(view['payouts'])}",
        )
    return table


def account_summary(view: jsonl.JsonObject) -> Table:
    """One account view in four labelled lines, for a person following one account (`ppk demo`)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    totals = view["totals"]
    payouts = ", ".join(f"{p['id']} {p['amount']} {p['status']}" for p in view["payouts"]) or "none"
    grid.add_row(
        view["account"],
        f"capital {view['capital']} · balance {view['balance']} · shares {_shares(view['shares'])}",
    )
    grid.add_row("active loss", _loss_text(view["loss"]))
    grid.add_row(
        "totals",
        f"funded {totals['funding']} · capital closed {totals['capital_closed']} · settled "
        f"{totals['settled_payments']} (my {totals['my_share']}, company {totals['company_share']}) · "
        f"profit withdrawn {totals['profit_withdrawn']}",
    )
    grid.add_row("payouts", payouts)
    return grid


def payouts_table(rows: Iterable[tuple[str, str, str, str]], title: str | None = None) -> Table:
    """One row per payout: (account, payout id, amount, status)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("account")
    table.add_column("payout")
    table.add_column("amount", justify="right")
    table.add_column("status")
    for row in rows:
        table.add_row(*row)
    return table


def command_text(command: jsonl.JsonObject) -> str:
    """A command's type and fields, without its id and account: `settle payment=4.00`."""
    fields = " ".join(
        f"{name}={value}" for name, value in command.items() if name not in {"id", "account", "type"}
    )
    return f"{command['type']} {fields}".rstrip()


def event_text(event: Event) -> str:
    """One event in a clerk's words."""
    if isinstance(event, AccountOpened):
        return f"opened, shares {minor_text(event.my_share_bp)} % + {minor_text(event.company_share_bp)} %"
    if isinstance(event, Funded):
        return f"funded {minor_text(event.amount_minor)}"
    if isinstance(event, BalanceRecorded):
        return f"balance {minor_text(event.balance_minor)} on capital {minor_text(event.capital_minor)}"
    if isinstance(event, ProfitWithdrawn):
        return f"profit {minor_text(event.amount_minor)} withdrawn as payout {event.payout_id} (pending)"
    if isinstance(event, LossOpened):
        return (
            f"loss {minor_text(event.original_minor)} opened, shares frozen at "
            f"{minor_text(event.my_share_bp)} % + {minor_text(event.company_share_bp)} %"
        )
    if isinstance(event, LossWrittenOff):
        return f"loss {event.loss} written off (nothing payable at its shares)"
    if isinstance(event, Settled):
        return (
            f"paid {minor_text(event.payment_minor)}: "
            f"capital closed {minor_text(event.capital_closed_minor)}, "
            f"my share {minor_text(event.my_share_minor)}, company {minor_text(event.company_share_minor)}"
        )
    if isinstance(event, SharesSet):
        return f"shares set to {minor_text(event.my_share_bp)} % + {minor_text(event.company_share_bp)} %"
    if isinstance(event, PayoutConfirmed):
        return f"payout {event.payout_id} of {minor_text(event.amount_minor)} confirmed"
    raise AssertionError(f"an event this table does not know: {event!r}")


def entry_text(entry: Applied | Refused) -> str:
    """What a recorded entry did: its events, or the code that refused it."""
    if isinstance(entry, Refused):
        return f"refused: {entry.code.value}"
    return "; ".join(event_text(event) for event in entry.events) or "applied, nothing changed"


def ledger_line(seq: int, hash_: bytes, entry: Applied | Refused) -> str:
    """One entry as `ppk ledger` prints it: its chain position, the chain's hash after it (its first 16
    hex digits), its id, its command and what it did."""
    command = command_text(jsonl.command_object(entry.command))
    return f"{seq:>6}  {hash_.hex()[:16]}  {entry.command.id}  {command}  -> {entry_text(entry)}"


def results_table(rows: Iterable[tuple[str, str, str, str]], title: str | None = None) -> Table:
    """One row per command sent: (its id, the command, its result's status, what happened)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("id", "command", "status", "what happened"):
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    return table
