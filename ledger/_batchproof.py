"""Inclusion proofs of many events against one tree size, from a few range reads.

One proof per event in two queries each (`Ledger.inclusion_proof`) is what an auditor wants for
one decision; a bundle needs one for each of tens of thousands of events. Their paths share most
of their nodes: the RFC 6962 recursion (`ledger._tree.inclusion_proof_plan`) is walked once for
the whole batch, each split visited once however many of the positions lie under it, so every
shared path element is planned (and, for a right-edge subtree, folded) once. Each level's nodes
are read with one range query (`level = L AND idx BETWEEN lo AND hi`, leaves from the event rows).
The proofs are exactly `inclusion_proof_plan` + `assemble`'s (tests compare them)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._errors import EventNotFoundError, MerkleError
from ledger._proofs import InclusionProof
from ledger._tables import events, merkle_nodes
from ledger._tree import NodeId, ProofPlan, assemble, perfect_parts

__all__ = ["read_inclusion_proofs"]

Element = tuple[NodeId, ...]
"""One proof element: the perfect subtrees whose fold it is (one when it is itself perfect)."""


def _plans(positions: list[int], size: int) -> dict[int, list[Element]]:
    """Every distinct position's proof elements, from its leaf up, the recursion walked once for
    all of `positions` (sorted, each below `size`)."""
    plans: dict[int, list[Element]] = {}
    # (start, end, the positions under it as a slice of `positions`, the elements above it from
    # the root down, shared by every position below)
    work: list[tuple[int, int, int, int, tuple[Element, ...]]] = [(0, size, 0, len(positions), ())]
    while work:
        start, end, low, high, above = work.pop()
        if end - start == 1:
            plans[start] = list(reversed(above))
            continue
        k = 1 << ((end - start - 1).bit_length() - 1)
        middle = bisect_left(positions, start + k, low, high)
        if low < middle:
            work.append((start, start + k, low, middle, (*above, perfect_parts(start + k, end))))
        if middle < high:
            level = k.bit_length() - 1
            work.append((start + k, end, middle, high, (*above, ((level, start >> level),))))
    return plans


_GAP = 64
"""Wanted nodes of a level closer than this are read by one range query (the few between them
read for nothing); farther apart, by separate ones (the right-edge nodes of a proof lie far
from the batch's leaves)."""


def _ranges(wanted: dict[int, set[int]]) -> list[tuple[int, set[int], int, int]]:
    """(level, its wanted indexes, low, high) of each range query."""
    ranges = []
    for level, indexes in sorted(wanted.items()):
        ordered = sorted(indexes)
        low = previous = ordered[0]
        for index in ordered[1:]:
            if index - previous > _GAP:
                ranges.append((level, indexes, low, previous))
                low = index
            previous = index
        ranges.append((level, indexes, low, previous))
    return ranges


async def read_inclusion_proofs(
    conn: AsyncConnection, positions: Sequence[int], tree_size: int
) -> list[InclusionProof]:
    """The inclusion proofs of the events at `positions` in the tree of `tree_size` leaves, in
    the order given (every position must be below `tree_size`, and the tree sequenced that far)."""
    if not positions:
        return []
    outside = [p for p in positions if not 0 <= p < tree_size]
    if outside:
        raise EventNotFoundError(
            f"position {outside[0]} is not in the tree of size {tree_size} (sequence first)"
        )
    plans = _plans(sorted(set(positions)), tree_size)
    elements = {element for plan in plans.values() for element in plan}
    wanted: dict[int, set[int]] = {0: set(positions)}
    for element in elements:
        for level, index in element:
            wanted.setdefault(level, set()).add(index)
    hashes: dict[NodeId, bytes] = {}
    for level, indexes, low, high in _ranges(wanted):
        if level == 0:
            query = select(events.c.position, events.c.leaf_hash).where(
                events.c.position.between(low, high)
            )
        else:
            query = select(merkle_nodes.c.idx, merkle_nodes.c.hash).where(
                merkle_nodes.c.level == level, merkle_nodes.c.idx.between(low, high)
            )
        for index, digest in await conn.execute(query):
            if index in indexes:
                hashes[level, index] = bytes(digest)
    # Each distinct element folded once (a right-edge element is shared by every proof below).
    element_list = list(elements)
    folded = dict(zip(element_list, assemble(ProofPlan(tuple(element_list)), hashes), strict=True))
    proofs = []
    for position in positions:
        leaf = hashes.get((0, position))
        if leaf is None:
            raise MerkleError(f"the leaf hash of position {position} is missing")
        path = tuple(folded[element] for element in plans[position])
        proofs.append(InclusionProof(position, tree_size, leaf, path))
    return proofs
