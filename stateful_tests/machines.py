"""Hypothesis state machines over the kernel, driven through the `Store` protocol (spec.md#invariants).

`SettlementMachine` sends JSON Lines commands, drawn around the edges that matter, through the codec
into a store and, in lockstep, into the independent reference model; after every step it checks all
ten invariants in their full form over every ledger, that each ledger replays to its account, that
no active loss is stuck, and that the views agree with the reference.

`CrashRetryMachine` models the world around the kernel: a client that times out and retries, a
process that dies before or after its transaction commits, restarts, and a payout dispatcher that dies
after a transfer, against a gateway that deduplicates by payout id. Its invariants: every
acknowledged command survives, no command takes effect twice, no payout is transferred twice, and
Σ transferred ≤ Σ profit withdrawn, with equality once the dispatcher has drained.

Both machines build their store with `make_store` (and the crash machine rebuilds it after a crash
with `reopen_store`), so a persistence adapter runs them by subclassing. Crashes come from wrapping
the store and the gateway (`faults`): production code has no crash parameter.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final, Protocol, cast

import attrs
import icontract
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ppk.adapters import canonical, jsonl
from ppk.adapters.cli import account_views
from ppk.adapters.dispatcher import Dispatched, Dispatcher, DispatchError, Gateway, confirm_id
from ppk.adapters.store import MemoryStore, PendingPayout, Store
from ppk.kernel import contracts
from ppk.kernel.state import (
    AMOUNT_MINOR_MAX,
    BP_PER_WHOLE,
    NOTHING_RECORDED,
    REFUSAL_CODES,
    Account,
    Applied,
    Code,
    Command,
    ConfirmPayout,
    Decision,
    Entry,
    Fund,
    Lookup,
    LossOpened,
    OpenAccount,
    Payout,
    PayoutStatus,
    RecordBalance,
    Refused,
    Rejected,
    Repeated,
    SetShares,
    Settle,
    payout_id,
)
from ppk.kernel.transitions import decide, fold, loss_payable_minor, replay_with_payouts
from ppk.stateful_tests import tampering
from ppk.stateful_tests.faults import Crash, CrashPoint, FaultyGateway, FaultyStore
from ppk.stateful_tests.reference import ReferenceBook

# --- Profiles ------------------------------------------------------------------------------------

settings.register_profile(
    "ci",
    max_examples=150,
    stateful_step_count=50,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
)
"""CI: a few minutes at most on 2 cores, the same examples on every run."""

settings.register_profile("deep", max_examples=2_000, stateful_step_count=120, deadline=None)
"""`ppk check`: many more examples and steps, fresh ones on every run."""

ACCOUNT_NAMES: Final = ("acme", "B", "a", "zeta.9", "acme.2")
"""Several accounts, among them two that sort by code point (`B` before `a`), and one whose id begins
with another's and sorts before that one's payout ids (`acme` < `acme.2` < `acme:c1`): what is keyed
by (account, payout id), as the outbox's pages are, must not mix them up."""

SHARES_BP: Final = st.one_of(
    st.sampled_from([100, 900, 4782, 1875, 5000, 1, 9_999, 10_000, 0]), st.integers(1, 9_999)
)
"""Shares around the edges: 0 %, 100 %, odd basis points, and anything between. Typical shares come
first: Hypothesis leans towards the first choice and towards 0, and with 0 % + 0 % every loss is
written off at once (E9), leaving nothing to settle."""

STYLES: Final = ("number", "string", "short", "padded")
"""How an amount is written: `5.05` or `5`, `"5.05"`, `"5.05"`/`"5"`, `"005.05"`."""

DAY_0: Final = datetime.date(2026, 1, 1)


# --- Rendering commands as lines, written in different ways --------------------------------------


@attrs.frozen(kw_only=True)
class Sent:
    """A command as the client means it, whatever way it is written on the line."""

    type: str
    id: str
    account: str
    fields: tuple[tuple[str, int | str | None], ...]
    """Amounts in minor units and shares in bp as ints; `date` and `payout` as strings."""

    def changed(self) -> Sent:
        """The same id and account with another payload: an idempotency conflict if the id is used."""
        fields: list[tuple[str, int | str | None]] = []
        for name, value in self.fields:
            if isinstance(value, int):
                fields.append((name, value + 1))
            elif name == "date":
                fields.append((name, None if value is not None else DAY_0.isoformat()))
            else:
                fields.append((name, f"{value}x"))
        if not self.fields:
            return self
        return attrs.evolve(self, fields=tuple(fields))


def quantity_literal(value: int, style: str) -> str:
    """A quantity in hundredths as a JSON literal, in one of the accepted ways of writing it."""
    whole, cents = divmod(value, 100)
    two = f"{whole}.{cents:02d}"
    if style == "number":
        return str(whole) if cents == 0 else two
    if style == "string":
        return json.dumps(two)
    if style == "short":
        return json.dumps(str(whole) if cents == 0 else two.rstrip("0"))
    return json.dumps(f"00{two}")


def render(sent: Sent, style: str) -> bytes:
    """The line of a command, its amounts written in `style`."""
    parts = [
        f'"id": {json.dumps(sent.id)}',
        f'"account": {json.dumps(sent.account)}',
        f'"type": {json.dumps(sent.type)}',
    ]
    for name, value in sent.fields:
        if value is None:
            continue
        literal = quantity_literal(value, style) if isinstance(value, int) else json.dumps(value)
        parts.append(f"{json.dumps(name)}: {literal}")
    return ("{" + ", ".join(parts) + "}").encode("utf-8")


BAD_LINES: Final = (
    b'{"id": "bad1", "account": "acme", "type": "fund", "amount": 1e3}',
    b'{"id": "bad2", "account": "acme", "type": "fund", "amount": "-0"}',
    b'{"id": "bad3", "account": "acme", "type": "settle", "payment": "1.234"}',
    b'{"id": "bad4", "account": "acme", "type": "settle", "payment": 0}',
    b'{"id": "bad5", "account": "acme", "type": "record_balance", "balance": " 5"}',
    b'{"id": "bad6", "account": "acme", "type": "set_shares", "my_share": "60", "company_share": "41"}',
    b'{"id": "bad7", "account": "acme", "type": "fund", "amount": "5", "amount": "6"}',
    b'{"id": "bad8", "account": "acme", "type": "fund", "amount": NaN}',
    b'{"id": "bad9", "account": "acme", "type": "record_balance", "balance": "1", "date": "2026-02-30"}',
    b'{"id": "", "account": "acme", "type": "fund", "amount": "5"}',
    b'{"id": "bad10", "account": "ac me", "type": "fund", "amount": "5"}',
    b'{"id": "bad11", "account": "acme", "type": "refund", "amount": "5"}',
    b'{"id": "bad12", "account": "acme", "type": "fund", "amount": "\xd9\xa5"}',
    b'{"id": "bad13", "account": "acme", "type": "fund", "amount": "5", "memo": "x"}',
    b"\xff\xfe not utf-8",
    b"[1, 2]",
    *(
        b'{"id": "bad14", "account": "acme", "type": "fund", "amount": %s}' % value
        for value in (b"false", b"true", b"null", b"{}", b"[]")
    ),
)
"""Lines that break a boundary rule; the reference must judge each the same way."""

QUOTED_IN_MESSAGE: Final = {
    b'{"id": "bad14", "account": "acme", "type": "fund", "amount": %s}' % value: words
    for value, words in (
        (b"false", "not false"),
        (b"true", "not true"),
        (b"null", "not null"),
        (b"{}", "not an object"),
        (b"[]", "not an array"),
    )
}
"""What the rejection of a line must say of the value at fault, as a clerk would recognise it in the
line (spec.md#malformed: every bad input named); the reference words its messages its own way."""


BACKEND_EDGES: Final[tuple[tuple[str, object], ...]] = (
    ("id", ""),
    ("id", "i" * 128),
    ("id", "i" * 129),
    ("id", "a\x00b"),
    ("id", "a\x7f"),
    ("id", "\ud800"),
    ("account", ""),
    ("account", "a" * 64),
    ("account", "a" * 65),
    ("account", "a b"),
    ("quantity", -1),
    ("quantity", 0),
    ("quantity", 1),
    ("quantity", AMOUNT_MINOR_MAX),
    ("quantity", AMOUNT_MINOR_MAX + 1),
    ("quantity", BP_PER_WHOLE + 1),
)
"""Edges of the fields a backend fills in itself (spec.md#fields), which the codec never lets through."""


def backend_command(kind: str, command_id: str, account: str, edge: tuple[str, object]) -> Command:
    """A command as a backend builds it, with one field at an edge: `("quantity", -1)` sets the first one."""
    field, value = edge
    command_id = value if field == "id" and isinstance(value, str) else command_id
    account = value if field == "account" and isinstance(value, str) else account
    quantity = value if field == "quantity" and isinstance(value, int) else 100
    if kind == "fund":
        return Fund(id=command_id, account=account, amount_minor=quantity)
    if kind == "record_balance":
        return RecordBalance(id=command_id, account=account, balance_minor=quantity)
    if kind == "settle":
        return Settle(id=command_id, account=account, payment_minor=quantity)
    return SetShares(id=command_id, account=account, my_share_bp=quantity, company_share_bp=0)


# --- What every machine checks -------------------------------------------------------------------


def check(condition: bool, message: str) -> None:
    """Fail the run; an explicit raise, so that `python -O` cannot remove the check."""
    if not condition:
        raise AssertionError(message)


def check_ledgers(store: Store) -> dict[str, tuple[Entry, ...]]:
    """spec.md#invariants: the ten full forms over each ledger; it replays to the stored account, payouts.

    Returns the ledgers it read, so that a machine's other checks need not read them again.
    """
    ledgers: dict[str, tuple[Entry, ...]] = {}
    pending: list[tuple[str, str]] = []
    for account_id in store.account_ids():
        ledger, account = tuple(store.ledger(account_id)), store.account(account_id)
        ledgers[account_id] = ledger
        payouts = store.payouts(account_id)
        pending.extend((account_id, p.id) for p in payouts if p.status is PayoutStatus.PENDING)
        broken = contracts.broken_invariants_over(ledger, account, payouts)
        check(broken == [], f"account {account_id!r} breaks {broken} over its ledger")
        replayed, replayed_payouts = replay_with_payouts(ledger)
        check(replayed == account, f"account {account_id!r} is not what its ledger replays to")
        check(
            sorted(replayed_payouts.values(), key=lambda payout: payout.id) == payouts,
            f"the payouts of {account_id!r} are not what its ledger replays to",
        )
        # Each step adds at most one entry, and this runs after every step: each is looked up once.
        if ledger:
            last = ledger[-1]
            check(
                store.entry(account_id, last.command.id) == last,
                f"account {account_id!r} looks up another entry under {last.command.id!r}",
            )
        check_losses_are_shortfalls(ledger)
    # The outbox the dispatcher works through: each pending payout once, by account then payout id, as
    # the books have them (the SQL machines read it in pages of 2 or 3: sql_machines.PAGE_ROWS). Read
    # one past them at most: an outbox that lists a payout again, page after page, would never end
    # (the seed-43 sample's sql.py 622, 634 now, `!=` for `>` in the paging key, ran to the timeout).
    listed = [
        (one.account, one.payout.id) for one in itertools.islice(store.pending_payouts(), len(pending) + 1)
    ]
    check(listed == pending, f"the outbox lists {listed}, the books have {pending} pending")
    return ledgers


def check_stored_form(decision: Decision) -> None:
    """spec.md#encoding: a recorded entry is stored as the spec's bytes, and is what they decode to; a
    refusal is its command and code, so the message it was answered with, which is not stored, is not
    part of it either."""
    if isinstance(decision, (Applied, Refused)):
        encoded = canonical.encode_entry(decision)
        meant = spec_encoding(decision)
        check(encoded == meant, f"{decision!r} is stored as {encoded!r}, not spec.md#encoding's {meant!r}")
        stored = canonical.decode_entry(encoded)
        check(stored == decision, f"{decision!r} is not what its stored form decodes to: {stored!r}")


def spec_encoding(entry: Applied | Refused) -> bytes:
    """spec.md#encoding's rules 1-4 as a reader of the spec writes them, without canonical.py: every
    type named in snake case, every field of the kernel's class under its own name, dates as
    YYYY-MM-DD, `version` 1, then JSON with sorted keys and no whitespace, in UTF-8."""

    def named(cls: type) -> str:  # OpenAccount: open_account, LossWrittenOff: loss_written_off
        return "".join(f"_{letter.lower()}" if letter.isupper() else letter for letter in cls.__name__)[1:]

    def fields(value: Any) -> dict[str, Any]:  # an attrs instance
        return {
            name: field.isoformat() if isinstance(field, datetime.date) else field
            for name, field in attrs.asdict(value, recurse=False).items()
        }

    command = {"type": named(type(entry.command)), **fields(entry.command)}
    stored: dict[str, Any] = {"command": command, "version": 1}
    if isinstance(entry, Applied):
        events = [{"type": named(type(event)), **fields(event)} for event in entry.events]
        stored |= {"outcome": "applied", "events": events}
    else:
        stored |= {"outcome": "refused", "code": entry.code.value}
    return json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_losses_are_shortfalls(ledger: Sequence[Entry]) -> None:
    """spec.md#record-balance: a loss opens only when CB falls below CAPITAL, for what it falls short."""
    for entry in ledger:
        for event in entry.events if isinstance(entry, Applied) else ():
            if isinstance(event, LossOpened):
                check(
                    0 < event.original_minor == event.capital_minor - event.balance_minor,
                    f"{entry.command.id!r} opened a loss that is no shortfall: {event}",
                )


def check_losses_can_be_settled(store: Store) -> None:
    """spec.md#rounding: an active loss always owes at least one minor unit (E4, E8, E9)."""
    for account_id in store.account_ids():
        account = store.account(account_id)
        loss = account.loss if account is not None else None
        if loss is not None:
            payable = loss_payable_minor(loss)
            check(payable > 0, f"account {account_id!r} has a stuck loss: {loss}")


CONTRACTS: Final = __debug__
"""Whether the kernel's contracts run: icontract enables them by `__debug__`, which `python -O` clears."""


def check_forgeries_are_caught(ledger: Sequence[Entry], account: Account, payouts: Sequence[Payout]) -> int:
    """spec.md#e6: each forgery of these books is caught by the invariant it breaks; how many there were.

    A full form that holds over an honest ledger could hold over any; each forgery in `tampering`
    steps one unit past a rule, so a check weaker than its rule lets one of them through. Under
    `python -O` the kernel has no contracts (icontract enables them by `__debug__`): the invariants,
    in full and inductive form, must catch every forgery still, and what only `fold`'s and
    `decide`'s contracts refuse is not asked of them.
    """
    count = 0
    check(contracts.account_is_consistent(account), f"account {account.id!r} is not consistent")
    for forged in tampering.account_forgeries(account, payouts):
        count += 1
        stored = payouts if forged.payouts is None else forged.payouts
        if forged.account is not None and CONTRACTS:
            check_fold_names_what_breaks(forged.account, forged.name)
        broken = contracts.broken_invariants_over(ledger, forged.account, stored)
        for name in sorted(forged.breaks):
            check(name in broken, f"{name} misses a forged account ({forged.name}) of {account.id!r}")
        if forged.inductive is not None:
            assert forged.account is not None
            check(
                not forged.inductive(forged.account),
                f"{forged.inductive.__name__} misses a forged account ({forged.name}) of {account.id!r}",
            )
            check(
                not contracts.account_is_consistent(forged.account),
                f"account_is_consistent misses a forged account ({forged.name}) of {account.id!r}",
            )
    for forged_ledger in tampering.ledger_forgeries(ledger, account, payouts):
        count += 1
        stored = payouts if forged_ledger.payouts is None else forged_ledger.payouts
        broken = contracts.broken_invariants_over(
            forged_ledger.entries, forged_ledger.account or account, stored
        )
        for name in sorted(forged_ledger.breaks):
            check(name in broken, f"{name} misses a forged ledger ({forged_ledger.name}) of {account.id!r}")
    count += check_decide_takes_only_its_own(ledger, account) if CONTRACTS else 0
    for step in tampering.step_forgeries(ledger):
        if step.inductive is None and not CONTRACTS:
            continue  # only fold's contracts would catch it
        count += 1
        if step.inductive is not None:
            assert step.after is not None
            check(
                not step.inductive(step.before, step.entry, step.lookup, step.after),
                f"the one-step form misses a forged step ({step.name}) of {account.id!r}",
            )
        if step.foldable and CONTRACTS:
            try:
                fold(step.before, step.entry, step.lookup)
            except contracts.ContractBroken as error:
                check(
                    step.refused_by is None or error.contract == step.refused_by,
                    f"fold refused a forged entry ({step.name}) by {error.contract!r}, "
                    f"not {step.refused_by!r}",
                )
            except icontract.ViolationError as error:  # not a table's: fold's exact preconditions
                check_refused_by_the_exact_preconditions(
                    error, f"a forged entry ({step.name})", (REACHABLE, DECIDED)
                )
            except AssertionError:  # fold's own assertion
                check(step.refused_by is None, f"fold refused a forged entry ({step.name}) by an assertion")
            else:
                raise AssertionError(f"fold took a forged entry ({step.name}) of {account.id!r}")
    return count


def check_decide_takes_only_its_own(ledger: Sequence[Entry], account: Account) -> int:
    """decide's preconditions: a command of another account, what a store found under another key
    (the entry of another id or account, a payout the command does not name), or a history for an
    account that does not exist, is refused; how many were tried."""
    last = ledger[-1]
    confirmation = ConfirmPayout(
        id=tampering.FORGED_ID, account=account.id, payout=payout_id(account.id, tampering.FORGED_ID)
    )
    count = 0
    for other in ("", "\U0010ffff"):  # account, command and payout ids that sort before and after any other
        of_id, of_account = attrs.evolve(last.command, id=other), attrs.evolve(last.command, account=other)
        for what, command, lookup in (
            ("a command of account", of_account, NOTHING_RECORDED),
            ("the entry of id", last.command, Lookup(entry=attrs.evolve(last, command=of_id))),
            ("the entry of account", last.command, Lookup(entry=attrs.evolve(last, command=of_account))),
            (
                "the payout",
                confirmation,
                Lookup(payout=Payout(id=other, amount_minor=1, status=PayoutStatus.PENDING)),
            ),
        ):
            count += 1
            try:
                decide(account, command, lookup)
            except icontract.ViolationError:
                pass
            else:
                raise AssertionError(f"decide took {what} {other!r} for {command!r} of {account.id!r}")
    # The account's first command again, as if the account did not exist yet but its id were recorded.
    count += 1
    first = ledger[0]
    try:
        decide(None, first.command, Lookup(entry=first))
    except icontract.ViolationError:
        pass
    else:
        raise AssertionError(f"decide took a history for the new account {account.id!r}")
    return count


FOLD_ACCOUNT_CONTRACTS: Final = (
    ("shares are percentages", contracts.shares_are_percentages),
    ("I10", contracts.amounts_are_not_negative),
    ("I9", contracts.loss_is_accounted),
    ("I7", contracts.payouts_are_within_profit_withdrawn),
    ("I6", contracts.shares_add_up_to_payments),
    ("I5", contracts.balance_agrees_with_loss),
    ("I4", contracts.loss_implies_capital_above_balance),
    ("I2", contracts.capital_is_not_negative),
    ("I1", contracts.capital_is_conserved),
)
"""fold's one-account postconditions by name, in the order `contracts.FOLD_ENSURES` checks them (written
out here, not read from it): the first that fails is the one a refusal names."""


def check_fold_names_what_breaks(account: Account, forgery: str) -> None:
    """spec.md#e6: folding a refusal into a forged account is refused, naming the first broken invariant.

    A refusal changes nothing but its record, so what fold's result breaks is what the account broke;
    which postcondition names it pins each of them down: with one removed, the next one would speak.
    """
    expected = next((name for name, holds in FOLD_ACCOUNT_CONTRACTS if not holds(account)), None)
    refusal = Refused(
        command=Settle(id="forged-refusal", account=account.id, payment_minor=1),
        code=Code.NO_ACTIVE_LOSS,
        message="forged",
    )
    try:
        fold(account, refusal, NOTHING_RECORDED)
    except contracts.ContractBroken as error:
        check(
            expected is not None and error.contract == expected,
            f"fold refused a forged account ({forgery}) by {error.contract!r}, not {expected!r}",
        )
    except icontract.ViolationError as error:  # not a table's: fold's exact preconditions
        # The refusal is not decide's for this account, so only an account that breaks nothing passes
        # on to the precondition that the entry be decide's, and one that breaks something must not.
        precondition = REACHABLE if expected is not None else DECIDED
        check_refused_by_the_exact_preconditions(error, f"a forged account ({forgery})", (precondition,))
    else:
        check(expected is None, f"fold took a forged account ({forgery}) that breaks {expected}")


REACHABLE: Final = "a reachable account"
DECIDED: Final = "the entry is the decision of its command"
"""fold's exact preconditions (transitions.py), by their descriptions."""


def check_refused_by_the_exact_preconditions(
    error: icontract.ViolationError, forged: str, preconditions: tuple[str, ...]
) -> None:
    """Under `ICONTRACT_SLOW=1` (the CrossHair run's setting), `fold` first requires a reachable account
    and the entry `decide` gives for it, so these refuse a forgery before any table of contracts can
    name what it breaks; without the setting they do not run. The refusal names one of `preconditions`."""
    check(icontract.SLOW, f"fold refused {forged} by a contract that runs only under ICONTRACT_SLOW")
    named = str(error).split(":\n", 1)[-1]
    check(
        named.startswith(preconditions),
        f"fold refused {forged} by a precondition not one of {preconditions}: {named[:300]}",
    )


def status_of(decision: Decision) -> tuple[str, str | None]:
    """A decision as a result names it: (status, code)."""
    status, rejection = jsonl.decision_status(decision)
    return status, str(rejection.code) if rejection is not None else None


def accounts_where(store: Store, wanted: Callable[[Account], bool]) -> list[str]:
    """The ids of the store's accounts for which `wanted` holds."""
    return [
        account_id for account_id in store.account_ids() if wanted(store.account(account_id) or _nothing())
    ]


def largest_unpayable_loss_minor(total_share_bp: int, capital_minor: int) -> int:
    """The largest loss that owes no minor unit at these shares: it is written off (E9)."""
    return (BP_PER_WHOLE - 1) // total_share_bp if total_share_bp else capital_minor


@attrs.define
class Exploration:
    """What the machines explored: printed by `ppk check`."""

    steps: int = 0
    commands: int = 0
    outcomes: collections.Counter[str] = attrs.Factory(collections.Counter)
    crash_points: collections.Counter[str] = attrs.Factory(collections.Counter)
    runs: int = 0
    forgeries: int = 0


EXPLORED = Exploration()
"""Counters across every machine run in this process."""


# --- The kernel, in lockstep with the reference model --------------------------------------------


class SettlementMachine(RuleBasedStateMachine):
    """Every command, drawn around its edges, through the codec and a store; the reference beside it."""

    accounts = Bundle("accounts")
    commands = Bundle("commands")

    LOCKSTEP: ClassVar[bool] = True
    """Compare every result and view with the reference model (the teeth tests switch it off)."""

    FORGERIES: ClassVar[bool] = True
    """Forge the books and require the checks to catch it (off in the teeth tests, whose checks are off)."""

    last_lines: ClassVar[list[bytes]] = []
    """The lines of the latest run: after a failure, the shrunk failing program, as JSON Lines."""

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.reference = ReferenceBook() if self.LOCKSTEP else None
        self.lines: list[bytes] = []
        type(self).last_lines = self.lines
        self.first_outcome: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.next_id: dict[str, int] = {}
        EXPLORED.runs += 1

    def make_store(self) -> Store:
        """The store under test; a persistence adapter overrides this."""
        return MemoryStore()

    # Sending a line ---------------------------------------------------------------------------

    def fresh_id(self, account: str) -> str:
        """An id new to `account`: c1, c2, … in each account. An id is unique within its account
        only (spec.md#i8), so the same ids recur across accounts, and a store that looked up an entry,
        a loss or a payout by its id alone, or by a wrong account, would mix them."""
        self.next_id[account] = self.next_id.get(account, 0) + 1
        return f"c{self.next_id[account]}"

    def send_line(self, line: bytes, built: Command | None = None) -> dict[str, Any]:
        """Run one line through the codec and the store, and the reference; they must agree.

        With `built`, a command a backend made without the codec goes to the store instead, and
        `line` is that command written out for the reference; the echoed id and account are not
        compared then, as the codec echoes only what it could read.
        """
        self.lines.append(line)  # first: a failure inside the store must find it in `last_lines`
        decoded = built if built is not None else jsonl.decode_line(line)
        decision = None if isinstance(decoded, jsonl.Malformed) else self.store.execute(decoded)
        return self.take_result(len(self.lines), line, decoded, decision, built=built is not None)

    def send_group(self, lines: list[bytes]) -> list[dict[str, Any]]:
        """Lines as `ppk apply` runs them: their commands decided and committed as one group
        (`execute_many`), the malformed lines among them answered in their places. Each result must
        be the one the reference gives the same lines one at a time."""
        first = len(self.lines) + 1
        self.lines.extend(lines)
        decoded = [jsonl.decode_line(line) for line in lines]
        commands = [one for one in decoded if not isinstance(one, jsonl.Malformed)]
        decisions = iter(self.execute_group(commands))
        return [
            self.take_result(number, line, one, None if isinstance(one, jsonl.Malformed) else next(decisions))
            for number, (line, one) in enumerate(zip(lines, decoded, strict=True), start=first)
        ]

    def execute_group(self, commands: list[Command]) -> list[Decision]:
        """The store's `execute_many` (a SQL machine also counts its statements)."""
        decisions: list[Decision] = self.store.execute_many(commands)  # type: ignore[attr-defined]
        return decisions

    def take_result(
        self,
        number: int,
        line: bytes,
        decoded: Command | jsonl.Malformed,
        decision: Decision | None,
        built: bool = False,
    ) -> dict[str, Any]:
        """The result of line `number`, which the store decided (`decision`, None if malformed), checked."""
        EXPLORED.commands += 1
        if isinstance(decoded, jsonl.Malformed):
            result = jsonl.malformed_result(number, decoded)
        else:
            assert decision is not None
            result = jsonl.decision_result(number, decoded, decision)
            self.check_outcome_never_changes(decoded, decision)
            check_stored_form(decision)
        kind = decoded.__class__.__name__ if not isinstance(decoded, jsonl.Malformed) else "line"
        kind = f"backend {kind}" if built else kind
        EXPLORED.outcomes[f"{kind}: {result.get('error', {}).get('code', result['status'])}"] += 1
        if self.reference is not None:
            expected = self.reference.apply_line(line)
            assert expected is not None, "the machine sends no blank line"
            compared = slice(2, None) if built else slice(None)
            check(
                _comparable(result)[compared] == _comparable(expected)[compared],
                f"line {line!r}: the kernel says {_comparable(result)}, "
                f"the reference says {_comparable(expected)}",
            )
        return result

    def send(self, sent: Sent, style: str) -> Sent:
        self.send_line(render(sent, style))
        return sent

    def check_outcome_never_changes(self, command: Command, decision: Decision) -> None:
        """spec.md#i8: once an id's outcome is recorded, the same command always gets it back."""
        key = (command.account, command.id)
        status, code = status_of(decision)
        if isinstance(decision, (Applied, Refused)):
            check(key not in self.first_outcome, f"I8: id {key} was recorded twice")
            self.first_outcome[key] = (status, code)
        elif isinstance(decision, Repeated):
            first = self.first_outcome.get(key)
            expected = ("duplicate", None) if first == ("applied", None) else first
            check((status, code) == expected, f"I8: id {key} first got {first}, now {(status, code)}")

    def account_now(self, account_id: str) -> Account | None:
        return self.store.account(account_id)

    # Rules: one per command -------------------------------------------------------------------

    @initialize(target=accounts, my_share_bp=SHARES_BP, company_share_bp=SHARES_BP)
    def open_first_account(self, my_share_bp: int, company_share_bp: int) -> str:
        """An account with capital from the start, so that losses can open in a short run."""
        company_share_bp = min(company_share_bp, 10_000 - my_share_bp)
        self.open("acme", my_share_bp, company_share_bp, "string")
        self.send(self.funding("acme", 100_000), "string")
        return "acme"

    @rule(
        target=accounts,
        data=st.data(),
        my_share_bp=SHARES_BP,
        company_share_bp=SHARES_BP,
        style=st.sampled_from(STYLES),
    )
    def open_account(self, data: st.DataObject, my_share_bp: int, company_share_bp: int, style: str) -> str:
        # Mostly a new account; an existing one now and then, for account_exists.
        new = [name for name in ACCOUNT_NAMES if self.store.account(name) is None]
        account = data.draw(
            st.sampled_from(new or ACCOUNT_NAMES) | st.sampled_from(ACCOUNT_NAMES), label="account"
        )
        self.open(account, my_share_bp, company_share_bp, style)
        return account

    def open(self, account: str, my_share_bp: int, company_share_bp: int, style: str) -> None:
        self.send(self.opening(account, my_share_bp, company_share_bp), style)

    def opening(self, account: str, my_share_bp: int, company_share_bp: int) -> Sent:
        """An open_account under the account's next fresh id."""
        fields = (("my_share", my_share_bp), ("company_share", company_share_bp))
        return Sent(type="open_account", id=self.fresh_id(account), account=account, fields=fields)

    def funding(self, account: str, amount_minor: int) -> Sent:
        """A fund under the account's next fresh id."""
        fields = (("amount", amount_minor),)
        return Sent(type="fund", id=self.fresh_id(account), account=account, fields=fields)

    @rule(target=commands, account=accounts, data=st.data(), style=st.sampled_from(STYLES))
    def fund(self, account: str, data: st.DataObject, style: str) -> Sent:
        state = self.account_now(account)
        funding = state.funding_minor if state else 0
        loss = state.loss.remaining_minor if state and state.loss else 0
        amount = data.draw(
            st.one_of(
                st.sampled_from([1, 99, 100_000]),
                st.integers(1, 10**7),
                st.sampled_from([max(1, loss), AMOUNT_MINOR_MAX - funding, AMOUNT_MINOR_MAX - funding + 1]),
            ),
            label="amount_minor",
        )
        return self.send(self.funding(account, amount), style)

    @rule(target=commands, account=accounts, data=st.data(), style=st.sampled_from(STYLES))
    def record_balance(self, account: str, data: st.DataObject, style: str) -> Sent:
        state = self.account_now(account)
        capital = state.capital_minor if state else 100_000
        total_bp = state.total_share_bp if state else 1_000
        unpayable = largest_unpayable_loss_minor(total_bp, capital)
        withdrawn = state.profit_withdrawn_minor if state else 0
        balance = data.draw(
            st.one_of(
                st.sampled_from(
                    [
                        capital - 1,
                        capital,
                        capital + 1,
                        0,
                        capital - unpayable,
                        capital - unpayable - 1,
                        capital // 2,
                        capital + 10**6,
                        capital + AMOUNT_MINOR_MAX - withdrawn,
                        capital + AMOUNT_MINOR_MAX - withdrawn + 1,
                    ]
                ),
                st.integers(0, 2 * capital + 1),
            ).map(lambda value: min(max(value, 0), AMOUNT_MINOR_MAX)),
            label="balance_minor",
        )
        latest = state.balance_date_latest if state else None
        date = data.draw(
            st.sampled_from(
                [None, latest, latest + datetime.timedelta(days=1), latest - datetime.timedelta(days=1)]
                if latest
                else [None, DAY_0]
            ),
            label="date",
        )
        fields: tuple[tuple[str, int | str | None], ...] = (
            ("balance", balance),
            ("date", date.isoformat() if date else None),
        )
        return self.send(
            Sent(type="record_balance", id=self.fresh_id(account), account=account, fields=fields), style
        )

    @rule(target=commands, account=accounts, data=st.data(), style=st.sampled_from(STYLES))
    def record_loss(self, account: str, data: st.DataObject, style: str) -> Sent:
        """A balance below CAPITAL: a loss opens, or is written off if it owes nothing (E9)."""
        state = self.account_now(account)
        capital = state.capital_minor if state else 100_000
        total_bp = state.total_share_bp if state else 1_000
        unpayable = largest_unpayable_loss_minor(total_bp, capital)
        # The smallest loss that owes a minor unit, and a few of its multiples: where rounding bites.
        smallest = unpayable + 1
        shortfall = data.draw(
            st.sampled_from(
                [
                    capital,
                    capital // 2,
                    unpayable,
                    smallest,
                    2 * smallest,
                    2 * smallest + 1,
                    3 * smallest - 1,
                    16,
                ]
            ).filter(lambda value: 0 < value <= capital)
            if capital > 0
            else st.just(0),
            label="loss_minor",
        )
        fields = (("balance", capital - shortfall), ("date", None))
        return self.send(
            Sent(type="record_balance", id=self.fresh_id(account), account=account, fields=fields), style
        )

    @rule(target=commands, account=accounts, data=st.data(), style=st.sampled_from(STYLES))
    def settle(self, account: str, data: st.DataObject, style: str) -> Sent:
        return self.settle_on(account, data, style)

    def accounts_where(self, wanted: Callable[[Account], bool]) -> list[str]:
        return accounts_where(self.store, wanted)

    @precondition(lambda self: self.accounts_where(lambda account: account.loss is not None))
    @rule(target=commands, data=st.data(), style=st.sampled_from(STYLES))
    def settle_active_loss(self, data: st.DataObject, style: str) -> Sent:
        """A payment around the payable of an active loss: partial, payable, or one too many."""
        with_loss = self.accounts_where(lambda account: account.loss is not None)
        return self.settle_on(data.draw(st.sampled_from(with_loss), label="account"), data, style)

    def settle_on(self, account: str, data: st.DataObject, style: str) -> Sent:
        state = self.account_now(account)
        loss = state.loss if state else None
        payable = loss_payable_minor(loss) if loss else 0
        payment = data.draw(
            st.sampled_from([1, payable - 1, payable, payable + 1, payable // 2, 2, payable - 2]).filter(
                lambda p: p > 0
            ),
            label="payment_minor",
        )
        sent = Sent(type="settle", id=self.fresh_id(account), account=account, fields=(("payment", payment),))
        return self.send(sent, style)

    @rule(
        target=commands,
        account=accounts,
        my_share_bp=SHARES_BP,
        company_share_bp=SHARES_BP,
        style=st.sampled_from(STYLES),
    )
    def set_shares(self, account: str, my_share_bp: int, company_share_bp: int, style: str) -> Sent:
        fields = (("my_share", my_share_bp), ("company_share", company_share_bp))
        return self.send(
            Sent(type="set_shares", id=self.fresh_id(account), account=account, fields=fields), style
        )

    @rule(target=commands, account=accounts)
    def confirm_payout(self, account: str) -> Sent:
        """A payout id the account does not have, or another account's: `unknown_payout`."""
        state = self.account_now(account)
        own = [payout.id for payout in self.store.payouts(account)]
        payout = next(iter(own), "other:c1") if state else f"{account}:c1"
        payout = payout.replace(account + ":", "other:") if own else payout
        sent = Sent(
            type="confirm_payout", id=self.fresh_id(account), account=account, fields=(("payout", payout),)
        )
        return self.send(sent, "string")

    @precondition(lambda self: self.accounts_where(lambda account: account.payout_count > 0))
    @rule(target=commands, data=st.data())
    def confirm_known_payout(self, data: st.DataObject) -> Sent:
        """A payout of the account, pending or already confirmed."""
        with_payouts = self.accounts_where(lambda account: account.payout_count > 0)
        account = data.draw(st.sampled_from(with_payouts), label="account")
        payout = data.draw(
            st.sampled_from([payout.id for payout in self.store.payouts(account)]), label="payout"
        )
        sent = Sent(
            type="confirm_payout", id=self.fresh_id(account), account=account, fields=(("payout", payout),)
        )
        return self.send(sent, "string")

    @precondition(lambda self: self.accounts_where(lambda account: account.loss is None))
    @rule(
        target=commands,
        data=st.data(),
        profit=st.sampled_from([1, 99, 100_000, 10**9]),
        style=st.sampled_from(STYLES),
    )
    def record_profit(self, data: st.DataObject, profit: int, style: str) -> Sent:
        """A balance above CAPITAL with no loss active: the profit is withdrawn as a payout."""
        without_loss = self.accounts_where(lambda account: account.loss is None)
        account = data.draw(st.sampled_from(without_loss), label="account")
        state = self.account_now(account) or _nothing()
        fields = (("balance", state.capital_minor + profit), ("date", None))
        return self.send(
            Sent(type="record_balance", id=self.fresh_id(account), account=account, fields=fields), style
        )

    # Rules: retries and bad lines -------------------------------------------------------------

    @rule(sent=commands, style=st.sampled_from(STYLES))
    def retry(self, sent: Sent, style: str) -> None:
        """The same command again, perhaps written differently: a recorded id's outcome, no change.

        An id whose first attempt was rejected (not recorded) is free: the retry is a first attempt.
        """
        before = self.account_now(sent.account)
        recorded = self.store.entry(sent.account, sent.id)
        self.send(sent, style)
        if recorded is not None:
            check(self.account_now(sent.account) == before, f"I8: retrying {sent} changed the account")

    @rule(sent=commands, account=accounts, style=st.sampled_from(STYLES))
    def same_id_on_another_account(self, sent: Sent, account: str, style: str) -> None:
        """A command id is unique within its account only: the same id and payload on another account
        is another command, decided there, and neither account's books may be read for the other's."""
        if account != sent.account:
            self.send(attrs.evolve(sent, account=account), style)

    @precondition(lambda self: self.accounts_where(lambda account: account.loss is not None))
    @rule(data=st.data(), elsewhere=st.sampled_from(ACCOUNT_NAMES), capital=st.integers(2, 10**6))
    def open_a_loss_under_the_same_id_elsewhere(
        self, data: st.DataObject, elsewhere: str, capital: int
    ) -> None:
        """A loss opened on another account by a command with the same id as an active loss's (the
        account opened and funded first if need be): each loss stays its own account's, however the
        two are then settled, though a store keys loss rows by account and opening id."""
        with_loss = self.accounts_where(lambda account: account.loss is not None)
        source = data.draw(st.sampled_from(with_loss), label="account")
        loss = (self.account_now(source) or _nothing()).loss
        assert loss is not None
        if elsewhere == source or self.store.entry(elsewhere, loss.opened_by) is not None:
            return
        if self.account_now(elsewhere) is None:
            self.open(elsewhere, 5000, 5000, "string")
        state = self.account_now(elsewhere)
        if state is None or state.loss is not None:
            return
        if state.capital_minor == 0:
            self.send(self.funding(elsewhere, capital), "string")
        state = self.account_now(elsewhere) or _nothing()
        if state.capital_minor == 0:
            return
        balance = data.draw(st.integers(0, state.capital_minor - 1), label="balance_minor")
        fields = (("balance", balance), ("date", None))
        self.send(Sent(type="record_balance", id=loss.opened_by, account=elsewhere, fields=fields), "string")

    @rule(sent=commands, style=st.sampled_from(STYLES))
    def retry_changed(self, sent: Sent, style: str) -> None:
        """The same id with another payload: `idempotency_conflict` if the id recorded another command."""
        before = self.account_now(sent.account)
        line = render(sent.changed(), style)
        result = self.send_line(line)
        entry = self.store.entry(sent.account, sent.id)
        if entry is not None and entry.command != jsonl.decode_line(line):
            check(
                result.get("error", {}).get("code") == "idempotency_conflict",
                f"changed retry of {sent} gave {result}",
            )
            check(self.account_now(sent.account) == before, f"changed retry of {sent} changed the account")

    @rule(
        account=accounts,
        edge=st.sampled_from(BACKEND_EDGES),
        kind=st.sampled_from(["fund", "record_balance", "settle", "set_shares"]),
    )
    def backend_command(self, account: str, edge: tuple[str, object], kind: str) -> None:
        """A command a backend built, bypassing the codec: the kernel judges it as the codec would.

        spec.md#readings 9: the kernel checks ids, accounts and quantities itself. The reference judges
        the same command written as a line, and the two must agree.
        """
        command = backend_command(kind, self.fresh_id(account), account, edge)
        self.send_line(jsonl.encode_line(jsonl.command_object(command))[:-1], built=command)

    @precondition(lambda self: hasattr(self.store, "execute_many"))
    @rule(
        items=st.lists(
            st.one_of(
                st.tuples(st.just("again"), commands, st.sampled_from(STYLES)),
                st.tuples(st.just("changed"), commands, st.sampled_from(STYLES)),
                st.tuples(st.just("elsewhere"), commands, accounts),
                st.tuples(st.just("fund"), accounts, st.integers(1, 10**6)),
                st.tuples(st.just("open"), st.sampled_from(ACCOUNT_NAMES), SHARES_BP),
                st.tuples(st.just("bad"), st.sampled_from(BAD_LINES), st.none()),
                st.tuples(st.just("withdraw"), accounts, st.integers(1, 10**6)),
            ),
            min_size=2,
            max_size=8,
        )
    )
    def send_a_group(self, items: list[tuple[str, Any, Any]]) -> None:
        """Commands as `ppk apply` commits them, many in one transaction, over several accounts:
        commands sent before (so answered from the ledger, or decided again if they were rejected),
        the same ids with other payloads or on other accounts, new funding, accounts opened,
        malformed lines between, a profit withdrawn and its payout confirmed (a payout the group
        writes and confirms, sql.py 877, which no group did: the model-checking suite's coverage).
        A SQL store reads, decides and writes a group in bulk (`_Group`); the results must be those
        of the same lines one at a time, and every step's checks of the books then run on what it
        wrote."""
        lines = []
        for kind, what, how in items:
            if kind == "fund":
                lines.append(render(self.funding(what, how), "string"))
            elif kind == "open":
                lines.append(render(self.opening(what, how, 10_000 - how), "short"))
            elif kind == "bad":
                lines.append(what)
            elif kind == "withdraw":
                state = self.account_now(what)
                capital = state.capital_minor if state else 0
                withdrawal = Sent(
                    type="record_balance",
                    id=self.fresh_id(what),
                    account=what,
                    fields=(("balance", min(capital + how, AMOUNT_MINOR_MAX)), ("date", None)),
                )
                confirmation = Sent(
                    type="confirm_payout",
                    id=self.fresh_id(what),
                    account=what,
                    fields=(("payout", payout_id(what, withdrawal.id)),),
                )
                lines += [render(withdrawal, "string"), render(confirmation, "string")]
            elif kind == "elsewhere":
                lines.append(render(attrs.evolve(what, account=how), "string"))
            else:
                lines.append(render(what if kind == "again" else what.changed(), how))
        self.send_group(lines)

    @rule(line=st.sampled_from(BAD_LINES))
    def bad_line(self, line: bytes) -> None:
        """A line that breaks a boundary rule changes nothing and records nothing."""
        before = {account_id: self.store.account(account_id) for account_id in self.store.account_ids()}
        result = self.send_line(line)
        after = {account_id: self.store.account(account_id) for account_id in self.store.account_ids()}
        check(result["status"] == "rejected", f"bad line {line!r} gave {result}")
        words = QUOTED_IN_MESSAGE.get(line)
        check(
            words is None or words in result["error"]["message"],
            f"bad line {line!r}: the message {result['error']['message']!r} does not say {words!r}",
        )
        if result["error"]["code"] not in {code.value for code in REFUSAL_CODES}:
            check(after == before, f"bad line {line!r} changed the books")

    @precondition(lambda self: self.FORGERIES)
    @rule(account=accounts)
    def forge_the_books(self, account: str) -> None:
        """An auditor's view: every forgery of this account's books is caught by what it breaks."""
        state = self.store.account(account)
        if state is not None:
            ledger = tuple(self.store.ledger(account))
            EXPLORED.forgeries += check_forgeries_are_caught(ledger, state, self.store.payouts(account))

    # Invariants -------------------------------------------------------------------------------

    @invariant()
    def count_step(self) -> None:
        EXPLORED.steps += 1

    @invariant()
    def i1_to_i10_hold_over_every_ledger_and_replay_agrees(self) -> None:
        check_ledgers(self.store)

    @invariant()
    def no_loss_is_stuck(self) -> None:
        check_losses_can_be_settled(self.store)

    @invariant()
    def views_agree_with_the_reference(self) -> None:
        if self.reference is None:
            return
        views = list(account_views(self.store))
        expected = self.reference.views()
        check(views == expected, f"the views differ:\nkernel    {views}\nreference {expected}")


def _comparable(result: dict[str, Any]) -> tuple[object, ...]:
    return (
        result.get("id"),
        result.get("account"),
        result["status"],
        result.get("error", {}).get("code"),
    )


# --- The world around the kernel: crashes, restarts, retries, the dispatcher ---------------------


class Bank(Gateway, Protocol):
    """What the dispatcher pays through, and what the machine reads back: the money that moved."""

    @property
    def moved(self) -> Mapping[str, int]:
        """Each payout id whose money moved, with its amount."""
        ...


class DedupGateway:
    """A transfer gateway that moves money once per idempotency key, as real ones do."""

    def __init__(self) -> None:
        self.moved: dict[str, int] = {}
        """Each key whose money moved, with its amount."""
        self.requests = 0
        """Transfers asked for, repeats included (tests/test_dispatcher.py counts them)."""

    def send(self, payout_id: str, amount_minor: int) -> None:
        self.requests += 1
        self.moved.setdefault(payout_id, amount_minor)


@attrs.frozen(kw_only=True)
class Acknowledged:
    """A command whose answer the client saw."""

    command: Command
    status: str
    code: str | None


@attrs.frozen
class _Listed:
    """A store as a dispatcher sees it that listed its pending payouts before another dispatcher
    confirmed them: those, and the store's answers to its commands."""

    store: Store
    listed: list[PendingPayout]

    def pending_payouts(self) -> Iterator[PendingPayout]:
        return iter(self.listed)

    def execute(self, command: Command) -> Decision:
        return self.store.execute(command)


class CrashRetryMachine(RuleBasedStateMachine):
    """Crashes before and after a commit and after a transfer; restarts; retries; dispatching."""

    accounts = Bundle("accounts")

    @staticmethod
    def wrap_gateway(gateway: Gateway, /) -> Gateway:
        """What stands between the dispatcher and the bank: nothing here (the teeth tests put the
        seed's fresh keys there)."""
        return gateway

    last_lines: ClassVar[list[bytes] | None] = None
    """The commands of the latest run as JSON Lines, or None if it needed a crash or a restart."""

    def __init__(self) -> None:
        super().__init__()
        self.store = FaultyStore(self.make_store())
        self.gateway = self.make_gateway()
        self.faulty_gateway = FaultyGateway(type(self).wrap_gateway(self.gateway))
        self.down = False
        self.unanswered: list[Command] = []
        self.acknowledged: dict[tuple[str, str], Acknowledged] = {}
        self.commands: list[Command] = []
        self.worldly = False
        self.next_id = 0
        self.preempted: set[str] = set()
        """Payouts whose confirmation id a client used up before the payout existed."""
        type(self).last_lines = None
        EXPLORED.runs += 1

    def make_store(self) -> Store:
        """The store under test; a persistence adapter overrides this."""
        return MemoryStore()

    def make_gateway(self) -> Bank:
        """The bank the dispatcher pays through; a persistence adapter overrides this."""
        return DedupGateway()

    def reopen_store(self, store: Store) -> Store:
        """The store a new process opens on what `store` persisted; a persistence adapter overrides this."""
        assert isinstance(store, MemoryStore)
        return store.reopened()

    def fresh_id(self) -> str:
        self.next_id += 1
        return f"w{self.next_id}"

    def _note_lines(self) -> None:
        lines = [jsonl.encode_line(jsonl.command_object(command))[:-1] for command in self.commands]
        type(self).last_lines = None if self.worldly else lines

    def submit(self, command: Command, crash: CrashPoint | None, lost: bool) -> None:
        """The client sends a command; the process may die, or the answer may never arrive."""
        self.submit_group([command], crash, lost, lambda: [self.store.execute(command)])

    def submit_group(
        self,
        commands: list[Command],
        crash: CrashPoint | None,
        lost: bool,
        run: Callable[[], list[Decision]] | None = None,
    ) -> None:
        """The client sends commands that are committed together (`execute_many`, unless `run` says
        otherwise): a crash takes them all, unanswered, and so does a lost answer."""
        self.commands.extend(commands)
        EXPLORED.commands += len(commands)
        if crash is not None or lost:
            self.worldly = True
        self._note_lines()
        self.store.arm(crash)
        try:
            decisions = run() if run is not None else self.store.execute_many(commands)
        except Crash as crashed:
            EXPLORED.crash_points[str(crashed.point)] += 1
            self.down = True
            self.unanswered.extend(commands)
            return
        if lost:
            EXPLORED.crash_points["answer_lost"] += 1
            self.unanswered.extend(commands)
            return
        for command, decision in zip(commands, decisions, strict=True):
            self.acknowledge(command, decision)

    def acknowledge(self, command: Command, decision: Decision) -> None:
        status, code = status_of(decision)
        EXPLORED.outcomes[f"{type(command).__name__}: {code or status}"] += 1
        if isinstance(decision, Rejected):
            return  # nothing recorded: nothing to survive
        key = (command.account, command.id)
        first = self.acknowledged.get(key)
        if first is not None:
            expected = (
                ("duplicate", None)
                if first.status in ("applied", "duplicate")
                else (first.status, first.code)
            )
            check((status, code) == expected, f"command {key} was answered {first}, then {(status, code)}")
        else:
            self.acknowledged[key] = Acknowledged(command=command, status=status, code=code)

    # Rules ------------------------------------------------------------------------------------

    CRASH = st.sampled_from(
        [
            None,
            None,
            None,
            None,
            None,
            CrashPoint.BEFORE_COMMIT,
            CrashPoint.INSIDE_TRANSACTION,
            CrashPoint.AFTER_COMMIT,
        ]
    )
    LOST = st.sampled_from([False, False, False, True])

    @initialize(target=accounts)
    def open_first_account(self) -> str:
        """An account with capital from the start, so that losses and profits come in a short run."""
        self.submit(
            OpenAccount(id=self.fresh_id(), account="acme", my_share_bp=100, company_share_bp=900),
            None,
            False,
        )
        self.submit(Fund(id=self.fresh_id(), account="acme", amount_minor=100_000), None, False)
        return "acme"

    @precondition(lambda self: not self.down)
    @rule(target=accounts, account=st.sampled_from(ACCOUNT_NAMES[1:]), my=SHARES_BP, crash=CRASH, lost=LOST)
    def open_account(self, account: str, my: int, crash: CrashPoint | None, lost: bool) -> str:
        command = OpenAccount(
            id=self.fresh_id(), account=account, my_share_bp=my, company_share_bp=10_000 - my
        )
        self.submit(command, crash, lost)
        return account

    @precondition(lambda self: not self.down)
    @rule(account=accounts, amount=st.integers(1, 10**6), crash=CRASH, lost=LOST)
    def fund(self, account: str, amount: int, crash: CrashPoint | None, lost: bool) -> None:
        self.submit(Fund(id=self.fresh_id(), account=account, amount_minor=amount), crash, lost)

    @precondition(lambda self: not self.down)
    @rule(account=accounts, shift=st.integers(-(10**6), 10**6), crash=CRASH, lost=LOST)
    def record_balance(self, account: str, shift: int, crash: CrashPoint | None, lost: bool) -> None:
        state = self.store.account(account)
        balance = max(0, (state.capital_minor if state else 0) + shift)
        self.submit(RecordBalance(id=self.fresh_id(), account=account, balance_minor=balance), crash, lost)

    @precondition(lambda self: not self.down)
    @rule(data=st.data(), crash=CRASH, lost=LOST)
    def settle(self, data: st.DataObject, crash: CrashPoint | None, lost: bool) -> None:
        with_loss = accounts_where(self.store, lambda account: account.loss is not None)
        account = data.draw(st.sampled_from(with_loss or ["acme"]), label="account")
        state = self.store.account(account)
        loss = state.loss if state else None
        payable = loss_payable_minor(loss) if loss else 1
        payment = data.draw(st.sampled_from([1, max(1, payable - 1), payable]), label="payment_minor")
        self.submit(Settle(id=self.fresh_id(), account=account, payment_minor=payment), crash, lost)

    @precondition(lambda self: not self.down)
    @rule(account=accounts, my=SHARES_BP, crash=CRASH, lost=LOST)
    def set_shares(self, account: str, my: int, crash: CrashPoint | None, lost: bool) -> None:
        command = SetShares(id=self.fresh_id(), account=account, my_share_bp=my, company_share_bp=0)
        self.submit(command, crash, lost)

    @precondition(lambda self: not self.down and bool(self.unanswered))
    @rule(data=st.data(), crash=CRASH)
    def retry_unanswered(self, data: st.DataObject, crash: CrashPoint | None) -> None:
        """The client never saw an answer: it sends the very same command again."""
        command = data.draw(st.sampled_from(self.unanswered), label="command")
        self.unanswered.remove(command)
        self.submit(command, crash, False)

    @precondition(lambda self: not self.down and hasattr(self.store.inner, "execute_many"))
    @rule(
        items=st.lists(st.tuples(accounts, st.integers(-(10**6), 10**6)), min_size=1, max_size=6),
        retries=st.booleans(),
        crash=CRASH,
        lost=LOST,
    )
    def submit_a_group(
        self, items: list[tuple[str, int]], retries: bool, crash: CrashPoint | None, lost: bool
    ) -> None:
        """Commands as `ppk apply` commits them, many in one transaction over several accounts: new
        funding (a positive figure) and balances (moved by the others), and with `retries` every
        command still unanswered. A crash takes the whole group: all of it persisted, or none."""
        commands: list[Command] = []
        for account, figure in items:
            if figure > 0:
                commands.append(Fund(id=self.fresh_id(), account=account, amount_minor=figure))
            else:
                state = self.store.account(account)
                balance = max(0, (state.capital_minor if state else 0) + figure)
                commands.append(RecordBalance(id=self.fresh_id(), account=account, balance_minor=balance))
        if retries:
            commands.extend(self.unanswered)
            self.unanswered = []
        self.submit_group(commands, crash, lost)

    @precondition(lambda self: not self.down)
    @rule(account=accounts, profit=st.integers(1, 10**6))
    def preempt_a_confirmation(self, account: str, profit: int) -> None:
        """A client sends, under the dispatcher's own confirmation id, a confirmation of a payout that
        does not exist yet; it is refused and recorded. Then a profit makes that very payout. The
        dispatcher must not take the recorded refusal for its confirmation: it stops, and says so."""
        command_id = self.fresh_id()
        named = payout_id(account, command_id)
        confirmation = ConfirmPayout(id=confirm_id(named), account=account, payout=named)
        self.submit(confirmation, None, False)
        state = self.store.account(account)
        balance = (state.capital_minor if state else 0) + profit
        self.submit(RecordBalance(id=command_id, account=account, balance_minor=balance), None, False)
        self.preempted.add(named)

    @precondition(lambda self: self.down)
    @rule()
    def restart(self) -> None:
        """The process starts again: what was persisted is all there is."""
        self.worldly = True
        self._note_lines()
        EXPLORED.crash_points["restart"] += 1
        self.store = FaultyStore(self.reopen_store(self.store.inner))
        self.down = False

    @precondition(lambda self: not self.down)
    @rule(
        crash=st.sampled_from(
            [
                None,
                CrashPoint.AFTER_TRANSFER,
                CrashPoint.BEFORE_COMMIT,
                CrashPoint.INSIDE_TRANSACTION,
                CrashPoint.AFTER_COMMIT,
            ]
        )
    )
    def dispatch(self, crash: CrashPoint | None) -> None:
        """The dispatcher sends pending payouts and confirms them; it may die on the way."""
        self.worldly = True
        self._note_lines()
        pending = sum(1 for _ in self.store.pending_payouts())
        # The first payout's transfer, or its confirmation's commit, dies at the crash point.
        if crash is CrashPoint.AFTER_TRANSFER:
            self.faulty_gateway.arm(crash)
        else:
            self.store.arm(crash)
        preempted = [p.payout.id for p in self.store.pending_payouts() if p.payout.id in self.preempted]
        try:
            dispatched = Dispatcher(self.store, self.faulty_gateway).dispatch()
        except Crash as crashed:
            EXPLORED.crash_points[f"dispatch_{crashed.point}"] += 1
            self.down = True
        except DispatchError as refused:
            # Only a payout whose confirmation id a client used up stops it, and it stays pending.
            EXPLORED.outcomes["dispatch: a confirmation id used up"] += 1
            check(
                any(repr(named) in str(refused) for named in preempted),
                f"the dispatcher stopped ({refused}) with no pre-empted payout pending",
            )
            still = {p.payout.id for p in self.store.pending_payouts()}
            check(set(preempted) <= still, f"a pre-empted payout of {preempted} is no longer pending")
        else:
            check(not preempted, f"dispatched {dispatched} with the pre-empted {preempted} pending")
            # What it says it did (ppk dispatch prints it) is what there was to do: every pending payout.
            check(
                dispatched.transferred == dispatched.confirmed == pending,
                f"dispatched {dispatched}, with {pending} payouts pending",
            )
        finally:
            # With nothing pending, no call met the crash point: it must not wait for the next command.
            self.faulty_gateway.arm(None)
            self.store.arm(None)

    @precondition(lambda self: not self.down)
    @rule()
    def dispatch_twice_at_once(self) -> None:
        """Two dispatchers at once (two `ppk dispatch` on one database): the second lists the pending
        payouts, the first sends and confirms them all, then the second sends each again (the gateway
        moves nothing the second time) and confirms it under the same id. Its confirmation is a
        repeat of the first's, which it must take for done, not stop at (dispatcher.py 79, which no
        machine reached: the model-checking suite's coverage)."""
        self.worldly = True
        self._note_lines()
        listed = list(self.store.pending_payouts())
        if any(pending.payout.id in self.preempted for pending in listed):
            return  # its own rule: the dispatcher stops there
        first = Dispatcher(self.store, self.faulty_gateway).dispatch()
        second = Dispatcher(cast(Store, _Listed(self.store, listed)), self.faulty_gateway).dispatch()
        done = Dispatched(transferred=len(listed), confirmed=len(listed))
        check(first == second == done, f"two dispatchers of {len(listed)} payouts: {first}, then {second}")
        check(not list(self.store.pending_payouts()), "payouts pending after two dispatchers")
        EXPLORED.outcomes["dispatch: overtaken by another"] += bool(listed)

    # Invariants -------------------------------------------------------------------------------

    @invariant()
    def count_step(self) -> None:
        EXPLORED.steps += 1

    @invariant()
    def no_command_takes_effect_twice_and_every_acknowledged_one_survives(self) -> None:
        # One read of the books serves both: the full forms (I8 among them), then the acknowledged.
        ledgers = check_ledgers(self.store)
        for (account_id, command_id), acknowledged in self.acknowledged.items():
            entries = [entry for entry in ledgers.get(account_id, ()) if entry.command.id == command_id]
            check(
                len(entries) == 1,
                f"acknowledged command {command_id!r} is {len(entries)} times in the ledger",
            )
            (entry,) = entries
            check(entry.command == acknowledged.command, f"acknowledged command {command_id!r} was replaced")
            if acknowledged.status in ("applied", "duplicate"):
                check(
                    isinstance(entry, Applied), f"acknowledged {command_id!r} as applied, ledger has {entry}"
                )
            else:
                check(
                    isinstance(entry, Refused) and str(entry.code) == acknowledged.code,
                    f"acknowledged {command_id!r} as {acknowledged.code}, ledger has {entry}",
                )

    @invariant()
    def no_payout_is_transferred_twice(self) -> None:
        payouts = {
            payout.id: payout.amount_minor
            for account_id in self.store.account_ids()
            for payout in self.store.payouts(account_id)
        }
        for key, amount_minor in self.gateway.moved.items():
            check(key in payouts, f"transfer {key!r} pays no payout")
            check(payouts[key] == amount_minor, f"transfer {key!r} moved {amount_minor}, not {payouts[key]}")

    @invariant()
    def transfers_stay_within_profit_withdrawn(self) -> None:
        transferred = sum(self.gateway.moved.values())
        withdrawn = sum(
            (self.store.account(account_id) or _nothing()).profit_withdrawn_minor
            for account_id in self.store.account_ids()
        )
        check(transferred <= withdrawn, f"transferred {transferred} > profit withdrawn {withdrawn}")
        drained = not any(True for _ in self.store.pending_payouts())
        if drained:
            check(
                transferred == withdrawn, f"drained, yet transferred {transferred} != withdrawn {withdrawn}"
            )

    @invariant()
    def a_confirmed_payout_was_transferred(self) -> None:
        for account_id in self.store.account_ids():
            for payout in self.store.payouts(account_id):
                if payout.status is PayoutStatus.CONFIRMED:
                    check(
                        payout.id in self.gateway.moved, f"payout {payout.id!r} confirmed, never transferred"
                    )


def _nothing() -> Account:
    raise AssertionError("a store lists an account it does not have")
