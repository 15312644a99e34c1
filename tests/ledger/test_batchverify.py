"""`InclusionChecker` answers exactly what `merkle.verify_inclusion` answers, proof after proof,
for valid proofs and for every kind of tampered one, whatever the order of the leaves."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest

from ledger import Envelope, InclusionChecker, InclusionProof, chain_hash, event_hashes, merkle


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


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100, 257])
def test_hex_paths_and_proof_documents_agree_with_the_reference(n: int) -> None:
    """`check_hex` and `check_document` (an event line's proof, hex as written) answer what
    `verify_inclusion` answers on the decoded path, for valid and tampered proofs."""
    rng = random.Random(n)
    leaves = _leaves(n)
    root = merkle.root(leaves)
    checker = InclusionChecker(n, root)
    indexes = list(range(n)) * 2
    rng.shuffle(indexes[n:])
    for index in indexes:
        path = merkle.inclusion_proof(index, leaves)
        document = InclusionProof(index, n, leaves[index], tuple(path)).document()
        assert checker.check_document(leaves[index], index, document)
        leaf, other, changed = _tampered(rng, leaves[index], index, path, n)
        want = merkle.verify_inclusion(leaf, other, n, changed, root)
        assert checker.check_hex(leaf, other, [h.hex() for h in changed]) == want, (index, other)


def test_a_proof_document_is_refused_for_any_misshapen_member() -> None:
    leaves = _leaves(9)
    checker = InclusionChecker(9, merkle.root(leaves))
    good = InclusionProof(4, 9, leaves[4], tuple(merkle.inclusion_proof(4, leaves))).document()
    assert checker.check_document(leaves[4], 4, good)
    changes: list[dict[str, object]] = [
        {"format": "ledger-inclusion-proof/v2"},
        {"leaf_index": 5},
        {"leaf_index": True},
        {"tree_size": 10},
        {"leaf_hash": leaves[4].hex().upper()},
        {"hashes": [h.upper() for h in good["hashes"]]},
        {"hashes": [*good["hashes"], "00" * 32]},
        {"hashes": good["hashes"][:-1]},
        {"hashes": ["0" + h[:63] if i == 0 else h for i, h in enumerate(good["hashes"])]},
        {"extra": 1},
    ]
    for change in changes:
        assert not checker.check_document(leaves[4], 4, {**good, **change}), change
    assert not checker.check_document(
        leaves[4], 4, {k: v for k, v in good.items() if k != "format"}
    )
    assert not checker.check_document(leaves[4], 4, [good])
    assert checker.check_document(leaves[4], 4, good)


def test_event_hashes_are_each_envelopes_leaf_and_chain_hash() -> None:
    rng = random.Random(7)
    envelopes = []
    prev = bytes(32)
    for position in range(20):
        attachments = {} if position % 3 else {"request_body": rng.randbytes(32), "b": bytes(32)}
        payload = f'{{"n":{position}}}'.encode()
        shell = Envelope(
            position,
            uuid.UUID(int=rng.getrandbits(128)),
            "DecisionMade" if position % 2 else "Späte",
            f"decisions/tenant-{position % 4}",
            position + 1,
            rng.randrange(-(2**40), 2**50),
            payload,
            hashlib.sha256(payload).digest(),
            attachments,
            prev,
            b"",
            b"",
        )
        data = shell.leaf_data()
        envelopes.append((shell, merkle.leaf_hash(data), chain_hash(prev, data)))
        prev = chain_hash(prev, data)
    leaves, chains = event_hashes(
        [e.position for e, _, _ in envelopes],
        [e.event_id.bytes for e, _, _ in envelopes],
        [e.recorded_at_us for e, _, _ in envelopes],
        [e.stream_version for e, _, _ in envelopes],
        [e.payload_digest for e, _, _ in envelopes],
        [e.prev_hash for e, _, _ in envelopes],
        [e.type.encode() for e, _, _ in envelopes],
        [e.stream_id.encode() for e, _, _ in envelopes],
        [e.attachment_digests for e, _, _ in envelopes],
    )
    assert leaves == [leaf for _, leaf, _ in envelopes]
    assert chains == [chain for _, _, chain in envelopes]


@pytest.mark.parametrize("n", [1, 3, 9, 100])
def test_proof_documents_checked_together_hold_exactly_when_each_holds(n: int) -> None:
    rng = random.Random(n)
    leaves = _leaves(n)
    root = merkle.root(leaves)
    documents = [
        InclusionProof(i, n, leaves[i], tuple(merkle.inclusion_proof(i, leaves))).document()
        for i in range(n)
    ]
    assert InclusionChecker(n, root).check_documents(leaves, list(range(n)), documents)
    for _ in range(20):
        at = rng.randrange(n)
        leaf, index, path = _tampered(rng, leaves[at], at, merkle.inclusion_proof(at, leaves), n)
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < n:
            changed = {**documents[at], "leaf_index": index, "hashes": [h.hex() for h in path]}
        else:
            changed = {**documents[at], "leaf_index": index}
        one = InclusionChecker(n, root).check_document(leaf, at, changed)
        batch = [*documents[:at], changed, *documents[at + 1 :]]
        chosen = [*leaves[:at], leaf, *leaves[at + 1 :]]
        together = InclusionChecker(n, root).check_documents(chosen, list(range(n)), batch)
        assert together == one
