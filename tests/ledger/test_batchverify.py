"""`InclusionChecker` answers exactly what `merkle.verify_inclusion` answers, proof after proof,
for valid proofs and for every kind of tampered one, whatever the order of the leaves."""

from __future__ import annotations

import hashlib
import random

import pytest

from ledger import InclusionChecker, merkle


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


def _tampered(rng: random.Random, leaf: bytes, index: int, path: list[bytes], n: int) -> tuple:
    kind = rng.randrange(6)
    if kind == 0 and path:  # one hash of the path changed
        at = rng.randrange(len(path))
        path = [*path[:at], hashlib.sha256(path[at]).digest(), *path[at + 1 :]]
    elif kind == 1:  # another leaf
        leaf = hashlib.sha256(leaf).digest()
    elif kind == 2:  # another index (in or out of the tree)
        index = rng.choice([index + 1, index - 1, n, -1])
    elif kind == 3 and path:  # one hash dropped
        path = path[:-1]
    elif kind == 4:  # one hash too many
        path = [*path, bytes(32)]
    else:  # a hash of the wrong length
        path = [*path, b"short"]
    return leaf, index, path


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100, 257])
@pytest.mark.parametrize("order", ["ascending", "shuffled"])
def test_the_checker_agrees_with_the_reference(n: int, order: str) -> None:
    rng = random.Random(n)
    leaves = _leaves(n)
    root = merkle.root(leaves)
    checker = InclusionChecker(n, root)
    indexes = list(range(n)) * 2
    if order == "shuffled":
        rng.shuffle(indexes)
    for index in indexes:
        path = merkle.inclusion_proof(index, leaves)
        assert checker.check(leaves[index], index, path)
        leaf, other, changed = _tampered(rng, leaves[index], index, path, n)
        want = merkle.verify_inclusion(leaf, other, n, changed, root)
        assert checker.check(leaf, other, changed) == want, (index, other)


def test_a_tampered_upper_hash_is_refused_after_its_neighbour_held() -> None:
    """The remembered nodes never vouch for a path whose upper hashes differ."""
    leaves = _leaves(64)
    checker = InclusionChecker(64, merkle.root(leaves))
    assert checker.check(leaves[10], 10, merkle.inclusion_proof(10, leaves))
    path = merkle.inclusion_proof(11, leaves)
    path[-1] = bytes(32)
    assert not checker.check(leaves[11], 11, path)
    assert checker.check(leaves[11], 11, merkle.inclusion_proof(11, leaves))


def test_another_root_or_malformed_input_is_false() -> None:
    leaves = _leaves(5)
    path = merkle.inclusion_proof(2, leaves)
    assert not InclusionChecker(5, bytes(32)).check(leaves[2], 2, path)
    checker = InclusionChecker(5, merkle.root(leaves))
    assert not checker.check(leaves[2], True, path)
    assert not checker.check(b"x", 2, path)
    assert not checker.check(leaves[2], 2, [*path[:-1], "not bytes"])  # type: ignore[list-item]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 37, 64, 70])
def test_the_batch_plans_are_the_one_by_one_plans(size: int) -> None:
    """The proofs of a batch are planned by one walk of the recursion: the same elements as
    `inclusion_proof_plan` gives each position (the ledger's batch proofs are compared with the
    reference against a real store in test_contract)."""
    from ledger._tree import inclusion_plans, inclusion_proof_plan

    for positions in (list(range(size)), list(range(0, size, 3)), [size - 1]):
        plans = inclusion_plans(positions, size)
        assert sorted(plans) == positions
        for position in positions:
            assert tuple(plans[position]) == inclusion_proof_plan(position, size).elements
