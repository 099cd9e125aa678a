"""docs/verify_chain.py checks what docs/audit.md says, and catches raw edits of a SQLite database.

The databases are built by hand with the columns the verifier reads, and every hash is computed
here longhand from audit.md with hashlib, never with the verifier's functions: the test checks the
verifier against the document, not against itself.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ppk.adapters import chain

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "verify_chain.py"

SCHEMA = """
CREATE TABLE ledger (account TEXT NOT NULL, seq INTEGER NOT NULL, command_id TEXT NOT NULL,
                     entry BLOB NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (account, seq));
CREATE TABLE accounts (account TEXT PRIMARY KEY, entry_count INTEGER NOT NULL, chain_head BLOB NOT NULL);
CREATE TABLE checkpoints (account TEXT NOT NULL, digest TEXT NOT NULL, length INTEGER NOT NULL,
                          PRIMARY KEY (account, digest));
"""

# Arbitrary bytes: the chain covers the stored bytes as they are, whatever they encode.
BOOKS = {
    "acme": [b'{"n":1}', b'{"n":2}', b"\xff\x00 not even UTF-8", b'{"n":4}', b'{"n":5}'],
    "B": [b"first", b"second"],
    "zed.co": [b"only"],
    "a_1": [b"x", b"y", b"z"],
}


def _verifier():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("verify_chain", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vc = _verifier()


# --- audit.md, longhand ------------------------------------------------------------------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hashes(account: str, entries: list[bytes]) -> list[bytes]:
    """[h(0), h(1), ..., h(N)] of audit.md §1."""
    chain = [sha(b"ppk-chain-v1" + b"\x00" + account.encode("ascii"))]
    for entry in entries:
        chain.append(sha(chain[-1] + entry))
    return chain


def leaf_of(account: str, length: int, head: bytes) -> bytes:
    name = account.encode("ascii")
    return sha(b"\x00" + bytes([len(name)]) + name + length.to_bytes(8, "big") + head)


def pair(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, over already hashed leaves."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return pair(mth(leaves[:k]), mth(leaves[k:]))


def digest_of(lengths: dict[str, tuple[int, bytes]]) -> str:
    """The digest of audit.md §2 over {account: (length, head)}, sorted by the account's bytes."""
    accounts = sorted(lengths, key=lambda account: account.encode("ascii"))
    return "ppk1-" + mth([leaf_of(account, *lengths[account]) for account in accounts]).hex()


def rfc9162_verify(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, the iterative check: a second algorithm for the verifier's paths."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = pair(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = pair(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# --- Databases ---------------------------------------------------------------------------------


def build(path: Path, books: dict[str, list[bytes]] = BOOKS) -> Path:
    """A database whose ledgers are `books`, every hash and head written as the store writes them."""
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        for account, entries in books.items():
            append(db, account, entries)
    return path


def append(db: sqlite3.Connection, account: str, entries: list[bytes]) -> None:
    """Entries appended to `account`'s ledger (opening it if new), its row moved to the new head."""
    old = [
        entry
        for (entry,) in db.execute("SELECT entry FROM ledger WHERE account = ? ORDER BY seq", (account,))
    ]
    chain = hashes(account, old + entries)
    for seq, entry in enumerate(entries, start=len(old) + 1):
        db.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?)", (account, seq, f"c{seq}", entry, chain[seq]))
    db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)", (account, len(chain) - 1, chain[-1]))


def rehash(db: sqlite3.Connection, account: str) -> None:
    """An insider's cover-up: every hash and the head of `account` recomputed from its entries now."""
    rows = db.execute("SELECT seq, entry FROM ledger WHERE account = ? ORDER BY seq", (account,)).fetchall()
    chain = hashes(account, [entry for _, entry in rows])
    for (seq, _), value in zip(rows, chain[1:], strict=True):
        db.execute("UPDATE ledger SET hash = ? WHERE account = ? AND seq = ?", (value, account, seq))
    db.execute(
        "UPDATE accounts SET chain_head = ?, entry_count = ? WHERE account = ?",
        (chain[-1], len(rows), account),
    )


def checkpoint(db: sqlite3.Connection, digest: str) -> None:
    """What a clean `ppk audit` records beside the digest it prints: each account's length."""
    for account, length in db.execute("SELECT account, entry_count FROM accounts").fetchall():
        db.execute("INSERT INTO checkpoints VALUES (?, ?, ?)", (account, digest, length))


def tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sqlite3.connect(path) as db:
        for sql, parameters in statements:
            db.execute(sql, parameters)


def run(*arguments: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def report(path: Path, *arguments: object) -> tuple[int, dict]:
    """The exit status and the JSON report of the verifier run on `path`."""
    done = run(path, "--json", *arguments)
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def checks(found: dict) -> set[tuple[object, object, str]]:
    return {(item["account"], item["position"], item["check"]) for item in found["findings"]}


def clean_digest(books: dict[str, list[bytes]] = BOOKS) -> str:
    return digest_of(
        {account: (len(entries), hashes(account, entries)[-1]) for account, entries in books.items()}
    )


# --- The scheme --------------------------------------------------------------------------------


def test_chain_and_leaf__functions_are_audit_md_longhand() -> None:
    chain = hashes("acme", BOOKS["acme"])
    assert vc.chain_genesis("acme") == chain[0]
    assert vc.chain_step(chain[2], BOOKS["acme"][2]) == chain[3]
    assert vc.leaf("acme", 5, chain[5]) == leaf_of("acme", 5, chain[5])
    assert vc.chain_genesis("acme") != vc.chain_genesis("acme2"), "h(0) binds the account"


def test_merkle_root__rfc6962_shapes_for_0_1_2_3_5_8_leaves() -> None:
    d = [sha(bytes([i])) for i in range(8)]
    expected = {
        0: sha(b""),
        1: d[0],
        2: pair(d[0], d[1]),
        3: pair(pair(d[0], d[1]), d[2]),
        5: pair(pair(pair(d[0], d[1]), pair(d[2], d[3])), d[4]),
        8: pair(
            pair(pair(d[0], d[1]), pair(d[2], d[3])),
            pair(pair(d[4], d[5]), pair(d[6], d[7])),
        ),
    }
    for size, root in expected.items():
        assert vc.merkle_root(d[:size]) == root, size
    assert expected[0].hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_audit_path__rfc6962_example_of_seven_leaves() -> None:
    # RFC 6962 §2.1.3: in the tree of a..g, the path of a is [b, h, l], of d [c, g, l], of e [f, j, k].
    a, b, c, d, e, f, g_leaf = (sha(bytes([i])) for i in range(7))
    g, h, i, j = pair(a, b), pair(c, d), pair(e, f), g_leaf
    k, l = pair(g, h), pair(i, j)  # noqa: E741 (the RFC's names)
    leaves = [a, b, c, d, e, f, g_leaf]
    assert vc.audit_path(leaves, 0) == [b, h, l]
    assert vc.audit_path(leaves, 3) == [c, g, l]
    assert vc.audit_path(leaves, 4) == [f, j, k]
    assert vc.audit_path(leaves, 6) == [i, k]


def test_audit_path__every_leaf_of_sizes_1_to_9_verifies_and_nothing_else_does() -> None:
    for size in range(1, 10):
        leaves = [sha(b"leaf %d" % i) for i in range(size)]
        root = mth(leaves)
        for index in range(size):
            path = vc.audit_path(leaves, index)
            assert vc.verify_path(leaves[index], index, size, path, root), (size, index)
            assert rfc9162_verify(leaves[index], index, size, path, root), (size, index)
            assert not vc.verify_path(leaves[index], index, size, path, sha(b"another root"))
            assert not vc.verify_path(leaves[index], size, size, path, root), "an index past the end"
            for wrong in range(size):
                if wrong != index:
                    assert not vc.verify_path(leaves[index], wrong, size, path, root), (size, index, wrong)
            for at in range(len(path)):
                forged = [*path[:at], sha(path[at]), *path[at + 1 :]]
                assert not vc.verify_path(leaves[index], index, size, forged, root), (size, index, at)
            assert not vc.verify_path(leaves[index], index, size, [*path, root], root), "a path too long"
            if path:
                assert not vc.verify_path(leaves[index], index, size, path[:-1], root), "a path too short"
            assert not vc.verify_path(sha(b"not a leaf"), index, size, path, root)


def test_audit_path__ppks_own_paths_and_roots_are_the_verifiers() -> None:
    """adapters/chain.py's audit_path (what `ppk audit --proof` prints) and root_from_path agree with the
    verifier's, and root_from_path refuses an index outside the tree (mutation survivor chain.py:69)."""
    for size in range(1, 10):
        leaves = [sha(b"leaf %d" % i) for i in range(size)]
        for index in range(size):
            path = chain.audit_path(leaves, index)
            assert path == vc.audit_path(leaves, index), (size, index)
            assert chain.root_from_path(leaves[index], index, size, path) == mth(leaves), (size, index)
        last = chain.audit_path(leaves, size - 1)
        assert chain.root_from_path(leaves[-1], size, size, last) is None, "an index past the end"
        assert chain.root_from_path(leaves[0], -1, size, chain.audit_path(leaves, 0)) is None


# --- A clean database --------------------------------------------------------------------------


def test_clean__verifies_and_prints_the_digest_computed_longhand(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    status, found = report(path)
    assert (status, found["findings"], found["expect"]) == (0, [], None)
    assert found["digest"] == clean_digest()
    done = run(path)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [f"digest {clean_digest()}"]


def test_clean__accounts_are_in_byte_order_not_case_order(tmp_path: Path) -> None:
    # "B" < "a_1" < "acme" < "zed.co" by their bytes; any other order gives another root.
    path = build(tmp_path / "ppk.db")
    heads = {account: hashes(account, entries)[-1] for account, entries in BOOKS.items()}
    order = ["B", "a_1", "acme", "zed.co"]
    expected = mth([leaf_of(account, len(BOOKS[account]), heads[account]) for account in order])
    assert report(path)[1]["digest"] == "ppk1-" + expected.hex()


def test_clean__an_empty_database_has_the_digest_of_no_leaf(tmp_path: Path) -> None:
    status, found = report(build(tmp_path / "ppk.db", {}))
    assert (status, found["digest"]) == (0, "ppk1-" + sha(b"").hex())


# --- Tampering, by raw SQL ---------------------------------------------------------------------


def test_tamper__an_entry_changed(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("UPDATE ledger SET entry = ? WHERE account = 'acme' AND seq = 2", (b'{"n":200}',)))
    status, found = report(path)
    assert status == 1
    assert checks(found) == {("acme", 2, "chain"), ("acme", None, "chain")}
    [link] = [item for item in found["findings"] if item["position"] == 2]
    chain = hashes("acme", BOOKS["acme"])
    assert (link["expected"], link["found"]) == (sha(chain[1] + b'{"n":200}').hex(), chain[2].hex())
    assert found["digest"] != clean_digest()


def test_tamper__an_entry_deleted(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("DELETE FROM ledger WHERE account = 'acme' AND seq = 3", ()))
    status, found = report(path)
    assert status == 1
    assert {("acme", 3, "sequence"), ("acme", 4, "chain"), ("acme", None, "sequence")} <= checks(found)
    [count] = [item for item in found["findings"] if item["check"] == "sequence" and item["position"] is None]
    assert (count["expected"], count["found"]) == (4, 5)


def test_tamper__the_last_entry_deleted(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("DELETE FROM ledger WHERE account = 'acme' AND seq = 5", ()))
    status, found = report(path)
    assert (status, checks(found)) == (1, {("acme", None, "sequence"), ("acme", None, "chain")})


def test_tamper__two_entries_swapped(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    acme = BOOKS["acme"]
    swap = "UPDATE ledger SET entry = ? WHERE account = 'acme' AND seq = ?"
    tamper(path, (swap, (acme[2], 2)), (swap, (acme[1], 3)))
    status, found = report(path)
    assert (status, checks(found)) == (
        1,
        {("acme", 2, "chain"), ("acme", 3, "chain"), ("acme", None, "chain")},
    )


def test_tamper__two_rows_swapped_with_their_hashes(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    move = "UPDATE ledger SET seq = ? WHERE account = 'acme' AND seq = ?"
    tamper(path, (move, (-1, 2)), (move, (2, 3)), (move, (3, -1)))
    status, found = report(path)
    assert status == 1
    assert {("acme", 2, "chain"), ("acme", 3, "chain"), ("acme", None, "chain")} <= checks(found)


def test_tamper__a_stored_hash_changed(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("UPDATE ledger SET hash = ? WHERE account = 'B' AND seq = 1", (sha(b"forged"),)))
    status, found = report(path)
    # The stored h(1) is not h(1), and the stored h(2) does not follow from the stored h(1); the head
    # and the digest are still right, since they are recomputed from the entries.
    assert (status, checks(found)) == (1, {("B", 1, "chain"), ("B", 2, "chain")})
    assert found["digest"] == clean_digest()


def test_tamper__a_chain_head_changed(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("UPDATE accounts SET chain_head = ? WHERE account = 'zed.co'", (sha(b"forged"),)))
    status, found = report(path)
    assert (status, checks(found)) == (1, {("zed.co", None, "chain")})
    [head] = found["findings"]
    assert (head["expected"], head["found"]) == (
        hashes("zed.co", BOOKS["zed.co"])[-1].hex(),
        sha(b"forged").hex(),
    )


def test_tamper__an_entry_count_changed(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("UPDATE accounts SET entry_count = 4 WHERE account = 'a_1'", ()))
    status, found = report(path)
    assert (status, found["findings"]) == (
        1,
        [{"account": "a_1", "position": None, "check": "sequence", "expected": 3, "found": 4}],
    )


def test_tamper__an_account_in_one_table_only(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(
        path,
        ("DELETE FROM accounts WHERE account = 'B'", ()),
        ("INSERT INTO accounts VALUES ('ghost', 1, ?)", (sha(b"ghost"),)),
    )
    status, found = report(path)
    assert (status, checks(found)) == (1, {("B", None, "projection"), ("ghost", None, "projection")})


def test_tamper__the_readable_report_names_account_position_and_check(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("UPDATE ledger SET entry = x'00' WHERE account = 'acme' AND seq = 2", ()))
    done = run(path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("acme #2: chain: expected ")
    assert lines[1].startswith("acme: chain: expected ")
    assert lines[-1].startswith("digest ppk1-")


# --- --expect ----------------------------------------------------------------------------------


@pytest.fixture
def audited(tmp_path: Path) -> tuple[Path, str]:
    """A database audited clean once: its digest, kept outside, and the checkpoint recorded inside."""
    path = build(tmp_path / "ppk.db")
    digest = report(path)[1]["digest"]
    with sqlite3.connect(path) as db:
        checkpoint(db, digest)
    return path, digest


def test_expect__holds_on_the_same_database(audited: tuple[Path, str]) -> None:
    path, digest = audited
    status, found = report(path, "--expect", digest)
    assert (status, found["findings"]) == (0, [])
    assert found["expect"] == {"digest": digest, "holds": True, "recomputed": digest, "explanation": None}
    assert run(path, "--expect", digest.upper().replace("PPK1-", "ppk1-")).returncode == 0


def test_expect__holds_after_entries_are_appended_and_an_account_opens(audited: tuple[Path, str]) -> None:
    path, digest = audited
    with sqlite3.connect(path) as db:
        append(db, "acme", [b'{"n":6}', b'{"n":7}'])
        append(db, "zed.co", [b"more"])
        append(db, "A.new", [b"hello"])
    status, found = report(path, "--expect", digest)
    assert (status, found["findings"], found["expect"]["holds"]) == (0, [], True)
    books = {**BOOKS, "acme": [*BOOKS["acme"], b'{"n":6}', b'{"n":7}'], "zed.co": [b"only", b"more"]}
    assert found["digest"] == clean_digest({**books, "A.new": [b"hello"]}) != digest


def test_expect__fails_after_an_old_entry_is_edited_and_its_chain_rehashed(audited: tuple[Path, str]) -> None:
    path, digest = audited
    with sqlite3.connect(path) as db:
        db.execute("UPDATE ledger SET entry = ? WHERE account = 'acme' AND seq = 2", (b'{"n":-2}',))
        rehash(db, "acme")
    assert report(path)[1]["findings"] == [], "the chains alone are consistent again"
    status, found = report(path, "--expect", digest)
    assert status == 1
    assert checks(found) == {(None, None, "expect")}
    assert found["expect"]["holds"] is False
    assert found["expect"]["recomputed"] == found["findings"][0]["found"] != digest
    assert "rehashed" in found["expect"]["explanation"]


def test_expect__fails_after_an_old_entry_is_edited_and_names_it(audited: tuple[Path, str]) -> None:
    path, digest = audited
    tamper(path, ("UPDATE ledger SET entry = ? WHERE account = 'a_1' AND seq = 1", (b"X",)))
    status, found = report(path, "--expect", digest)
    assert status == 1
    assert {("a_1", 1, "chain"), (None, None, "expect")} <= checks(found)
    assert found["expect"]["explanation"] == "the prefixes of a_1 were edited"


def test_expect__fails_when_history_is_cut_short_consistently(audited: tuple[Path, str]) -> None:
    path, digest = audited
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM ledger WHERE account = 'acme' AND seq > 3")
        rehash(db, "acme")
    assert report(path)[0] == 0
    status, found = report(path, "--expect", digest)
    assert status == 1
    [short] = found["findings"]
    assert (short["account"], short["check"], short["expected"], short["found"]) == (
        "acme",
        "expect",
        "at least 5 entries",
        "3 entries",
    )


def test_expect__fails_when_the_checkpoint_is_deleted(audited: tuple[Path, str]) -> None:
    path, digest = audited
    tamper(path, ("DELETE FROM checkpoints", ()))
    status, found = report(path, "--expect", digest)
    assert status == 1
    assert [(item["check"], item["found"]) for item in found["findings"]] == [("expect", "no checkpoint")]
    assert run(path, "--expect", digest).stdout.splitlines()[0].endswith("found no checkpoint")


def test_expect__fails_when_one_account_of_the_checkpoint_is_deleted(audited: tuple[Path, str]) -> None:
    path, digest = audited
    tamper(path, ("DELETE FROM checkpoints WHERE account = 'zed.co'", ()))
    assert report(path, "--expect", digest)[0] == 1


def test_expect__fails_when_a_checkpoint_length_is_edited(audited: tuple[Path, str]) -> None:
    path, digest = audited
    tamper(path, ("UPDATE checkpoints SET length = 4 WHERE account = 'acme'", ()))
    status, found = report(path, "--expect", digest)
    assert (status, checks(found)) == (1, {(None, None, "expect")})
    assert "checkpoint rows were edited" in found["expect"]["explanation"]


def test_expect__fails_for_a_digest_never_recorded(audited: tuple[Path, str]) -> None:
    path, _ = audited
    status, found = report(path, "--expect", "ppk1-" + "0" * 64)
    assert (status, found["findings"][0]["found"]) == (1, "no checkpoint")


# --- A database that cannot be read ------------------------------------------------------------


def _unreadable(path: Path) -> None:
    done = run(path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr


def test_unreadable__a_missing_file_exits_2_and_is_not_created(tmp_path: Path) -> None:
    _unreadable(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_unreadable__a_file_that_is_not_sqlite_exits_2(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database, " * 100)
    _unreadable(tmp_path / "notes.db")


def test_unreadable__a_database_without_the_tables_exits_2(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute("CREATE TABLE something (x)")
    _unreadable(tmp_path / "other.db")


def test_unreadable__expect_without_a_checkpoints_table_exits_2(tmp_path: Path) -> None:
    path = build(tmp_path / "ppk.db")
    tamper(path, ("DROP TABLE checkpoints", ()))
    assert run(path, "--expect", "ppk1-" + "0" * 64).returncode == 2


# --- Standard library only ---------------------------------------------------------------------


def test_imports__standard_library_only() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imported = set()
    for statement in ast.walk(tree):
        if isinstance(statement, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in statement.names}
        elif isinstance(statement, ast.ImportFrom):
            assert statement.level == 0 and statement.module is not None, "no relative import"
            imported.add(statement.module.split(".")[0])
    assert imported, "the parse found no import"
    assert imported - sys.stdlib_module_names - {"__future__"} == set()
    assert "ppk" not in imported


@pytest.mark.parametrize(("size", "index"), [(0, 0), (1, 1), (1, -1), (7, 7), (7, -1), (8, 9)])
def test_audit_path__a_leaf_outside_the_tree_is_an_index_error(size: int, index: int) -> None:
    """RFC 6962 defines PATH(m, D[n]) for 0 ≤ m < n: no path is made up for any other leaf (and a
    tree of no leaves has none)."""
    leaves = [chain.leaf(f"a{n}", 1, bytes(32)) for n in range(size)]
    with pytest.raises(IndexError, match=f"leaf {index} of {size}"):
        chain.audit_path(leaves, index)
