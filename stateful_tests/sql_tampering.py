"""Forgeries of one account's SQL books, by raw SQL past ppk: what `ppk audit` must name (docs/audit.md §4).

`tampering.py` forges the books' values, for the invariants' full and inductive forms; here the rows
are forged as an insider with the database's password would: the ledger's append-only triggers gone
(`past_the_triggers`), a ledger row's bytes or hash changed, a row deleted, inserted or moved, a loss
or payout row changed, added or deleted, or one of `tampering`'s forged ledgers written with every
hash and the chain head recomputed (the cover-up that only a digest kept elsewhere can tell). Each
forgery says which findings (position, check) the audit must report, and whether those are all.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, cast

import attrs
import icontract
from sqlalchemy import CheckConstraint, Connection, Engine, Table, insert, select, text

from ppk.adapters import schema
from ppk.adapters.canonical import canonical_bytes, decode_entry, encode_entry
from ppk.adapters.chain import chained, genesis
from ppk.adapters.sql import account_row, is_postgresql, loss_row, payout_row
from ppk.kernel.state import ID_CHARS_MAX, REFUSAL_CODES, Account, Applied, Entry, Payout, Refused
from ppk.stateful_tests import tampering


def _check_named(table: Table, name: str) -> CheckConstraint:
    """The CHECK of `table` called `name` in the schema."""
    return next(
        constraint
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint) and constraint.name == name
    )


TABLES: Final = (schema.ledger, schema.accounts, schema.losses, schema.payouts)
"""The tables of an account's books (checkpoints hold none: they say what a digest covered)."""
ONE_ACTIVE_LOSS: Final = next(
    index for index in schema.losses.indexes if index.name == "ix_losses_one_active_per_account"
)
"""spec.md#i3 held by the database: the partial unique index an insider would have to drop first."""
SEQ_FROM_1: Final = _check_named(schema.ledger, "ck_ledger_seq_from_1")
"""The ledger's `CHECK (seq >= 1)`, which an insider would have to go past to write a row below 1."""
STATUS_KNOWN: Final = _check_named(schema.payouts, "ck_payouts_status_known")
"""The payouts' `CHECK (status IN ('pending', 'confirmed'))`, which an insider would have to go past
to write a status ppk has no word for."""
UNCHECKED: Final = ((schema.ledger, SEQ_FROM_1), (schema.payouts, STATUS_KNOWN))
"""The CHECKs `past_the_checks` goes past, by table."""

Where = tuple[int | None, str]
"""A finding's position (None: about the whole ledger) and check."""


@contextlib.contextmanager
def past_the_triggers(engine: Engine) -> Iterator[Connection]:
    """One transaction in which the ledger's append-only triggers do not fire, as only a test (or an
    insider) would go: on PostgreSQL by the superuser's replication role; on SQLite by dropping the
    triggers and making them again, as they were, before it commits (a rollback keeps them too)."""
    with engine.begin() as connection:
        triggers: list[str] = []
        if is_postgresql(engine):
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, sql in rows:
                connection.execute(text(f'DROP TRIGGER "{name}"'))
                triggers.append(sql)
        yield connection
        for sql in triggers:
            connection.execute(text(sql))


@contextlib.contextmanager
def past_the_checks(connection: Connection) -> Iterator[None]:
    """Inside, the ledger's rows may be written below seq 1, and a payout's status may be any text: on
    PostgreSQL those CHECKs (`UNCHECKED`) are dropped (in the transaction: `checked_again` makes
    them again once the honest rows are back); on SQLite this connection ignores CHECKs, until the
    block ends."""
    if is_postgresql(connection.engine):
        # As SQL text: SQLAlchemy's DropConstraint and AddConstraint mark the metadata's constraint as
        # not to be created with its table, and every database made after in the process lacked it.
        for table, constraint in UNCHECKED:
            connection.execute(text(f"ALTER TABLE {table.name} DROP CONSTRAINT {constraint.name}"))
        yield
        return
    connection.execute(text("PRAGMA ignore_check_constraints = ON"))
    try:
        yield
    finally:
        connection.execute(text("PRAGMA ignore_check_constraints = OFF"))


def checked_again(connection: Connection) -> None:
    """The CHECKs `past_the_checks` dropped, made again (PostgreSQL; SQLite never lost them)."""
    if is_postgresql(connection.engine):
        for table, constraint in UNCHECKED:
            connection.execute(
                text(
                    f"ALTER TABLE {table.name} ADD CONSTRAINT {constraint.name} CHECK ({constraint.sqltext})"
                )
            )


@attrs.frozen(kw_only=True)
class Rows:
    """One account's rows in the tables of its books, as stored; the ledger in order of `seq`."""

    ledger: tuple[dict[str, Any], ...]
    account: tuple[dict[str, Any], ...]
    losses: tuple[dict[str, Any], ...]
    payouts: tuple[dict[str, Any], ...]

    def entries(self) -> tuple[bytes, ...]:
        return tuple(bytes(row["entry"]) for row in self.ledger)


def read_rows(connection: Connection, account_id: str) -> Rows:
    def rows(table: Any, *order: Any) -> tuple[dict[str, Any], ...]:
        query = select(table).where(table.c.account == account_id).order_by(*order)
        return tuple(dict(row._mapping) for row in connection.execute(query))

    return Rows(
        ledger=rows(schema.ledger, schema.ledger.c.seq),
        account=rows(schema.accounts),
        losses=rows(schema.losses, schema.losses.c.opened_by),
        payouts=rows(schema.payouts, schema.payouts.c.payout_id),
    )


def write_rows(connection: Connection, account_id: str, rows: Rows) -> None:
    """The account's books replaced by `rows`, in the caller's transaction (past the triggers)."""
    for table in TABLES:
        connection.execute(table.delete().where(table.c.account == account_id))
    for table, written in zip(TABLES, (rows.ledger, rows.account, rows.losses, rows.payouts), strict=True):
        if written:
            connection.execute(insert(table), list(written))


@attrs.frozen(kw_only=True)
class SqlForgery:
    """The rows forged, and what the audit must find: `found` (all of them if `exact`), an invariant
    of `breaks` somewhere, and no finding at an entry if `whole`; `chained`: no `chain` finding."""

    name: str
    rows: Rows
    found: frozenset[Where] = frozenset()
    exact: bool = False
    breaks: frozenset[str] = frozenset()
    whole: bool = False
    """Only the stored books are forged, not an entry: every finding is about the whole ledger."""
    chained: bool = False
    """Every hash and the chain head recomputed: the chain cannot tell."""
    unfoldable: int | None = None
    """The position of an entry the kernel cannot fold: the audit must say so there."""
    says: tuple[str, ...] = ()
    """Words each of which some finding's `found` must contain: which row, which figure."""
    reads: str | None = None
    """What the `encoding` finding at the forged entry says, exactly: which byte, which field."""
    sql: tuple[str, ...] = ()
    """Raw SQL run after the rows are written, `:account` bound: a value of another type than its
    column's, which SQLite keeps as given (and PostgreSQL refuses: these forgeries are SQLite's)."""
    unindexed: bool = False
    """Written with the one-active-loss index dropped first (an insider with the rights to), and the
    index made again when the honest rows are back."""
    unchecked: bool = False
    """Written past the CHECKs of `UNCHECKED`, the ledger's `seq >= 1` and the payouts' known status
    (`past_the_checks`), made again when the honest rows are back."""


def _evolve_rows(rows: Rows, **changes: Any) -> Rows:
    return attrs.evolve(rows, **{name: tuple(value) for name, value in changes.items()})


def _bumped(entry: Entry) -> Entry | None:
    """The entry with its first figure (a `_minor` or `_bp` field of an event, else of its command) one
    unit up; None if it has none."""
    if isinstance(entry, Applied):
        for position, event in enumerate(entry.events):
            for field in attrs.fields(type(event)):
                value = getattr(event, field.name)
                if field.name.endswith(("_minor", "_bp")) and isinstance(value, int):
                    events = list(entry.events)
                    events[position] = cast(Any, attrs.evolve)(event, **{field.name: value + 1})
                    return attrs.evolve(entry, events=tuple(events))
    command = entry.command
    for field in attrs.fields(type(command)):
        value = getattr(command, field.name)
        if field.name.endswith(("_minor", "_bp")) and isinstance(value, int):
            bumped: Any = cast(Any, attrs.evolve)(command, **{field.name: value + 1})
            return cast(Any, attrs.evolve)(entry, command=bumped)  # type: ignore[no-any-return]
    return None


def _with_first_figure(stored: dict[str, Any], figure: int) -> dict[str, Any] | None:
    """An entry's JSON with its command's first integer field (else its first event's) set to
    `figure`; None if it has none."""
    forged = copy.deepcopy(stored)
    for holder in [forged["command"], *forged.get("events", [])]:
        for key in sorted(holder):
            if type(holder[key]) is int:
                holder[key] = figure
                return forged
    return None


def _ids_beside(own: str) -> tuple[str, str]:
    """Two ids no longer than ids may be, one sorting before `own` and one after it (code points, as
    both databases compare ids), that no command has: each holds a control character, but the one
    after an id as long as ids may be, which ends in U+10FFFF instead (unless the id did)."""
    before = "\x01" + own[1:]
    after = own + "\x01" if len(own) < ID_CHARS_MAX else own[:-1] + "\U0010ffff"
    assert before < own < after, f"no ids beside {own!r}"
    return before, after


def _resequenced(ledger: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row | {"seq": seq} for seq, row in enumerate(ledger, start=1)]


def _from_the_middle(count: int) -> list[int]:
    """A ledger's positions (1 … `count`) in the order forgeries pick an entry: from the middle entry
    to the last, then back to the first."""
    middle = count // 2 + 1
    return [*range(middle, count + 1), *range(middle - 1, 0, -1)]


def ledger_row_forgeries(honest: Rows) -> Iterator[SqlForgery]:
    """The ledger's rows edited by hand, their hashes left as they were: the chain breaks where they are."""
    ledger = list(honest.ledger)
    count = len(ledger)
    order = _from_the_middle(count)
    middle = order[0]
    for at in order:
        bumped = _bumped(decode_entry(bytes(ledger[at - 1]["entry"])))
        if bumped is not None:
            edited = [*ledger]
            edited[at - 1] = ledger[at - 1] | {"entry": encode_entry(bumped)}
            yield SqlForgery(
                name=f"entry {at}: a figure one unit up, its hash kept",
                rows=_evolve_rows(honest, ledger=edited),
                found=frozenset({(at, "chain"), (None, "chain")}),
            )
            break
    first = decode_entry(bytes(ledger[0]["entry"]))
    refused = Refused(command=first.command, code=min(REFUSAL_CODES))
    yield SqlForgery(
        name="the opening entry made a refusal, its hash kept",
        rows=_evolve_rows(honest, ledger=[ledger[0] | {"entry": encode_entry(refused)}, *ledger[1:]]),
        found=frozenset({(1, "chain"), (None, "chain"), (1, "decision")}),
        unfoldable=1,
    )
    # Its event twice, or none: entries the codec reads, which fold cannot open an account with (the
    # audit failed on them with a ValueError, and under `python -O` on other forms with whatever an
    # assertion had stopped: fold now raises what it refuses).
    assert isinstance(first, Applied)
    for events, how in ((first.events * 2, "twice"), ((), "gone")):
        opening = attrs.evolve(first, events=events)
        yield SqlForgery(
            name=f"the opening entry with its event {how}, its hash kept",
            rows=_evolve_rows(honest, ledger=[ledger[0] | {"entry": encode_entry(opening)}, *ledger[1:]]),
            found=frozenset({(1, "chain"), (None, "chain"), (1, "decision")}),
            unfoldable=1,
            # Under ICONTRACT_SLOW, fold's exact precondition (the entry is its command's decision)
            # refuses it first, in its own words.
            says=() if icontract.SLOW else ("an account opens with one account_opened event",),
        )
    # Bytes that are JSON but not an entry: a key no entry has, or one it must have gone (mutation
    # survivor canonical.py:163, which crashed the audit while it worded the finding).
    # Or a figure one past a signed 64-bit integer, either way (survivor canonical.py:49).
    stored = json.loads(bytes(ledger[middle - 1]["entry"]))
    forgeries = [
        ("a key no entry has", stored | {"forged": 1}, "extra ['forged']"),
        (
            "without its version",
            {key: stored[key] for key in stored if key != "version"},
            "missing ['version']",
        ),
    ]
    for figure in (2**63, -(2**63) - 1):
        forged = _with_first_figure(stored, figure)
        if forged is not None:
            forgeries.append((f"a figure of {figure}", forged, f"fit a signed 64-bit integer, not {figure}"))
    # A refusal of the entry's command in every other respect, under an outcome no entry is stored
    # with: a decision kind that writes nothing, or none (survivor canonical.py:255, `>= "refused"`).
    command = decode_entry(bytes(ledger[middle - 1]["entry"])).command
    refusal = json.loads(encode_entry(Refused(command=command, code=min(REFUSAL_CODES))))
    for outcome in ("rejected", None):
        forgeries.append((f"outcome {outcome!r}", refusal | {"outcome": outcome}, f"not {outcome!r}"))
    for what, value, words in forgeries:
        yield SqlForgery(
            name=f"entry {middle}: {what}, its hash kept",
            rows=_evolve_rows(
                honest,
                ledger=[
                    *ledger[: middle - 1],
                    ledger[middle - 1] | {"entry": canonical_bytes(value)},
                    *ledger[middle:],
                ],
            ),
            found=frozenset({(middle, "chain"), (middle, "encoding"), (None, "chain")}),
            says=(words,),
        )
    for at in sorted({1, middle, count}):
        rehashed = [*ledger]
        rehashed[at - 1] = ledger[at - 1] | {"hash": hashlib.sha256(bytes(ledger[at - 1]["hash"])).digest()}
        # The bytes are as they were: the entry and the head agree, only the links from and to it break.
        yield SqlForgery(
            name=f"entry {at}: its hash changed",
            rows=_evolve_rows(honest, ledger=rehashed),
            found=frozenset({(at, "chain")} | ({(at + 1, "chain")} if at < count else set())),
            exact=True,
        )
    if count >= 3:
        yield SqlForgery(
            name=f"entry {middle} deleted",
            rows=_evolve_rows(honest, ledger=[*ledger[: middle - 1], *ledger[middle:]]),
            found=frozenset(
                {(seq, "sequence") for seq in range(middle + 1, count + 1)}
                | {(middle + 1, "chain"), (None, "sequence"), (None, "chain")}
            ),
        )
    if count >= 2:
        yield SqlForgery(
            name="the last entry deleted",
            rows=_evolve_rows(honest, ledger=ledger[:-1]),
            found=frozenset({(None, "sequence"), (None, "chain")}),
            whole=True,
        )
    # UNIQUE (account, command_id) keeps an entry's own id from being stored twice: the copy's column
    # names another command, which its bytes do not, sorting before its own id or after it (the
    # seed-109 sample's audit.py 217, `<` for `!=`, found only one sorting after it, and `forged` sorted
    # before the ids drawn).
    for where, column in zip(("before", "after"), _ids_beside(ledger[middle - 1]["command_id"]), strict=True):
        again = ledger[middle - 1] | {"command_id": column}
        yield SqlForgery(
            name=f"entry {middle} stored again after it, under an id sorting {where} its own",
            rows=_evolve_rows(honest, ledger=_resequenced([*ledger[:middle], again, *ledger[middle:]])),
            found=frozenset(
                {(middle + 1, "chain"), (middle + 1, "encoding"), (None, "chain"), (None, "sequence")}
            ),
            breaks=frozenset({"I8"}),
        )
    # Rows below the first, past the CHECK that keeps seq from 1: the audit read from seq 1 up and
    # never saw them (clean), while the store's lookup by command id found them (a retried id answered
    # from a row no ledger holds). Every row after them is further than its seq, and the first links
    # to a copy's hash, not to the account's genesis. One row at seq 0, or (an even count) two, at -1
    # and 0, whose findings the report lists by position, -1's before 0's (the seed-137 sample's
    # audit.py 422, `position or -1` for `or 0`, sorted the two positions as one place, by check).
    below = range(-(count % 2 == 0), 1)
    ghosts = [ledger[-1] | {"seq": seq, "command_id": f"{tampering.FORGED_ID}{seq}"} for seq in below]
    yield SqlForgery(
        name=f"{len(ghosts)} row(s) before the first, at seq {below[0]} to 0, past the CHECK",
        rows=_evolve_rows(honest, ledger=[*ghosts, *ledger]),
        found=frozenset(
            {(seq, "sequence") for seq in range(below[0], count + 1)}
            | {(seq, "chain") for seq in below[1:]}
            | {(1, "chain"), (None, "sequence"), (None, "chain")}
        ),
        unchecked=True,
    )
    if count >= 3:
        at = max(2, middle - 1)  # never the opening entry: both moved entries are the account's own
        swapped = [*ledger]
        swapped[at - 1], swapped[at] = ledger[at], ledger[at - 1]
        yield SqlForgery(
            name=f"entries {at} and {at + 1} swapped",
            rows=_evolve_rows(honest, ledger=_resequenced(swapped)),
            found=frozenset(
                {(at, "chain"), (at + 1, "chain"), (None, "chain")}
                | ({(at + 2, "chain")} if at + 2 <= count else set())
            ),
        )


def _entry_bytes(value: object, *, escaped: dict[str, str] | None = None) -> bytes:
    """A JSON value as the canonical encoding would write it (spec.md#encoding), but for the strings
    named in `escaped`, written as the given JSON text instead (an escape the encoding never uses)."""
    data = canonical_bytes(value)
    for string, written in (escaped or {}).items():
        data = data.replace(json.dumps(string).encode(), written.encode())
    return data


ENTRY_FIELD: Final = "entry field"
"""How the audit's `encoding` finding names a field of a stored entry that is not what it must be."""


class _Forger:
    """One account's ledger, its entries' JSON read once, in the order the forgeries pick an entry
    (`_from_the_middle`), and the middle entry's bytes."""

    def __init__(self, honest: Rows) -> None:
        self.honest = honest
        self.ledger = list(honest.ledger)
        order = _from_the_middle(len(self.ledger))
        self.middle = order[0]
        self.raw = bytes(self.ledger[self.middle - 1]["entry"])
        self.stored: dict[int, Any] = {at: json.loads(bytes(self.ledger[at - 1]["entry"])) for at in order}
        """Each position's entry as JSON, in that order."""

    def first(self, holds: Callable[[Any], bool]) -> int | None:
        """The position of the first entry, in that order, whose JSON `holds`."""
        return next((at for at, value in self.stored.items() if holds(value)), None)

    def forgery(self, at: int, what: str, data: bytes, reads: str) -> SqlForgery:
        ledger = self.ledger
        return SqlForgery(
            name=f"entry {at}: {what}, its hash kept",
            rows=_evolve_rows(
                self.honest, ledger=[*ledger[: at - 1], ledger[at - 1] | {"entry": data}, *ledger[at:]]
            ),
            found=frozenset({(at, "chain"), (at, "encoding"), (None, "chain")}),
            reads=reads,
        )


def encoding_refusal(value: object, what: str) -> str:
    """The words of the `ValueError` with which ppk's encoding refuses `value`, which holds `what`
    no stored entry may: the encoding must not write it."""
    try:
        canonical_bytes(value)
    except ValueError as error:
        return str(error)
    raise AssertionError(f"the encoding wrote {what}")


def entry_bytes_forgeries(honest: Rows) -> Iterator[SqlForgery]:
    """One entry's bytes replaced by bytes that are not an entry in the canonical encoding, each in one
    way (spec.md#encoding), its hash kept; the audit's `encoding` finding there must say exactly what
    is wrong, and where: the byte, the column, the field (the decoder's paths a machine never reached
    before, found by the model-checking suite's coverage). These: the bytes, JSON, the version."""
    forger = _Forger(honest)
    forgery, middle = forger.forgery, forger.middle
    raw, value = forger.raw, forger.stored[middle]
    text_ = raw.decode("utf-8")
    # The byte numbered from 1: the first ASCII byte from the middle (a byte of a multi-byte character
    # replaced would make its lead byte the first bad one).
    bad = next(index for index in range(len(raw) // 2, len(raw)) if raw[index] < 0x80)
    yield forgery(
        middle,
        f"byte {bad + 1} 0xFF",
        raw[:bad] + b"\xff" + raw[bad + 1 :],
        f"a stored entry is UTF-8 text; byte {bad + 1} is not",
    )
    # JSON's columns count characters from 1.
    yield forgery(
        middle,
        "a character after its object",
        raw + b"x",
        f"a stored entry is JSON: Extra data at column {len(text_) + 1}",
    )
    yield forgery(
        middle,
        "arrays 100,000 deep",
        b"[" * 100_000 + b"]" * 100_000,
        "a stored entry nests arrays or objects far too deep",
    )
    yield forgery(middle, "a space after its first brace", b"{ " + raw[1:], NOT_CANONICAL)
    # Its version first: bytes that sort after the canonical ones, where the space sorts before.
    first_key = b'{"version":1,' + raw[1:].replace(b',"version":1}', b"}")
    yield forgery(middle, "its version first", first_key, NOT_CANONICAL)
    account = value["command"]["account"]
    yield forgery(
        middle,
        "its account's first character escaped",
        _entry_bytes(
            value,
            escaped={
                account: json.dumps(account, ensure_ascii=False).replace(
                    account[0], f"\\u{ord(account[0]):04x}", 1
                )
            },
        ),
        NOT_CANONICAL,
    )
    yield forgery(
        middle,
        "an array",
        _entry_bytes([value]),
        f'{ENTRY_FIELD} outcome must be "applied" or "refused", not None',
    )
    # An outcome that sorts before "applied" ("rejected" and none, above, sort after it).
    yield forgery(
        middle,
        "outcome 'accepted'",
        _entry_bytes(value | {"outcome": "accepted"}),
        f'{ENTRY_FIELD} outcome must be "applied" or "refused", not \'accepted\'',
    )
    for constant in ("NaN", "-Infinity"):
        # ppk's own encoding writes JSON, which has no such number (the seed-89 sample's canonical.py
        # 116, allow_nan=True, wrote them as they are).
        encoding_refusal(value | {"version": float(constant)}, constant)
        yield forgery(
            middle,
            f"version {constant}",
            _entry_bytes(value | {"version": "VERSION"}, escaped={"VERSION": constant}),
            f"a stored entry holds no {constant}",
        )
    for version, reads in (
        (0, "must be 1, not 0"),
        (2, "must be 1, not 2"),
        # The signed 64-bit integers' ends are integers (those one past them: the forgeries above).
        (2**63 - 1, f"must be 1, not {2**63 - 1}"),
        (-(2**63), f"must be 1, not {-(2**63)}"),
        (True, "must be an integer that fits a signed 64 bits, not True"),
        ("1", "must be an integer that fits a signed 64 bits, not '1'"),
    ):
        yield forgery(
            middle,
            f"version {version!r}",
            _entry_bytes(value | {"version": version}),
            f"{ENTRY_FIELD} version {reads}",
        )
    # Numbers the entry never holds: a fraction, and integers of 20 and 21 characters (the decoder
    # reads 20 as an integer, out of range, and keeps more as text), and one of 50 cut at 40 digits.
    for number, reads in (
        ("1.0", "must be an integer that fits a signed 64 bits, not the number 1.0"),
        ("-1000000000000000000", "must be 1, not -1000000000000000000"),
        ("10000000000000000000", "must fit a signed 64-bit integer, not 10000000000000000000"),
        (
            "-10000000000000000000",
            "must be an integer that fits a signed 64 bits, not the number -10000000000000000000",
        ),
        ("1" * 40 + "2" * 10, "must be an integer that fits a signed 64 bits, not the number " + "1" * 40),
    ):
        yield forgery(
            middle,
            f"version {number}",
            _entry_bytes(value | {"version": "VERSION"}, escaped={"VERSION": number}),
            f"{ENTRY_FIELD} version {reads}",
        )
    yield from _entry_field_forgeries(forger)


def _entry_field_forgeries(forger: _Forger) -> Iterator[SqlForgery]:
    """`entry_bytes_forgeries`' of the fields: the command's, the events', the date, the code."""
    forgery, first, stored, middle = forger.forgery, forger.first, forger.stored, forger.middle
    value = stored[middle]
    command = value["command"]
    yield forgery(
        middle,
        "its command an array",
        _entry_bytes(value | {"command": [command]}),
        f"{ENTRY_FIELD} command.type must be a string, not None",
    )
    yield forgery(
        middle,
        "its command's id a number",
        _entry_bytes(value | {"command": command | {"id": 5}}),
        f"{ENTRY_FIELD} command.id must be a string, not 5",
    )
    without_id = {key: command[key] for key in command if key != "id"}
    yield forgery(
        middle,
        "its command without an id",
        _entry_bytes(value | {"command": without_id | {"forged": 1}}),
        f"{ENTRY_FIELD} command must have exactly the keys {sorted(command)}"
        " (missing ['id'], extra ['forged'])",
    )
    long_name = "forged_" + "x" * 93
    yield forgery(
        middle,
        "its command's type a name of 100 characters",
        _entry_bytes(value | {"command": command | {"type": long_name}}),
        f"{ENTRY_FIELD} command.type names no command type: {repr(long_name)[:60]}",
    )
    # The lone surrogates, first and last, and the characters either side of them, which are not (but
    # the encoding writes them as they are, not escaped).
    carried = f"{ENTRY_FIELD} command.id must be text UTF-8 can carry, not one with the lone surrogate"
    for character in ("\ud800", "\udfff", "\ud7ff", "\ue000"):
        lone = 0xD800 <= ord(character) <= 0xDFFF
        if lone:
            # ppk's own encoding refuses to write one, naming it (the seed-83 sample's canonical.py 119,
            # that except clause made another's, let UTF-8's UnicodeEncodeError through instead).
            refusal = encoding_refusal(
                value | {"command": command | {"id": character}}, f"the lone surrogate {character!r}"
            )
            said = f"a stored string holds the lone surrogate {character!r}"
            assert refusal == said, f"encoding a lone surrogate: {refusal!r}, not {said!r}"
        yield forgery(
            middle,
            f"its command's id {character!r}, escaped",
            _entry_bytes(value | {"command": command | {"id": "ID"}}, escaped={"ID": json.dumps(character)}),
            f"{carried} {character!r}" if lone else NOT_CANONICAL,
        )
    applied = first(lambda entry: entry["outcome"] == "applied" and entry["events"])
    if applied is not None:
        value = stored[applied]
        events, last = value["events"], len(value["events"]) - 1
        yield forgery(
            applied,
            "its events an object",
            _entry_bytes(value | {"events": {"0": events[0]}}),
            f"{ENTRY_FIELD} events must be an array, not dict",
        )
        for what, event, reads in (
            ("a number", 7, f"events[{last}].type must be a string, not None"),
            (
                "of type 'forged'",
                events[last] | {"type": "forged"},
                f"events[{last}].type names no event type: 'forged'",
            ),
            (
                "with a key more",
                events[last] | {"forged": 1},
                f"events[{last}] must have exactly the keys {sorted(events[last])}"
                " (missing [], extra ['forged'])",
            ),
        ):
            yield forgery(
                applied,
                f"its last event {what}",
                _entry_bytes(value | {"events": [*events[:last], event]}),
                f"{ENTRY_FIELD} {reads}",
            )
    figure = first(
        lambda entry: any(type(v) is int for event in entry.get("events", []) for v in event.values())
    )
    if figure is not None:
        value = stored[figure]
        index, event = next(
            (i, event)
            for i, event in enumerate(value["events"])
            if any(type(v) is int for v in event.values())
        )
        name = next(key for key in sorted(event) if type(event[key]) is int)
        events = [*value["events"]]
        events[index] = event | {name: str(event[name])}
        yield forgery(
            figure,
            f"events[{index}].{name} a string",
            _entry_bytes(value | {"events": events}),
            f"{ENTRY_FIELD} events[{index}].{name} must be an integer that fits a signed 64 bits,"
            f" not {str(event[name])!r}",
        )
    dated = first(lambda entry: "date" in entry["command"])
    if dated is not None:
        value = stored[dated]
        for day, reads in (
            ("2026-02-30", "must be a day written YYYY-MM-DD, or null, not '2026-02-30'"),
            (20260105, "must be a string, not 20260105"),
        ):
            yield forgery(
                dated,
                f"its command's date {day!r}",
                _entry_bytes(value | {"command": value["command"] | {"date": day}}),
                f"{ENTRY_FIELD} command.date {reads}",
            )
    refusal = json.loads(
        encode_entry(Refused(command=decode_entry(forger.raw).command, code=min(REFUSAL_CODES)))
    )
    for code, reads in (
        ("forged", "must be the code of a state rule, not 'forged'"),
        (5, "must be a string, not 5"),
    ):
        yield forgery(
            middle,
            f"a refusal of code {code!r}",
            _entry_bytes(refusal | {"code": code}),
            f"{ENTRY_FIELD} code {reads}",
        )


def stored_as_other_types(honest: Rows) -> Iterator[SqlForgery]:
    """SQLite only: an entry stored as text (its bytes the same), and the latest balance's day as a
    text that is no day. The first is an `encoding` finding there and nothing else: the chain covers
    the text's UTF-8, which are the entry's bytes."""
    at = _from_the_middle(len(honest.ledger))[0]
    yield SqlForgery(
        name=f"entry {at} stored as text",
        rows=honest,
        found=frozenset({(at, "encoding")}),
        exact=True,
        reads="a str",
        sql=(f"UPDATE ledger SET entry = CAST(entry AS TEXT) WHERE account = :account AND seq = {at}",),
    )
    yield SqlForgery(
        name="the latest balance's day '2026-02-30'",
        rows=honest,
        found=frozenset({(None, "projection")}),
        whole=True,
        says=("2026-02-30",),
        sql=("UPDATE accounts SET balance_date_latest = '2026-02-30' WHERE account = :account",),
    )


NOT_CANONICAL: Final = "a stored entry is not in the canonical encoding: its bytes would differ"


STRAY_LOSS: Final = ""
"""The command id of a loss row no entry opened: it sorts before every other."""


def stray_loss(account_id: str) -> dict[str, Any]:
    """A closed loss row of `account_id` that no entry opened, within every CHECK of its table."""
    return {
        "account": account_id,
        "opened_by": STRAY_LOSS,
        "capital_minor": 1,
        "balance_minor": 0,
        "original_minor": 1,
        "remaining_minor": 0,
        "capital_closed_minor": 1,
        "my_share_bp": 0,
        "company_share_bp": 0,
        "active": False,
    }


def loss_row_forgeries(honest: Rows) -> Iterator[SqlForgery]:
    """A loss row's figures changed, a stray one added, one deleted; each within the table's CHECKs."""
    losses = list(honest.losses)
    stray = stray_loss(honest.ledger[0]["account"])
    yield SqlForgery(
        name="a loss row no entry opened",
        rows=_evolve_rows(honest, losses=[stray, *losses]),
        found=frozenset({(None, "losses")}),
        exact=True,
        says=(f"loss {STRAY_LOSS!r}",),
    )
    # Two active losses, exactly, which the index refuses unless it is dropped first (survivor
    # audit.py:307 of the seed-23 sample, `> 2`, let two pass unnamed).
    owing = stray | {"capital_minor": 2, "balance_minor": 1, "original_minor": 1, "capital_closed_minor": 0}
    owing |= {"remaining_minor": 1, "active": True}
    active = sum(row["active"] for row in losses)
    added = [owing | {"opened_by": f"{STRAY_LOSS}{n}"} for n in range(2 - active)]
    yield SqlForgery(
        name="two active losses, the one-active index dropped",
        rows=_evolve_rows(honest, losses=[*added, *losses]),
        found=frozenset({(None, "losses")}),
        says=("2 active",),
        unindexed=True,
    )
    # Each loss's state turned over in its row alone, within every CHECK: the active one closed
    # (audit.py 319, which no forgery reached: no row's `active` disagreed with the ledger), a closed
    # one owing its last unit again (the one-active index dropped, should another loss be active; the
    # seed-53 sample's audit.py 321, `<` for `!=`, named its figures but not that it is active).
    for index, loss in enumerate(losses):
        owed = 0 if loss["active"] else 1
        turned = [*losses]
        turned[index] = loss | {
            "remaining_minor": owed,
            "capital_closed_minor": loss["original_minor"] - owed,
            "active": not loss["active"],
        }
        yield SqlForgery(
            name=f"loss {loss['opened_by']!r} {'opened again' if owed else 'closed'} in its row",
            rows=_evolve_rows(honest, losses=turned),
            found=frozenset({(None, "losses")}),
            whole=True,
            says=(f"loss {loss['opened_by']!r} active {not loss['active']}",),
            unindexed=bool(owed),
        )
    for index, loss in enumerate(losses[:1]):
        shares = loss["my_share_bp"] + loss["company_share_bp"]
        shift = 1 if shares < 10_000 else -1
        field = "my_share_bp" if shift == 1 or loss["my_share_bp"] > 0 else "company_share_bp"
        changed = [*losses]
        changed[index] = loss | {field: loss[field] + shift}
        yield SqlForgery(
            name=f"loss {loss['opened_by']!r}: {field} {shift:+d}",
            rows=_evolve_rows(honest, losses=changed),
            found=frozenset({(None, "losses")}),
            whole=True,
        )
        moved = [*losses]
        moved[index] = loss | {
            "capital_minor": loss["capital_minor"] + 1,
            "balance_minor": loss["balance_minor"] + 1,
        }
        yield SqlForgery(
            name=f"loss {loss['opened_by']!r}: its CAPITAL and CB one unit up",
            rows=_evolve_rows(honest, losses=moved),
            found=frozenset({(None, "losses")}),
            whole=True,
        )
        # The stray row sorts first: the loss after it must still be checked, field by field.
        yield SqlForgery(
            name=f"a loss row no entry opened, and loss {loss['opened_by']!r}: {field} {shift:+d}",
            rows=_evolve_rows(honest, losses=[stray, *changed]),
            found=frozenset({(None, "losses")}),
            whole=True,
            says=(f"loss {STRAY_LOSS!r}", f"loss {loss['opened_by']!r} {field}"),
        )
        yield SqlForgery(
            name=f"loss {loss['opened_by']!r} deleted",
            rows=_evolve_rows(honest, losses=[*losses[:index], *losses[index + 1 :]]),
            found=frozenset({(None, "losses")}),
            whole=True,
        )


def payout_row_forgeries(honest: Rows, account: Account, payouts: Sequence[Payout]) -> Iterator[SqlForgery]:
    """`tampering`'s forgeries of the stored payouts (one more, dropped, one unit off, status flipped),
    written as rows: each breaks I7, and the outbox is not what the ledger replays to."""
    account_id = account.id
    replayed = {payout.id: payout for payout in payouts}
    for forged in tampering.account_forgeries(account, payouts):
        if forged.payouts is None or forged.account != account:
            continue
        rows = [payout_row(account_id, payout) for payout in forged.payouts]
        # What each payout finding found: the stored payout, or "none" (the seed-113 sample's audit.py
        # 332, `and` for `or`, said "none" of a payout that was there, changed).
        stored = {payout.id: payout for payout in forged.payouts}
        changed = sorted(
            key for key in replayed.keys() | stored.keys() if replayed.get(key) != stored.get(key)
        )
        yield SqlForgery(
            name=f"payouts: {forged.name}",
            rows=_evolve_rows(honest, payouts=rows),
            found=frozenset({(None, "payouts")} | {(None, name) for name in forged.breaks}),
            exact=True,
            says=tuple(str(stored[key]) if key in stored else "none" for key in changed),
        )
    if honest.payouts:
        # A status ppk has no word for, past the table's CHECK: the audit names the row and what it
        # holds, then checks the books without that payout, which the ledger made (payouts) and I7
        # counts; nothing else (the seed-163 sample's audit.py 284, the ValueError of that row not
        # caught, failed the audit; no forgery went past the CHECK).
        first = honest.payouts[0]
        yield SqlForgery(
            name=f"payouts: {first['payout_id']!r} with the status 'paid'",
            rows=_evolve_rows(honest, payouts=(first | {"status": "paid"}, *honest.payouts[1:])),
            found=frozenset({(None, "payouts"), (None, "I7")}),
            exact=True,
            says=("paid",),
            unchecked=True,
        )


def account_row_forgeries(honest: Rows, account: Account, payouts: Sequence[Payout]) -> Iterator[SqlForgery]:
    """`tampering`'s forgeries of the stored account (spec.md#e6), written as its row and its active
    loss's: the audit names the invariants each breaks, and the projection, never at an entry; a
    `projection` finding names each figure the row holds otherwise, as it holds it (with `not`
    before audit.py's test of no row in `_projection`, the audit named the whole account once)."""
    for forged in tampering.account_forgeries(account, payouts):
        if forged.payouts is not None:
            continue
        losses = list(honest.losses)
        if forged.account is not None and forged.account.loss is not None:
            active = account.loss.opened_by if account.loss is not None else None
            losses = [row for row in losses if row["opened_by"] != active]
            losses.append(loss_row(account.id, forged.account.loss))
        rows = () if forged.account is None else (honest.account[0] | account_row(forged.account),)
        if rows == honest.account and sorted(losses, key=str) == sorted(honest.losses, key=str):
            continue  # nothing a row holds was changed
        differ = [] if forged.account is None else _differing(account, forged.account)
        yield SqlForgery(
            name=f"account: {forged.name}",
            rows=_evolve_rows(honest, account=rows, losses=losses),
            found=frozenset({(None, "projection")}),
            breaks=forged.breaks,
            whole=True,
            says=tuple(f"{name} {value}" for name, value in differ),
        )


def _differing(honest: Account, forged: Account) -> list[tuple[str, object]]:
    """The figures of `forged` that differ from `honest`'s, by name, as `forged` holds them."""
    return [
        (field.name, getattr(forged, field.name))
        for field in attrs.fields(Account)
        if getattr(forged, field.name) != getattr(honest, field.name)
    ]


def chained_ledger(account_id: str, entries: Sequence[Entry]) -> tuple[list[dict[str, Any]], bytes]:
    """The ledger rows of `entries`, every hash computed from h(0): what an insider's cover-up writes."""
    head = genesis(account_id)
    rows = []
    for seq, entry in enumerate(entries, start=1):
        data = encode_entry(entry)
        head = chained(head, data)
        rows.append(
            {"account": account_id, "seq": seq, "command_id": entry.command.id, "entry": data, "hash": head}
        )
    return rows, head


def rewritten(honest: Rows, forged: tampering.LedgerForgery, account: Account) -> SqlForgery:
    """One of `tampering`'s forged ledgers, every hash and the chain head recomputed: it must be named by
    the invariants it breaks, never by the chain."""
    ledger, head = chained_ledger(account.id, forged.entries)
    stored = forged.account if forged.account is not None else account
    account_rows = [honest.account[0] | account_row(stored) | {"chain_head": head}]
    payout_rows = honest.payouts
    if forged.payouts is not None:
        payout_rows = tuple(payout_row(account.id, payout) for payout in forged.payouts)
    return SqlForgery(
        name=f"rewritten: {forged.name}",
        rows=_evolve_rows(honest, ledger=ledger, account=account_rows, payouts=payout_rows),
        breaks=forged.breaks,
        chained=True,
    )
