"""The store-backed tree algebra (`ledger._tree`) agrees with the reference `ledger.merkle`."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import (
    Frontier,
    MerkleError,
    NodeId,
    append_leaves,
    assemble,
    consistency_proof_plan,
    inclusion_proof_plan,
    merkle,
    root_plan,
)


def _leaves(n: int, seed: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(seed.to_bytes(8, "big") + i.to_bytes(8, "big")) for i in range(n)]


def _perfect_nodes_by_definition(leaves: list[bytes]) -> dict[NodeId, bytes]:
    """Every perfect subtree of level >= 1, each computed by the reference module on its own."""
    nodes: dict[NodeId, bytes] = {}
    level = 1
    while 1 << level <= len(leaves):
        width = 1 << level
        for index in range(len(leaves) // width):
            nodes[level, index] = merkle.root(leaves[index * width : (index + 1) * width])
        level += 1
    return nodes


def _store(leaves: list[bytes]) -> dict[NodeId, bytes]:
    """What a store holds: leaf hashes at level 0 plus the nodes `append_leaves` emitted."""
    _, nodes = append_leaves(Frontier.empty(), leaves)
    nodes.update(((0, i), h) for i, h in enumerate(leaves))
    return nodes


@st.composite
def _split_points(draw: st.DrawFn, n: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=12)))
    return [0, *cuts, n]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_append_in_any_batches_yields_the_reference_nodes_and_root(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 600), label="size")
    leaves = _leaves(n, data.draw(st.integers(0, 2**16), label="seed"))
    points = data.draw(_split_points(n), label="batches")
    frontier, emitted = Frontier.empty(), {}
    for a, b in itertools.pairwise(points):
        frontier, nodes = append_leaves(frontier, leaves[a:b])
        assert not set(nodes) & set(emitted), "a perfect node is emitted exactly once"
        emitted.update(nodes)
        assert frontier.size == b
        assert frontier.root() == merkle.root(leaves[:b])
    assert emitted == _perfect_nodes_by_definition(leaves)
    assert frontier.root() == merkle.root(leaves)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_inclusion_plans_assemble_the_reference_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 3000), label="size")
    leaves = _leaves(size)
    store = _store(leaves)
    for _ in range(3):
        index = data.draw(st.integers(0, size - 1), label="index")
        plan = inclusion_proof_plan(index, size)
        assert all(node in store for node in plan.nodes), "plans ask only for stored nodes"
        assert assemble(plan, store) == merkle.inclusion_proof(index, leaves)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_consistency_plans_assemble_the_reference_proofs(data: st.DataObject) -> None:
    new = data.draw(st.integers(0, 3000), label="new size")
    leaves = _leaves(new)
    store = _store(leaves)
    for _ in range(3):
        old = data.draw(st.integers(0, new), label="old size")
        plan = consistency_proof_plan(old, new)
        assert all(node in store for node in plan.nodes)
        assert assemble(plan, store) == merkle.consistency_proof(old, leaves)


def test_every_proof_of_small_trees_matches_the_reference() -> None:
    for size in range(0, 70):
        leaves = _leaves(size, seed=size)
        store = _store(leaves)
        assert assemble(root_plan(size), store) == [merkle.root(leaves)]
        for index in range(size):
            assert assemble(inclusion_proof_plan(index, size), store) == merkle.inclusion_proof(
                index, leaves
            )
        for old in range(size + 1):
            assert assemble(consistency_proof_plan(old, size), store) == merkle.consistency_proof(
                old, leaves
            )


def _assert_perfect_and_inside(nodes: tuple[NodeId, ...], size: int) -> None:
    for level, index in nodes:
        assert level >= 0
        assert index >= 0
        assert (index + 1) << level <= size, f"node {(level, index)} is not complete in {size}"


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 2**63), st.data())
def test_plans_need_logarithmically_many_nodes(size: int, data: st.DataObject) -> None:
    bound = 2 * math.log2(size) + 2
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old size")
    for plan in (inclusion_proof_plan(index, size), consistency_proof_plan(old, size)):
        assert len(plan.nodes) <= bound
        _assert_perfect_and_inside(plan.nodes, size)
    assert len(root_plan(size).nodes) == size.bit_count() <= math.log2(size) + 1
    _assert_perfect_and_inside(root_plan(size).nodes, size)


def test_ten_million_events_need_few_reads() -> None:
    size = 10_000_000
    worst = max(len(inclusion_proof_plan(i, size).nodes) for i in range(size - 1000, size))
    assert worst <= 2 * math.log2(size) + 2
    # Leaf 0: 23 perfect left-subtree siblings, plus the right half [2^23, size) in perfect parts.
    assert len(inclusion_proof_plan(0, size).nodes) == 23 + (size - 2**23).bit_count()


def test_frontier_round_trips_through_stored_nodes() -> None:
    leaves = _leaves(1234)
    store = _store(leaves)
    frontier, _ = append_leaves(Frontier.empty(), leaves)
    assert frontier.node_ids() == root_plan(1234).nodes
    assert Frontier.from_nodes(1234, store) == frontier
    assert Frontier.empty().root() == merkle.root([])
    assert assemble(root_plan(0), {}) == [merkle.root([])]
    with pytest.raises(MerkleError, match="needs the hashes of nodes"):
        Frontier.from_nodes(1235, store)


def test_bad_input_is_a_merkle_error() -> None:
    with pytest.raises(MerkleError, match="outside a tree of size 5"):
        inclusion_proof_plan(5, 5)
    with pytest.raises(MerkleError, match="larger than new size"):
        consistency_proof_plan(6, 5)
    with pytest.raises(MerkleError, match="non-negative integer"):
        root_plan(-1)
    with pytest.raises(MerkleError, match="non-negative integer"):
        inclusion_proof_plan(True, 5)
    with pytest.raises(MerkleError, match=r"node \(2, 0\) .* is missing"):
        assemble(inclusion_proof_plan(4, 5), {})
    with pytest.raises(MerkleError, match="not a 32-byte hash"):
        assemble(root_plan(1), {(0, 0): b"short"})
    with pytest.raises(MerkleError, match="leaf 3: not a 32-byte hash"):
        append_leaves(Frontier.empty(), [*_leaves(3), b"x"])
    with pytest.raises(MerkleError, match="has 2 subtree hashes, got 1"):
        Frontier(3, (bytes(32),))
    with pytest.raises(MerkleError, match="frontier hash 0 is not a 32-byte hash"):
        Frontier(1, (b"",))
