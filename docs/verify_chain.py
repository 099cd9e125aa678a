"""Check a ppk SQLite database's hash chains and digest without ppk: `python docs/verify_chain.py DB`.

    python docs/verify_chain.py DATABASE.db [--expect DIGEST] [--json]

An auditor's verifier, written from docs/audit.md alone with Python's standard library, so that
nothing of ppk's own code has to be trusted. It reads the tables `ledger(account, seq, entry, hash)`,
`accounts(account, entry_count, chain_head)` and, with --expect, `checkpoints(account, digest,
length)`, and then:

1. for each account, streams its ledger in `seq` order (one row at a time, so memory does not grow
   with the ledger) and checks that the positions are 1, 2, ..., N (`sequence`), that each stored
   hash follows from the stored hash before it and the entry's bytes (`chain`), that the chain
   head is h(N) recomputed from h(0) (`chain`) and that `entry_count` is N (`sequence`); an
   account in one of `ledger` and `accounts` but not the other is a `projection` finding;
2. prints the digest of audit.md §2 over the ledger as it is stored: `ppk1-<64 hex digits>`;
3. with --expect DIGEST, rebuilds DIGEST from its checkpoint rows and today's chains (audit.md §3).

Every finding is reported, never only the first: a line each (account, position, check, expected,
found), then the digest; with --json, one object {"digest", "findings": [{"account", "position",
"check", "expected", "found"}], "expect": null or {"digest", "holds", "recomputed", "explanation"}},
hashes in hex. Exit status: 0 clean, 1 on any finding, 2 when the database cannot be read. The
first functions below are the scheme itself, importable by a client that checks `ppk audit --proof`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from pathlib import Path

CHAIN_TAG = b"ppk-chain-v1"  # audit.md §1: the 12 ASCII bytes before the zero byte of h(0)
DIGEST_PREFIX = "ppk1-"  # audit.md §2: the digest's version
ACCOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
ACCOUNT_CHARS_MAX = 64  # spec.md#fields: an account id is 1 to 64 of the characters above


# --- The scheme: audit.md §1 (chain) and §2 (Merkle tree, RFC 6962 §2.1) ---------------------------


def sha256(*parts: bytes) -> bytes:
    """SHA-256 of the parts written one after the other."""
    return hashlib.sha256(b"".join(parts)).digest()


def chain_genesis(account: str) -> bytes:
    """h(0) = SHA-256("ppk-chain-v1" || 0x00 || account)."""
    return sha256(CHAIN_TAG, b"\x00", account.encode("ascii"))


def chain_step(previous: bytes, entry: bytes) -> bytes:
    """h(n) = SHA-256(h(n-1) || entry(n)), entry(n) being the stored bytes exactly."""
    return sha256(previous, entry)


def leaf(account: str, length: int, head: bytes) -> bytes:
    """SHA-256(0x00 || len(account), 1 byte || account || length, 8 bytes big-endian || head)."""
    name = account.encode("ascii")
    return sha256(b"\x00", bytes([len(name)]), name, length.to_bytes(8, "big"), head)


def node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the first byte keeps a node from passing for a leaf."""
    return sha256(b"\x01", left, right)


def split(size: int) -> int:
    """The largest power of two less than `size` (size >= 2): where RFC 6962 cuts a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH of audit.md §2: SHA-256("") for no leaf, the leaf for one, else node(left, right)."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, leaves): the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if index < k:
        return [*audit_path(leaves[:k], index), merkle_root(leaves[k:])]
    return [*audit_path(leaves[k:], index - k), merkle_root(leaves[:k])]


def root_from_path(leaf_hash: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The root that `path` gives for leaf `index` of `size`, or None if the path has the wrong shape.

    It retraces PATH backwards: the last sibling is the top one, to the right of the leaf's subtree
    when the leaf is in the left part (index < k), to its left otherwise."""
    if not 0 <= index < size:
        return None
    if size == 1:
        return leaf_hash if not path else None
    if not path:
        return None
    k = split(size)
    if index < k:
        left = root_from_path(leaf_hash, index, k, path[:-1])
        return None if left is None else node(left, path[-1])
    right = root_from_path(leaf_hash, index - k, size - k, path[:-1])
    return None if right is None else node(path[-1], right)


def verify_path(leaf_hash: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """Whether `path` proves that `leaf_hash` is leaf `index` of the tree of `size` leaves of `root`."""
    return root_from_path(leaf_hash, index, size, path) == root


def digest_text(root: bytes) -> str:
    """The digest as written: `ppk1-` and the root in 64 lower-case hexadecimal digits."""
    return DIGEST_PREFIX + root.hex()


# --- Reading a database ----------------------------------------------------------------------------


class UnreadableError(Exception):
    """The database cannot be read: exit status 2."""


def open_database(path: str) -> sqlite3.Connection:
    """A read-only connection (never creating a file), inside one read transaction: one snapshot."""
    if not Path(path).is_file():
        raise UnreadableError("no such file")
    connection = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    connection.execute("BEGIN")
    return connection


def account_is_valid(account: object) -> bool:
    """Whether `account` is an id ppk can write, so that h(0) and its leaf are defined."""
    if not isinstance(account, str):
        return False
    return 1 <= len(account) <= ACCOUNT_CHARS_MAX and set(account) <= ACCOUNT_CHARS


def plain(value: object) -> object:
    """A stored value as a report shows it: bytes in hex, numbers and text as they are."""
    if isinstance(value, bytes):
        return value.hex()
    return value if value is None or isinstance(value, int | str) else repr(value)


def finding(account: object, position: object, check: str, expected: object, found: object) -> dict:
    """One finding as audit.md §4 reports it (the account is None for the database as a whole)."""
    values = map(plain, (account, position, check, expected, found))
    return dict(zip(("account", "position", "check", "expected", "found"), values, strict=True))


def check_account(
    connection: sqlite3.Connection, account: str, row: tuple | None, length_wanted: object, findings: list
) -> tuple[int, bytes, tuple[bytes, object] | None]:
    """Stream one account's ledger; return N, h(N) and (h(length_wanted), stored hash there)."""
    head = chain_genesis(account)  # h(n), recomputed from h(0)
    stored_previous: bytes = head  # the stored h(n-1) that the stored h(n) must follow from
    at_wanted = (head, head) if length_wanted == 0 else None
    count = 0
    seq_next = 1
    rows = connection.execute(
        "SELECT seq, CAST(entry AS BLOB), hash FROM ledger WHERE account = ? ORDER BY seq", (account,)
    )
    for seq, entry, stored in rows:  # a cursor steps one row at a time: memory stays bounded
        count += 1
        if seq != seq_next:
            findings.append(finding(account, seq_next, "sequence", seq_next, seq))
        seq_next = (seq if isinstance(seq, int) else seq_next) + 1
        entry_bytes = entry if entry is not None else b""
        head = chain_step(head, entry_bytes)
        # Checking each link against the stored hash before it, rather than against h(n) from h(0),
        # passes exactly when every stored h(n) is the recomputed one (by induction from h(0)), but
        # names only the links that broke, not every position after the first.
        link = chain_step(stored_previous, entry_bytes)
        if stored != link:
            findings.append(finding(account, seq, "chain", link, stored))
        stored_previous = stored if isinstance(stored, bytes) else b""
        if count == length_wanted:
            at_wanted = (head, stored)
    if row is None:
        findings.append(finding(account, None, "projection", "a row in accounts", "no row"))
    else:
        entry_count, chain_head = row
        if entry_count != count:
            findings.append(finding(account, None, "sequence", count, entry_count))
        if chain_head != head:
            findings.append(finding(account, None, "chain", head, chain_head))
    return count, head, at_wanted


def check_expect(expect: str, checkpoint: dict, heads: dict, counts: dict, findings: list) -> dict:
    """audit.md §3: rebuild `expect` from its checkpoint and today's chains at its lengths."""
    result: dict = {"digest": expect, "holds": False, "recomputed": None, "explanation": None}
    if not checkpoint:
        findings.append(finding(None, None, "expect", f"a checkpoint of {expect}", "no checkpoint"))
        result["explanation"] = "no checkpoint: the history this digest covered is gone"
        return result
    leaves = []
    short = []
    for account in sorted(checkpoint, key=lambda name: name.encode("ascii")):
        length = checkpoint[account]
        if account not in heads:  # today's ledger is shorter than the checkpoint says it was
            short.append(account)
            found = f"{counts.get(account, 0)} entries"
            findings.append(finding(account, None, "expect", f"at least {length} entries", found))
        else:
            leaves.append(leaf(account, length, heads[account][0]))
    if short:
        result["explanation"] = f"the ledgers of {', '.join(short)} are shorter than the checkpoint's"
        return result
    result["recomputed"] = digest_text(merkle_root(leaves))
    result["holds"] = result["recomputed"] == expect
    if not result["holds"]:
        findings.append(finding(None, None, "expect", expect, result["recomputed"]))
        # The root alone cannot say which leaf differs. A stored hash at the checkpoint's length that
        # is not the recomputed h(length) names an account whose prefix was edited and not rehashed.
        suspects = sorted(account for account, (head, stored) in heads.items() if stored != head)
        result["explanation"] = (
            f"the prefixes of {', '.join(suspects)} were edited"
            if suspects
            else "every chain matches its stored hashes up to the checkpoint's length: a prefix was "
            "rewritten and rehashed, or the checkpoint rows were edited (the root cannot say which)"
        )
    return result


def verify(connection: sqlite3.Connection, expect: str | None = None) -> dict:
    """The report: {"digest", "findings", "expect"}. sqlite3.Error means the database is unreadable."""
    findings: list = []
    rows = {
        account: (entry_count, chain_head)
        for account, entry_count, chain_head in connection.execute(
            "SELECT account, entry_count, chain_head FROM accounts"
        )
    }
    in_ledger = {account for (account,) in connection.execute("SELECT DISTINCT account FROM ledger")}
    checkpoint: dict = {}
    if expect is not None:
        cursor = connection.execute("SELECT account, length FROM checkpoints WHERE digest = ?", (expect,))
        for account, length in cursor:
            if not account_is_valid(account) or not isinstance(length, int) or length < 0:
                findings.append(finding(account, None, "expect", "a checkpoint row of ppk's", length))
            elif account in checkpoint:
                findings.append(finding(account, None, "expect", "one checkpoint row", "two"))
            else:
                checkpoint[account] = length
    leaves = []
    heads: dict = {}  # account -> (h(length), stored hash at length), for the checkpoint's accounts
    counts: dict = {}
    for account in sorted(in_ledger | set(rows), key=lambda name: str(name).encode("utf-8", "replace")):
        if not account_is_valid(account):
            findings.append(finding(account, None, "account", "1 to 64 of A-Z a-z 0-9 _ . -", account))
        elif account not in in_ledger:
            findings.append(finding(account, None, "projection", "no row (no ledger)", "a row in accounts"))
        else:
            count, head, at_wanted = check_account(
                connection, account, rows.get(account), checkpoint.get(account), findings
            )
            leaves.append(leaf(account, count, head))
            counts[account] = count
            if at_wanted is not None:
                heads[account] = at_wanted
    report: dict = {"digest": digest_text(merkle_root(leaves)), "findings": findings, "expect": None}
    if expect is not None:
        report["expect"] = check_expect(expect, checkpoint, heads, counts, findings)
    return report


def show(report: dict) -> str:
    """The readable report: one line per finding, the expectation if any, then the digest."""
    lines = []
    for item in report["findings"]:
        where = "(database)" if item["account"] is None else item["account"]
        where += "" if item["position"] is None else f" #{item['position']}"
        lines.append(f"{where}: {item['check']}: expected {item['expected']}, found {item['found']}")
    if report["expect"] is not None:
        expectation = report["expect"]
        verdict = "holds" if expectation["holds"] else f"FAILS: {expectation['explanation']}"
        lines.append(f"expect {expectation['digest']}: {verdict}")
    lines.append(f"digest {report['digest']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="the SQLite database file of a ppk store")
    parser.add_argument("--expect", metavar="DIGEST", help="a digest printed before, kept outside")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    expect = args.expect.strip().lower() if args.expect is not None else None
    hex_digits = set("0123456789abcdef")
    if expect is not None and not (
        expect.startswith(DIGEST_PREFIX) and len(expect) == 69 and set(expect[5:]) <= hex_digits
    ):
        parser.error(f"--expect takes {DIGEST_PREFIX} and 64 hexadecimal digits, not {args.expect!r}")
    try:
        connection = open_database(args.database)
        try:
            report = verify(connection, expect)
        finally:
            connection.close()
    except (UnreadableError, sqlite3.Error) as error:
        message = " ".join(str(error).split())
        print(f"verify_chain: cannot read {args.database}: {message}", file=sys.stderr)
        return 2
    print(json.dumps(report, sort_keys=True) if args.json else show(report))
    return 1 if report["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
