"""`ppk audit`: check a database's books from its ledger, and the digest that proves them (docs/audit.md).

For each account, in one read snapshot, streaming its ledger a page at a time: the positions, the
hash chain, each entry's canonical encoding, each entry against what the kernel decides for its
command against the account before it (by code and events, never by message wording), the ten
invariants in their full form in one pass (`LedgerCheck`), and the stored account, loss snapshots
and payout outbox against what the ledger replays to. Every finding is kept, never only the first.

A clean audit ends with the digest of the database (the RFC 6962 root of one leaf per account: its
id, length and chain head, all recomputed from the entries as stored) and records a checkpoint of
it: each account's length, so that `expect` can later recompute that digest from the ledger of the
day and tell whether what it covered was only appended to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import attrs
import icontract
from sqlalchemy import Connection, Engine, String, bindparam, cast, insert, select, union
from sqlalchemy.exc import DBAPIError, IntegrityError

from ppk.adapters import schema
from ppk.adapters.canonical import CorruptEntryError, decode_entry
from ppk.adapters.chain import (
    audit_path,
    chained,
    digest_root,
    digest_text,
    genesis,
    leaf,
    merkle_root,
)
from ppk.adapters.jsonl import parse_date
from ppk.adapters.sql import PAGE_ROWS, account_from_mapping, database_error, is_postgresql, payout_from_row
from ppk.kernel import contracts
from ppk.kernel.contracts import INVARIANT_RULES, LedgerCheck
from ppk.kernel.state import NOTHING_RECORDED, Account, Entry, Lookup, Loss, Payout
from ppk.kernel.transitions import (
    account_problem,
    execute,
    fold,
    losses_written,
    payout_looked_up,
    payouts_written,
)

CHECKS: Final = (
    "sequence",
    "chain",
    "encoding",
    "decision",
    *INVARIANT_RULES,
    "projection",
    "losses",
    "payouts",
    "expect",
)
"""docs/audit.md §4: every check a finding can name, in the order a report lists them."""

_SHOWN_CHARS_MAX: Final = 300
_SHOWN_BEFORE_DIFFERENCE: Final = 60
"""How much of what two long sides of a finding agree on is shown before where they differ."""

EMPTY_DIGEST: Final = digest_text(merkle_root([]))
"""The digest of a database with no ledger."""


@attrs.frozen(kw_only=True)
class Finding:
    """One thing the books say against their ledger: where, which check, what was expected and found."""

    account: str | None
    position: int | None
    """The entry's position (`seq`) in the account's ledger; None for what is about the whole ledger."""
    check: str
    expected: str
    found: str

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Proof:
    """docs/audit.md §3: the evidence that one account's history is included in a digest."""

    digest: str
    account: str
    length: int
    head: str
    """The chain head, hex."""
    index: int
    """The leaf's position among the digest's leaves (accounts sorted by id)."""
    size: int
    """How many leaves the digest has."""
    path: tuple[str, ...]
    """RFC 6962 audit path, hex, nearest sibling first."""

    def as_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "path": list(self.path)}


@attrs.frozen(kw_only=True)
class Report:
    """What an audit found, and the digest of what it read."""

    findings: tuple[Finding, ...]
    digest: str | None
    """None when only some accounts were audited."""
    accounts: int
    entries: int
    expected: str | None
    """The digest `expect` named, when it did."""
    proof: Proof | None
    recorded: bool
    """Whether the digest's checkpoint is in the database (or was already)."""
    write_error: str | None = None
    """Why the database refused to record the checkpoint, in one line, when it did: it may only be
    read, or another writer held SQLite's lock beyond the busy timeout."""
    checkpoint: tuple[tuple[str, int], ...] = ()
    """What the digest covers: each account with a ledger, by id, and its ledger's length then. The
    checkpoint `record_checkpoint` records."""

    @property
    def clean(self) -> bool:
        return not self.findings


# --- Statements ------------------------------------------------------------------------------------

_ACCOUNT_IDS: Final = union(
    *(select(table.c.account) for table in (schema.accounts, schema.ledger, schema.losses, schema.payouts))
)
"""Every account any table names: a payout or loss row of no account is a finding, not a blind spot."""
_ACCOUNT_ROW: Final = select(
    *(column for column in schema.accounts.columns if column.name != "balance_date_latest"),
    # As text: a day an insider wrote badly is a finding, not a crash in the driver's conversion.
    cast(schema.accounts.c.balance_date_latest, String).label("balance_date_latest"),
).where(schema.accounts.c.account == bindparam("account"))
_LEDGER_FIRST_PAGE: Final = (
    select(schema.ledger)
    .where(schema.ledger.c.account == bindparam("account"))
    .order_by(schema.ledger.c.seq)
    .limit(bindparam("rows"))
)
"""From the account's first row, whatever its `seq`: a row below 1, which the CHECK refuses unless an
insider went past it, is a finding, not a row no read reaches (it was, paged from `seq > 0`)."""
_LEDGER_PAGE: Final = _LEDGER_FIRST_PAGE.where(schema.ledger.c.seq > bindparam("seq"))
_LOSSES: Final = select(schema.losses).where(schema.losses.c.account == bindparam("account"))
_PAYOUTS: Final = select(schema.payouts).where(schema.payouts.c.account == bindparam("account"))
_CHECKPOINT: Final = select(schema.checkpoints.c.account, schema.checkpoints.c.length).where(
    schema.checkpoints.c.digest == bindparam("digest")
)


# --- One account -----------------------------------------------------------------------------------


def _shown(expected: object, found: object) -> tuple[str, str]:
    """docs/audit.md §4: a finding's two sides as text, each cut to _SHOWN_CHARS_MAX characters. Two
    that agree beyond the cut are shown from a little before where they first differ: cut at the same
    place, they would read alike, and the finding would not show what it found."""
    texts = [value.hex() if isinstance(value, bytes) else str(value) for value in (expected, found)]
    pairs = enumerate(zip(*texts, strict=False))  # up to the shorter's end
    differ = next((at for at, (one, other) in pairs if one != other), min(map(len, texts)))
    start = 0 if differ < _SHOWN_CHARS_MAX else differ - _SHOWN_BEFORE_DIFFERENCE
    end = start + _SHOWN_CHARS_MAX
    shown = [("…" if start else "") + text[start:end] + ("…" if len(text) > end else "") for text in texts]
    return shown[0], shown[1]


def _as_bytes(value: object) -> bytes:
    """A stored value as the bytes a chain covers: bytes as they are, text as its UTF-8, else its text."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview):
        return value.tobytes()
    return str(value).encode("utf-8", "surrogatepass")


def _fold_checked(before: Account | None, entry: Entry, lookup: Lookup) -> Account:
    """`fold` of an entry the kernel decides otherwise, its contracts' tables checked here too: icontract
    checks them only when Python runs with assertions (`python -O` turns both off), and a forged
    entry folded unchecked would carry the replay on from an account no ledger reaches."""
    if contracts.requirement_broken(contracts.FOLD_REQUIRES, before, entry.command, lookup) is not None:
        raise contracts.fold_refusal(before, entry, lookup)
    after = fold(before, entry, lookup)
    if contracts.guarantee_broken(before, entry, lookup, after) is not None:
        raise contracts.fold_violation(before, entry, lookup, after)
    return after


class _AccountAudit:
    """One account's ledger against its stored books, entry by entry."""

    def __init__(self, account_id: str, findings: list[Finding]) -> None:
        self.account_id = account_id
        self.findings = findings
        self.length = 0
        self.head = genesis(account_id)
        """h(n) recomputed from the entries as stored, from h(0)."""
        self.heads_at: dict[int, bytes] = {}
        """h(n) at the positions `expect` asked for."""
        self.check = LedgerCheck(account_id)
        self.replayed: Account | None = None
        self.replaying = True
        """False once the kernel refused a stored entry: the replay cannot go on from it."""
        self.payouts: dict[str, Payout] = {}
        self.losses: dict[str, Loss] = {}

    def found(self, position: int | None, check: str, expected: object, found: object) -> None:
        self.findings.append(_finding(check, expected, found, self.account_id, position))

    def row(self, seq: int, command_id: str, stored: object, stored_hash: object, previous: object) -> None:
        """One ledger row, in order of `seq`; `previous` is the stored hash of the row before it."""
        self.length += 1
        if seq != self.length:
            self.found(seq, "sequence", f"position {self.length}", f"position {seq}")
        data = _as_bytes(stored)
        if not isinstance(stored, bytes):
            # SQLite stores what it is given: an entry written as text by hand is chained as its UTF-8.
            self.found(seq, "encoding", "an entry stored as bytes", f"a {type(stored).__name__}")
        link = chained(_as_bytes(previous) if previous is not None else genesis(self.account_id), data)
        if stored_hash != link:
            self.found(seq, "chain", link, stored_hash)
        self.head = chained(self.head, data)
        if self.length in self.heads_at:
            self.heads_at[self.length] = self.head
        try:
            entry = decode_entry(data)
        except CorruptEntryError as error:
            self.found(seq, "encoding", "an entry in the canonical encoding", error)
            self.replaying = False
            return
        if entry.command.id != command_id:
            self.found(
                seq, "encoding", f"the entry of command {command_id!r}", f"one of {entry.command.id!r}"
            )
        self.check.add(entry)
        if self.replaying:
            self._replay(seq, entry)

    def _replay(self, seq: int, entry: Entry) -> None:
        """The entry against the kernel's decision for its command, then folded into the replay."""
        named = payout_looked_up(entry.command)
        lookup = NOTHING_RECORDED if named is None else Lookup(payout=self.payouts.get(named))
        if self.replayed is None and named is not None:
            lookup = NOTHING_RECORDED
        before = self.replayed
        try:
            # One contracted call checks decide's and fold's contracts on the step (kernel execute);
            # only an entry that is not the kernel's decision is folded on its own. What decide
            # requires is checked here too: `python -O` turns icontract off (an entry of another
            # account would be decided, and folded, as if it were this one's).
            if not contracts.decide_may_run(before, entry.command, lookup):
                raise contracts.decide_refusal(before, entry.command, lookup)
            decision, after = execute(before, entry.command, lookup)
            if decision != entry:
                self.found(seq, "decision", decision, entry)
                after = _fold_checked(before, entry, lookup)
            assert after is not None, "a stored entry is applied or refused, and folds into an account"
        except (icontract.ViolationError, AssertionError) as error:
            # A violation's message starts "File …, line … in …:"; the contract's own words follow.
            lines = [line for line in str(error).splitlines() if line and not line.startswith("File ")]
            self.found(seq, "decision", "an entry the kernel can fold", lines[0] if lines else repr(error))
            self.replaying = False
            return
        for loss in losses_written(before, entry, after):
            self.losses[loss.opened_by] = loss
        for payout in payouts_written(entry):
            self.payouts[payout.id] = payout
        self.replayed = after

    def finish(self, row: Any, loss_rows: Sequence[Any], payout_rows: Sequence[Any]) -> None:
        """The stored account, losses and payouts against what the ledger says of them."""
        stored = self._stored_account(row, loss_rows)
        stored_payouts = []
        for payout in payout_rows:
            try:
                stored_payouts.append(payout_from_row(payout))
            except ValueError:
                self.found(
                    None, "payouts", f"payout {payout.payout_id!r} pending or confirmed", payout.status
                )
        if row is not None:
            if row.entry_count != self.length:
                self.found(None, "sequence", f"entry_count {self.length}", f"entry_count {row.entry_count}")
            if row.chain_head != self.head:
                self.found(None, "chain", self.head, row.chain_head)
        elif self.length:
            self.found(None, "projection", "the account's row", "a ledger with no account")
        for found in self.check.finish(stored, stored_payouts):
            self.found(found.position, found.invariant, INVARIANT_RULES[found.invariant], found.detail)
        if not self.replaying:
            return
        self._projection(stored)
        self._losses(loss_rows)
        self._payouts(stored_payouts)

    def _stored_account(self, row: Any, loss_rows: Sequence[Any]) -> Account | None:
        if row is None:
            return None
        active = [loss for loss in loss_rows if loss.opened_by == row.loss_opened_by]
        mapping = dict(row._mapping)
        day = mapping["balance_date_latest"]
        mapping["balance_date_latest"] = None if day is None else parse_date(str(day))
        if day is not None and mapping["balance_date_latest"] is None:
            self.found(None, "projection", "balance_date_latest a day YYYY-MM-DD", day)
        for name in (
            column.name for column in schema.losses.columns if column.name not in ("account", "active")
        ):
            mapping[f"loss_{name}"] = active[0]._mapping[name] if active else None
        if row.loss_opened_by is not None and not active:
            self.found(None, "losses", f"a snapshot of the active loss {row.loss_opened_by!r}", "none")
            mapping["loss_opened_by"] = None
        return account_from_mapping(mapping)

    def _projection(self, stored: Account | None) -> None:
        replayed = self.replayed
        if stored is None or replayed is None:
            if stored != replayed:
                self.found(None, "projection", replayed, stored)
            return
        for field in attrs.fields(Account):
            expected, found = getattr(replayed, field.name), getattr(stored, field.name)
            if expected != found:
                self.found(None, "projection", f"{field.name} {expected}", f"{field.name} {found}")

    def _losses(self, loss_rows: Sequence[Any]) -> None:
        stored = {row.opened_by: row for row in loss_rows}
        active = [row.opened_by for row in loss_rows if row.active]
        if len(active) > 1:
            self.found(None, "losses", "at most one active loss", f"{len(active)} active: {sorted(active)}")
        for opened_by in sorted(stored.keys() | self.losses.keys()):
            loss, row = self.losses.get(opened_by), stored.get(opened_by)
            if loss is None or row is None:
                self.found(None, "losses", f"loss {opened_by!r}: {loss}", f"loss {opened_by!r}: {row}")
                continue
            for name in (field.name for field in attrs.fields(Loss)):
                if getattr(loss, name) != getattr(row, name):
                    self.found(None, "losses", f"loss {opened_by!r} {name} {getattr(loss, name)}",
                               f"loss {opened_by!r} {name} {getattr(row, name)}")  # fmt: skip
            if row.active != (loss.remaining_minor > 0):
                self.found(None, "losses", f"loss {opened_by!r} active {loss.remaining_minor > 0}",
                           f"loss {opened_by!r} active {row.active}")  # fmt: skip

    def _payouts(self, stored: Sequence[Payout]) -> None:
        by_id = {payout.id: payout for payout in stored}
        for payout_id in sorted(by_id.keys() | self.payouts.keys()):
            expected, found = self.payouts.get(payout_id), by_id.get(payout_id)
            if expected != found:
                self.found(None, "payouts", expected or f"no payout {payout_id!r}", found or "none")


# --- A whole database ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Leaf:
    account: str
    length: int
    head: bytes
    hashed: bytes


def _pages(connection: Connection, account_id: str) -> Iterator[Any]:
    page, values = _LEDGER_FIRST_PAGE, {"account": account_id, "rows": PAGE_ROWS}
    while True:
        rows = connection.execute(page, values).all()
        yield from rows
        if len(rows) < PAGE_ROWS:
            return
        page, values = _LEDGER_PAGE, {**values, "seq": rows[-1].seq}


def audit(
    engine: Engine,
    *,
    accounts: Sequence[str] = (),
    expect: str | None = None,
    proof: str | None = None,
    record: bool = True,
) -> Report:
    """docs/audit.md §4: audit the database (or only `accounts`), in one read snapshot.

    With `expect`, also check that the ledger at the time of that digest is a prefix of today's; with
    `proof`, give the evidence that that account is included in today's digest. A clean full audit
    records its digest's checkpoint, unless `record` is off.
    """
    if accounts and (expect is not None or proof is not None):
        raise ValueError("--expect and --proof are about the digest of every account: not with --account")
    expect = expect.strip().lower() if expect is not None else None
    findings: list[Finding] = []
    leaves: list[_Leaf] = []
    entries = 0
    prefix_heads: dict[str, bytes] = {}
    options = {"isolation_level": "REPEATABLE READ"} if is_postgresql(engine) else {}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        ids = sorted(set(accounts)) if accounts else sorted(connection.execute(_ACCOUNT_IDS).scalars())
        covered = _checkpoint(connection, expect, findings) if expect is not None else {}
        known = set(connection.execute(_ACCOUNT_IDS).scalars()) if accounts else set(ids)
        for account_id in ids:
            if account_id not in known:
                findings.append(
                    _finding("projection", "an account of this database", "none", account=account_id)
                )
                continue
            problem = account_problem(account_id)
            if problem is not None:
                findings.append(
                    _finding("projection", "an account id ppk writes", problem, account=account_id)
                )
                continue
            one = _AccountAudit(account_id, findings)
            if account_id in covered:
                one.heads_at[covered[account_id]] = b""
            previous: bytes | None = None
            for row in _pages(connection, account_id):
                one.row(row.seq, row.command_id, row.entry, row.hash, previous)
                previous = row.hash
            account_row = connection.execute(_ACCOUNT_ROW, {"account": account_id}).first()
            loss_rows = connection.execute(_LOSSES, {"account": account_id}).all()
            payout_rows = connection.execute(_PAYOUTS, {"account": account_id}).all()
            one.finish(account_row, loss_rows, payout_rows)
            entries += one.length
            if one.length:
                hashed = leaf(account_id, one.length, one.head)
                leaves.append(_Leaf(account=account_id, length=one.length, head=one.head, hashed=hashed))
            if account_id in covered and one.heads_at[covered[account_id]]:
                prefix_heads[account_id] = one.heads_at[covered[account_id]]
    digest = None if accounts else digest_text(merkle_root([one.hashed for one in leaves]))
    if expect is not None and (covered or expect == EMPTY_DIGEST):
        _expectation(expect, covered, prefix_heads, findings)
    the_proof = None
    if proof is not None and digest is not None:
        the_proof = _proof(proof, digest, leaves, findings)
    # The whole ledger's findings first, then the entries' by position (a forged one may be 0 or less).
    findings.sort(
        key=lambda found: (
            found.account or "",
            found.position is not None,
            found.position or 0,
            CHECKS.index(found.check),
        )
    )
    report = Report(
        findings=tuple(findings),
        digest=digest,
        accounts=len(ids),
        entries=entries,
        expected=expect,
        proof=the_proof,
        recorded=False,
        checkpoint=tuple((one.account, one.length) for one in leaves),
    )
    return record_checkpoint(engine, report) if record else report


def record_checkpoint(engine: Engine, report: Report) -> Report:
    """docs/audit.md §3: record the checkpoint of a clean full audit's digest, in a transaction of its
    own: the report with `recorded`, or with the database's refusal in `write_error`. Any other
    report is returned as it is: a digest with findings, or none, vouches for nothing.

    Apart from `audit` so that its caller may print the report first: on SQLite the write waits for
    another writer's lock up to the busy timeout."""
    if report.digest is None or report.findings:
        return report
    write_error = _record(engine, report.digest, report.checkpoint)
    return attrs.evolve(report, recorded=write_error is None, write_error=write_error)


def _finding(
    check: str, expected: object, found: object, account: str | None = None, position: int | None = None
) -> Finding:
    shown_expected, shown_found = _shown(expected, found)
    return Finding(
        account=account, position=position, check=check, expected=shown_expected, found=shown_found
    )


def _checkpoint(connection: Connection, expect: str, findings: list[Finding]) -> dict[str, int]:
    """The account lengths `expect`'s checkpoint recorded; a finding if there is none."""
    if digest_root(expect) is None:
        findings.append(_finding("expect", "a digest: ppk1- and 64 lower-case hexadecimal digits", expect))
        return {}
    lengths = {row.account: row.length for row in connection.execute(_CHECKPOINT, {"digest": expect})}
    if not lengths and expect != EMPTY_DIGEST:  # an empty history is a prefix of any: no checkpoint needed
        findings.append(_finding("expect", f"the checkpoint of {expect}", "no checkpoint: it was deleted, "
                                 "or the digest is not of this database"))  # fmt: skip
    return lengths


def _expectation(
    expect: str, covered: dict[str, int], heads: dict[str, bytes], findings: list[Finding]
) -> None:
    """docs/audit.md §3: the digest rebuilt from today's ledger at the lengths its checkpoint gives."""
    short = sorted(account_id for account_id in covered if account_id not in heads)
    for account_id in short:
        findings.append(
            _finding(
                "expect", f"a ledger of {covered[account_id]} entries or more", "fewer", account=account_id
            )
        )
    if short:
        return
    rebuilt = digest_text(
        merkle_root([leaf(account, covered[account], heads[account]) for account in sorted(covered)])
    )
    if rebuilt != expect:
        findings.append(_finding("expect", expect, f"{rebuilt}: what the digest covered was changed"))


def _proof(account_id: str, digest: str, leaves: list[_Leaf], findings: list[Finding]) -> Proof | None:
    """docs/audit.md §3: the audit path from the account's leaf to the digest."""
    ids = [one.account for one in leaves]
    if account_id not in ids:
        findings.append(
            _finding("projection", "an account with a ledger, for --proof", "none", account=account_id)
        )
        return None
    index = ids.index(account_id)
    return Proof(
        digest=digest,
        account=account_id,
        length=leaves[index].length,
        head=leaves[index].head.hex(),
        index=index,
        size=len(leaves),
        path=tuple(sibling.hex() for sibling in audit_path([one.hashed for one in leaves], index)),
    )


def _record(engine: Engine, digest: str, checkpoint: tuple[tuple[str, int], ...]) -> str | None:
    """Record the digest's checkpoint (each account's length): None once it is in the database, else
    the database's refusal, in one line."""
    rows = [{"account": account_id, "digest": digest, "length": length} for account_id, length in checkpoint]
    if not rows:
        return None  # the empty books' digest: an empty history is a prefix of any, nothing to record
    # Read first: an auditor who may not write (SQLite refuses even its BEGIN IMMEDIATE) still sees
    # a checkpoint an earlier audit recorded.
    with engine.connect() as connection:
        if connection.execute(_CHECKPOINT.limit(1), {"digest": digest}).first() is not None:
            return None
    try:
        with engine.execution_options(ppk_write=True).begin() as connection:
            if connection.execute(_CHECKPOINT.limit(1), {"digest": digest}).first() is None:
                connection.execute(insert(schema.checkpoints), rows)
    except IntegrityError:
        return None  # another audit of the same books recorded it first
    except DBAPIError as error:  # one the auditor may only read, or whose lock a writer held too long
        return str(database_error(engine, error))
    return None
