"""The hash chain of an account's ledger and the Merkle digest of a database (docs/audit.md, version 1).

An account's entries are chained in ledger order, `h(n) = SHA-256(h(n-1) || entry(n))`, from a
genesis that binds the account id; the digest of a database is the RFC 6962 Merkle Tree Hash of one
leaf per account (its id, its ledger's length, its chain head), sorted by account id. Pure functions
over bytes; `docs/verify_chain.py` recomputes the same with its own code, from the document alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

CHAIN_GENESIS_PREFIX: Final = b"ppk-chain-v1\x00"
DIGEST_PREFIX: Final = "ppk1-"
HASH_BYTES: Final = 32
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"


def genesis(account_id: str) -> bytes:
    """docs/audit.md §1: h(0) = SHA-256("ppk-chain-v1" || 0x00 || account)."""
    return hashlib.sha256(CHAIN_GENESIS_PREFIX + account_id.encode("ascii")).digest()


def chained(previous: bytes, entry: bytes) -> bytes:
    """docs/audit.md §1: h(n) = SHA-256(h(n-1) || entry(n))."""
    return hashlib.sha256(previous + entry).digest()


def leaf(account_id: str, length: int, head: bytes) -> bytes:
    """docs/audit.md §2: SHA-256(0x00 || len(account) || account || length, 8 bytes big-endian || head)."""
    name = account_id.encode("ascii")
    return hashlib.sha256(_LEAF + bytes([len(name)]) + name + length.to_bytes(8, "big") + head).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size ≥ 2): where RFC 6962 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """docs/audit.md §2: the RFC 6962 Merkle Tree Hash of the leaves, in their order."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = _split(len(leaves))
    return _node(merkle_root(leaves[:split]), merkle_root(leaves[split:]))


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1: the sibling hashes from leaf `index` up to the root, nearest first.

    Defined for 0 ≤ index < len(leaves) only (PATH(m, D[n]) with 0 ≤ m < n); any other index, and any
    index of no leaves, is an IndexError, not a path that proves nothing."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}: a path is for a leaf from 0 to {len(leaves) - 1}")
    if len(leaves) <= 1:
        return []
    split = _split(len(leaves))
    if index < split:
        return [*audit_path(leaves[:split], index), merkle_root(leaves[split:])]
    return [*audit_path(leaves[split:], index - split), merkle_root(leaves[:split])]


def root_from_path(leaf_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that an audit path gives for a leaf at `index` of `size` leaves; None if it is malformed."""
    if not 0 <= index < size:
        return None
    if size == 1:
        return leaf_hash if not path else None
    if not path:
        return None
    split = _split(size)
    *below, sibling = path
    if index < split:
        inner = root_from_path(leaf_hash, index, split, below)
        return None if inner is None else _node(inner, sibling)
    inner = root_from_path(leaf_hash, index - split, size - split, below)
    return None if inner is None else _node(sibling, inner)


def digest_text(root: bytes) -> str:
    """docs/audit.md §2: a digest as it is printed and kept: `ppk1-` and the root in hex."""
    return DIGEST_PREFIX + root.hex()


def digest_root(text: str) -> bytes | None:
    """The root a digest names, or None if the text is not a digest."""
    if not text.startswith(DIGEST_PREFIX):
        return None
    hexadecimal = text[len(DIGEST_PREFIX) :]
    # Only the 16 digits: bytes.fromhex alone would take capitals, and spaces between bytes (31 bytes
    # written in 64 characters).
    if len(hexadecimal) != 2 * HASH_BYTES or not set(hexadecimal) <= _HEX_DIGITS:
        return None
    return bytes.fromhex(hexadecimal)
