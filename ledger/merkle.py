"""Reference Merkle tree hashing and proofs, exactly per RFC 6962 §2.1 (and RFC 9162 §2.1).

- leaf hash ``SHA-256(0x00 || data)``; interior node ``SHA-256(0x01 || left || right)``;
- a tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``;
- the root of the empty tree is ``SHA-256("")``.

This module is the public, deliberately plain reference: it recomputes from the full list of leaf
hashes, following the RFC's recursive definitions (``MTH``, ``PATH``, ``PROOF``/``SUBPROOF``) with
index ranges instead of list copies. The store-backed tree (`ledger._tree`) produces the same
proofs from O(log n) stored subtree hashes and is tested against this module.

Generation functions raise `ledger.MerkleError` on arguments outside the tree. Verification
functions (RFC 9162 §2.1.3.2 and §2.1.4.2) never raise: anything malformed is simply ``False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

from ledger._errors import MerkleError

__all__ = [
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32
_EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 leaf hash of ``data``: ``SHA-256(0x00 || data)``."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01" + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == _HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a non-empty range."""
    n = end - start
    if n == 1:
        return leaves[start]
    k = _split(n)
    return node_hash(_mth(leaves, start, start + k), _mth(leaves, start + k, end))


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (root) of a list of leaf hashes; ``SHA-256("")`` for no leaves."""
    if not leaf_hashes:
        return _EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path PATH(index, D[n]) for leaf ``index`` of the tree over ``leaf_hashes``.

    Ordered from the leaf's sibling up to the child of the root, as RFC 6962 §2.1.1 builds it.
    """
    n = len(leaf_hashes)
    if not (_is_size(index) and index < n):
        raise MerkleError(f"leaf index {index} is outside a tree of size {n}")
    path: list[bytes] = []
    start, end, m = 0, n, index
    # PATH recursion unrolled top-down; siblings are collected and reversed at the end.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            path.append(_mth(leaf_hashes, start + k, end))
            end = start + k
        else:
            path.append(_mth(leaf_hashes, start, start + k))
            start += k
            m -= k
    path.reverse()
    return path


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof PROOF(old_size, D[n]) between the tree's first ``old_size`` leaves and
    all of ``leaf_hashes`` (RFC 6962 §2.1.2; RFC 9162 §2.1.4.1 is the same construction).

    Empty when ``old_size`` is 0 or equals the tree size.
    """
    n = len(leaf_hashes)
    if not (_is_size(old_size) and old_size <= n):
        raise MerkleError(f"old size {old_size} is outside a tree of size {n}")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, n, old_size, True
    # SUBPROOF(m, D[start:end], complete) unrolled top-down, reversed at the end.
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(_mth(leaf_hashes, start + k, end))
            end = start + k
        else:
            proof.append(_mth(leaf_hashes, start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(_mth(leaf_hashes, start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf ``leaf_hash`` at ``index`` in the tree of ``tree_size`` with
    ``root`` (RFC 9162 §2.1.3.2). Never raises; malformed input is ``False``."""
    if not (_is_size(index) and _is_size(tree_size) and index < tree_size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root)):
        return False
    try:
        path = list(proof)
    except TypeError:
        return False
    if not all(_is_hash(p) for p in path):
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` with ``old_root`` is a prefix of the tree of
    ``new_size`` with ``new_root`` (RFC 9162 §2.1.4.2). Never raises; malformed input is ``False``.

    Equal sizes need equal roots and an empty proof; an empty old tree (whose root must be
    ``SHA-256("")``) is consistent with every tree, by an empty proof.
    """
    if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    try:
        path = list(proof)
    except TypeError:
        return False
    if not all(_is_hash(p) for p in path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path and old_root == _EMPTY_ROOT
    if not path:
        return False
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
