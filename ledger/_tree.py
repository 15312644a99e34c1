"""The algebra of a store-backed RFC 6962 tree that keeps the hashes of its perfect subtrees.

Nodes are addressed ``NodeId = (level, index)``: node ``(l, i)`` is the root of the perfect
subtree over leaves ``[i * 2**l, (i + 1) * 2**l)``; level 0 holds the leaf hashes themselves (the
store keeps those in its event rows, at position ``i``). Only perfect subtrees are ever stored: they
never change once complete, so a row written is a row final. A subtree along the right edge of a
tree whose size is not a power of two is not stored but rebuilt from its perfect parts (at most
log2(n) + 1 of them).

Everything here is pure: the store asks a *plan* which NodeIds a proof needs, fetches them all in
one query, and hands them to `assemble`, which produces exactly the RFC 6962 proof
(`ledger.merkle` is the reference it is tested against). A proof for any leaf of a tree of any size
needs at most 2 * log2(n) + 2 nodes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from itertools import repeat
from typing import TypeAlias

from ledger._errors import MerkleError

__all__ = [
    "Element",
    "Frontier",
    "NodeId",
    "ProofPlan",
    "append_leaves",
    "assemble",
    "consistency_proof_plan",
    "inclusion_plans",
    "inclusion_proof_plan",
    "perfect_parts",
    "root_plan",
]

NodeId: TypeAlias = tuple[int, int]
"""``(level, index)``: the perfect subtree over leaves ``[index << level, (index+1) << level)``."""

Element: TypeAlias = tuple[NodeId, ...]
"""One proof element: the perfect subtrees whose fold it is (one when it is itself perfect)."""

_HASH_SIZE = 32
_EMPTY_ROOT = sha256(b"").digest()


def perfect_parts(start: int, end: int) -> tuple[NodeId, ...]:
    """The perfect subtrees that make up ``[start, end)``, left (largest) to right (smallest).

    ``start`` must be aligned to a power of two at least ``end - start``, which holds for every
    subtree of the RFC 6962 recursion and for the whole tree (``start == 0``).
    """
    parts: list[NodeId] = []
    pos, length = start, end - start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            parts.append((level, pos >> level))
            pos += 1 << level
    return tuple(parts)


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MerkleError(f"{name} must be a non-negative integer, got {value!r}")


def _fold(hashes: list[bytes]) -> bytes:
    """The root of a right-edge subtree from its perfect parts: fold right to left."""
    if not hashes:
        return _EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = sha256(b"\x01" + h + acc).digest()
    return acc


@dataclass(frozen=True, slots=True)
class Frontier:
    """The right edge of a tree: its size and the hashes of the perfect subtrees along the right
    edge, largest (leftmost) first: one per set bit of ``size``, so at most log2(size) + 1."""

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_size("frontier size", self.size)
        if len(self.hashes) != self.size.bit_count():
            raise MerkleError(
                f"a frontier of size {self.size} has {self.size.bit_count()} subtree hashes, "
                f"got {len(self.hashes)}"
            )
        for i, h in enumerate(self.hashes):
            if not isinstance(h, bytes) or len(h) != _HASH_SIZE:
                raise MerkleError(f"frontier hash {i} is not a {_HASH_SIZE}-byte hash")

    @classmethod
    def empty(cls) -> Frontier:
        """The frontier of the empty tree."""
        return cls(0, ())

    def node_ids(self) -> tuple[NodeId, ...]:
        """The NodeIds of `hashes`, in the same order (what to fetch to rebuild a frontier)."""
        return perfect_parts(0, self.size)

    @classmethod
    def from_nodes(cls, size: int, hashes: Mapping[NodeId, bytes]) -> Frontier:
        """Rebuild the frontier of a tree of ``size`` leaves from stored node hashes (at least the
        nodes of ``root_plan(size).nodes``)."""
        _check_size("tree size", size)
        ids = perfect_parts(0, size)
        missing = [node for node in ids if node not in hashes]
        if missing:
            raise MerkleError(f"frontier of size {size} needs the hashes of nodes {missing}")
        return cls(size, tuple(hashes[node] for node in ids))

    def root(self) -> bytes:
        """The RFC 6962 root hash of the tree (``SHA-256("")`` when empty)."""
        return _fold(list(self.hashes))


def append_leaves(
    frontier: Frontier, leaf_hashes: Iterable[bytes]
) -> tuple[Frontier, dict[NodeId, bytes]]:
    """Append leaf hashes to a tree given by its frontier, in one pass.

    Returns the new frontier and every perfect node of level >= 1 that the append completed (what
    the store persists; level-0 nodes are the leaf hashes it already keeps).
    """
    items = list(leaf_hashes)
    old_size = frontier.size
    new_size = old_size + len(items)
    if items and (set(map(type, items)) != {bytes} or set(map(len, items)) != {_HASH_SIZE}):
        bad = next(i for i, h in enumerate(items) if type(h) is not bytes or len(h) != _HASH_SIZE)
        raise MerkleError(f"leaf {old_size + bad}: not a {_HASH_SIZE}-byte hash: {items[bad]!r}")
    old_edge = {
        level: h for (level, _), h in zip(frontier.node_ids(), frontier.hashes, strict=True)
    }
    new_edge: dict[int, bytes] = {}
    nodes: dict[NodeId, bytes] = {}
    hash_ = sha256
    # Level by level: `items` are the nodes of `level` completed by this append, the first at
    # index `start`. A left sibling that was already complete is the old frontier's node of that
    # level; an odd one out at the end is the new frontier's. Pairs make the next level.
    level, start = 0, old_size
    while True:
        if start & 1:
            items = [old_edge[level], *items]
            start -= 1
        if len(items) & 1:
            new_edge[level] = items.pop()
        if not items:
            break
        items = [
            hash_(b"\x01" + a + b).digest() for a, b in zip(items[::2], items[1::2], strict=True)
        ]
        level += 1
        start >>= 1
        ids = zip(repeat(level, len(items)), range(start, start + len(items)), strict=True)
        nodes.update(zip(ids, items, strict=True))
    # Above the last level touched, the old and new sizes have the same bits: same frontier nodes.
    new_edge.update((lvl, h) for lvl, h in old_edge.items() if lvl > level)
    hashes = tuple(new_edge[lvl] for lvl in sorted(new_edge, reverse=True))
    return Frontier(new_size, hashes), nodes


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """Which stored nodes a proof (or root) needs and how they combine.

    ``elements[j]`` lists the perfect subtrees whose fold (right to left, with the node hash) is
    proof element ``j``; a single NodeId when the element is itself a perfect subtree.
    """

    elements: tuple[Element, ...]

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        """Every distinct NodeId the plan needs (level 0 = leaf hashes), to fetch in one query."""
        return tuple(dict.fromkeys(node for element in self.elements for node in element))


def inclusion_proof_plan(index: int, size: int) -> ProofPlan:
    """The plan of the RFC 6962 inclusion proof PATH(index, D[size])."""
    _check_size("leaf index", index)
    _check_size("tree size", size)
    if index >= size:
        raise MerkleError(f"leaf index {index} is outside a tree of size {size}")
    return ProofPlan(inclusion_plans([index], size)[index])


def inclusion_plans(positions: Sequence[int], size: int) -> dict[int, tuple[Element, ...]]:
    """The elements of the inclusion proof PATH(position, D[size]) of each of `positions` (sorted,
    distinct, each below `size`), from the leaf up.

    The recursion is walked once for all of them, each split visited once however many of the
    positions lie under it, so the elements that their paths share are planned once."""
    plans: dict[int, tuple[Element, ...]] = {}
    # (start, end, the positions under it as a slice of `positions`, the elements above it from
    # the root down, shared by every position below)
    work: list[tuple[int, int, int, int, tuple[Element, ...]]] = [(0, size, 0, len(positions), ())]
    while work:
        start, end, low, high, above = work.pop()
        if end - start == 1:
            plans[start] = above[::-1]
            continue
        k = _split(end - start)
        middle = bisect_left(positions, start + k, low, high)
        if low < middle:
            work.append((start, start + k, low, middle, (*above, perfect_parts(start + k, end))))
        if middle < high:
            level = k.bit_length() - 1
            work.append((start + k, end, middle, high, (*above, ((level, start >> level),))))
    return plans


def consistency_proof_plan(old_size: int, new_size: int) -> ProofPlan:
    """The plan of the RFC 6962 consistency proof PROOF(old_size, D[new_size])."""
    _check_size("old size", old_size)
    _check_size("new size", new_size)
    if old_size > new_size:
        raise MerkleError(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return ProofPlan(())
    elements: list[tuple[NodeId, ...]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            elements.append(perfect_parts(start + k, end))
            end = start + k
        else:
            level = k.bit_length() - 1
            elements.append(((level, start >> level),))
            start += k
            m -= k
            complete = False
    if not complete:
        elements.append(perfect_parts(start, end))
    elements.reverse()
    return ProofPlan(tuple(elements))


def root_plan(size: int) -> ProofPlan:
    """The plan of the root hash of a tree of ``size`` leaves: one element, the frontier's nodes.

    ``assemble(root_plan(n), hashes)[0]`` is the root (``SHA-256("")`` for ``n == 0``).
    """
    _check_size("tree size", size)
    return ProofPlan((perfect_parts(0, size),))


def assemble(plan: ProofPlan, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
    """The proof (or ``[root]`` for a root plan) from the node hashes the plan asked for."""
    out: list[bytes] = []
    for element in plan.elements:
        parts: list[bytes] = []
        for node in element:
            h = hashes.get(node)
            if h is None:
                raise MerkleError(f"the hash of node {node} (level, index) is missing")
            if not isinstance(h, bytes) or len(h) != _HASH_SIZE:
                raise MerkleError(f"the hash of node {node} is not a {_HASH_SIZE}-byte hash")
            parts.append(h)
        out.append(_fold(parts))
    return out
