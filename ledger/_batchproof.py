"""Inclusion proofs of many events against one tree size, from a few range reads.

One proof per event in two queries each (`Ledger.inclusion_proof`) is what an auditor wants for
one decision; a bundle needs one for each of tens of thousands of events. Their paths share most
of their nodes, so here the plans of a batch of positions are merged, each level's nodes are read
with one range query (`level = L AND idx BETWEEN lo AND hi`, leaves from the event rows), and each
proof is assembled from that one map (`ledger._tree`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._errors import EventNotFoundError, MerkleError
from ledger._proofs import InclusionProof
from ledger._tables import events, merkle_nodes
from ledger._tree import NodeId, assemble, inclusion_proof_plan

__all__ = ["read_inclusion_proofs"]


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
    plans = [inclusion_proof_plan(p, tree_size) for p in positions]
    wanted: dict[int, set[int]] = {0: set(positions)}
    for plan in plans:
        for level, index in plan.nodes:
            wanted.setdefault(level, set()).add(index)
    hashes: dict[NodeId, bytes] = {}
    for level, indexes in sorted(wanted.items()):
        low, high = min(indexes), max(indexes)
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
    proofs = []
    for position, plan in zip(positions, plans, strict=True):
        leaf = hashes.get((0, position))
        if leaf is None:
            raise MerkleError(f"the leaf hash of position {position} is missing")
        proofs.append(InclusionProof(position, tree_size, leaf, tuple(assemble(plan, hashes))))
    return proofs
