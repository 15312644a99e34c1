"""Proof documents: JSON round trips, precise parse errors, and offline verification against signed
checkpoints with nothing but the log's verifier key."""

from __future__ import annotations

import json
import re

import pytest

from ledger import (
    Checkpoint,
    ConsistencyProof,
    ConsistencyProofError,
    Frontier,
    InclusionProof,
    InclusionProofError,
    OriginMismatchError,
    ProofFormatError,
    ProofSizeError,
    SignatureError,
    SigningKey,
    UnknownKeyError,
    append_leaves,
    assemble,
    consistency_proof_plan,
    inclusion_proof_plan,
    merkle,
    sign_checkpoint,
    verify_consistency_document,
    verify_inclusion_document,
)

ORIGIN = "audit.example/ledger"
KEY = SigningKey.from_private_bytes(ORIGIN, bytes(range(32)))
LEAVES = [merkle.leaf_hash(f"event {i}".encode()) for i in range(13)]


def _checkpoint(size: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root(LEAVES[:size])), KEY)


def _inclusion(index: int, size: int) -> InclusionProof:
    _, nodes = append_leaves(Frontier.empty(), LEAVES[:size])
    nodes.update(((0, i), h) for i, h in enumerate(LEAVES[:size]))
    hashes = assemble(inclusion_proof_plan(index, size), nodes)
    return InclusionProof(index, size, LEAVES[index], tuple(hashes))


def _consistency(old: int, new: int) -> ConsistencyProof:
    _, nodes = append_leaves(Frontier.empty(), LEAVES[:new])
    nodes.update(((0, i), h) for i, h in enumerate(LEAVES[:new]))
    return ConsistencyProof(old, new, tuple(assemble(consistency_proof_plan(old, new), nodes)))


def test_inclusion_document_json_is_stable_and_round_trips() -> None:
    proof = _inclusion(5, 13)
    document = json.loads(proof.to_json())
    assert document == {
        "format": "ledger-inclusion-proof/v1",
        "leaf_index": 5,
        "tree_size": 13,
        "leaf_hash": LEAVES[5].hex(),
        "hashes": [h.hex() for h in merkle.inclusion_proof(5, LEAVES)],
    }
    assert InclusionProof.from_json(proof.to_json()) == proof
    assert InclusionProof.from_json(proof.to_json(indent=2).encode()) == proof
    assert proof.to_json() == json.dumps(document, sort_keys=True, separators=(",", ":"))


def test_consistency_document_round_trips() -> None:
    proof = _consistency(6, 13)
    assert json.loads(proof.to_json())["hashes"] == [
        h.hex() for h in merkle.consistency_proof(6, LEAVES)
    ]
    assert ConsistencyProof.from_json(proof.to_json()) == proof


def test_every_inclusion_document_verifies_offline() -> None:
    for size in range(1, 14):
        note = _checkpoint(size)
        for index in range(size):
            verify_inclusion_document(_inclusion(index, size), note, KEY.verifier_key())


def test_every_consistency_document_verifies_offline() -> None:
    for new in range(0, 14):
        for old in range(0, new + 1):
            verify_consistency_document(
                _consistency(old, new), _checkpoint(old), _checkpoint(new), KEY.verifier_key()
            )


def test_inclusion_failures_are_precise() -> None:
    proof, note, vkey = _inclusion(5, 13), _checkpoint(13), KEY.verifier_key()
    with pytest.raises(ProofSizeError, match="tree size 13; the checkpoint signs size 12"):
        verify_inclusion_document(proof, _checkpoint(12), vkey)
    tampered = InclusionProof(5, 13, LEAVES[5], (proof.hashes[0][::-1], *proof.hashes[1:]))
    with pytest.raises(InclusionProofError, match="inclusion path of leaf 5"):
        verify_inclusion_document(tampered, note, vkey)
    with pytest.raises(InclusionProofError):
        verify_inclusion_document(InclusionProof(5, 13, LEAVES[6], proof.hashes), note, vkey)
    with pytest.raises(InclusionProofError):
        verify_inclusion_document(InclusionProof(4, 13, LEAVES[5], proof.hashes), note, vkey)
    forged = note.replace("\n13\n", "\n14\n")
    with pytest.raises(SignatureError):
        verify_inclusion_document(InclusionProof(5, 14, LEAVES[5], proof.hashes), forged, vkey)
    stranger = SigningKey.generate(ORIGIN).verifier_key()
    with pytest.raises(UnknownKeyError):
        verify_inclusion_document(proof, note, stranger)
    with pytest.raises(OriginMismatchError):
        verify_inclusion_document(proof, note, vkey, origin="other.example/log")


def test_consistency_failures_are_precise() -> None:
    proof, vkey = _consistency(6, 13), KEY.verifier_key()
    old, new = _checkpoint(6), _checkpoint(13)
    with pytest.raises(ProofSizeError, match="from tree size 6 to 13"):
        verify_consistency_document(proof, new, old, vkey)
    with pytest.raises(ProofSizeError):
        verify_consistency_document(proof, _checkpoint(7), new, vkey)
    tampered = ConsistencyProof(6, 13, (*proof.hashes[:-1], proof.hashes[-1][::-1]))
    with pytest.raises(ConsistencyProofError, match="does not connect the root"):
        verify_consistency_document(tampered, old, new, vkey)
    # A log that rewrote history: its size-13 checkpoint is signed, but not an extension of 6.
    rewritten = [*LEAVES[:3], merkle.leaf_hash(b"rewritten"), *LEAVES[4:]]
    fork = sign_checkpoint(Checkpoint(ORIGIN, 13, merkle.root(rewritten)), KEY)
    with pytest.raises(ConsistencyProofError):
        verify_consistency_document(proof, old, fork, vkey)
    other = SigningKey.generate("other.example/log")
    foreign = sign_checkpoint(Checkpoint(other.name, 13, merkle.root(LEAVES)), other)
    with pytest.raises(UnknownKeyError):
        verify_consistency_document(proof, old, foreign, vkey)


H = "ab" * 32
GOOD = {
    "format": "ledger-inclusion-proof/v1",
    "leaf_index": 0,
    "tree_size": 2,
    "leaf_hash": H,
    "hashes": [H],
}


def _doc(**changes: object) -> str:
    document = {**GOOD, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not None})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "/: a proof document is a JSON object"),
        (_doc(format="x"), "/format: expected 'ledger-inclusion-proof/v1'"),
        (_doc(format="ledger-consistency-proof/v1"), "/format"),
        (_doc(leaf_index=None), "/leaf_index: missing"),
        (_doc(extra=1), "/extra: unknown member"),
        (_doc(leaf_index=True), "/leaf_index: expected an integer"),
        (_doc(tree_size=-2), "/tree_size: expected an integer"),
        (_doc(tree_size=2**64), "/tree_size: expected an integer"),
        (_doc(leaf_index=2), "/leaf_index: 2 is outside a tree of size 2"),
        (_doc(leaf_hash=H.upper()), "/leaf_hash: expected 64 lowercase hex"),
        (_doc(hashes=[H, "abc"]), "/hashes/1: expected 64 lowercase hex"),
        (_doc(hashes=H), "/hashes: expected a list"),
    ],
)
def test_malformed_inclusion_documents_point_at_the_problem(text: str, message: str) -> None:
    assert InclusionProof.from_json(_doc()) == InclusionProof(
        0, 2, bytes.fromhex(H), (bytes.fromhex(H),)
    )
    with pytest.raises(ProofFormatError, match=re.escape(message)):
        InclusionProof.from_json(text)


def test_duplicate_members_and_bad_constructor_arguments_are_rejected() -> None:
    duplicated = _doc().replace('"tree_size": 2', '"tree_size": 2, "tree_size": 9')
    with pytest.raises(ProofFormatError, match="/tree_size: member appears twice"):
        InclusionProof.from_json(duplicated)
    with pytest.raises(ProofFormatError, match="/leaf_hash: expected a 32-byte hash"):
        InclusionProof(0, 1, b"short", ())
    with pytest.raises(ProofFormatError, match="/hashes/1: expected a 32-byte hash"):
        InclusionProof(0, 2, bytes(32), (bytes(32), "ab"))  # type: ignore[arg-type]
    with pytest.raises(ProofFormatError, match="/old_size: 3 is larger than new_size 2"):
        ConsistencyProof(3, 2, ())
    assert ConsistencyProof(1, 2, [bytes(32)]).hashes == (bytes(32),)  # type: ignore[arg-type]


def test_malformed_consistency_documents_point_at_the_problem() -> None:
    with pytest.raises(ProofFormatError, match="/old_size: 7 is larger than new_size 6"):
        ConsistencyProof.from_json(
            '{"format": "ledger-consistency-proof/v1", "old_size": 7, "new_size": 6, "hashes": []}'
        )
    with pytest.raises(ProofFormatError, match="at most 128"):
        ConsistencyProof.from_json(
            json.dumps(
                {
                    "format": "ledger-consistency-proof/v1",
                    "old_size": 1,
                    "new_size": 6,
                    "hashes": [H] * 129,
                }
            )
        )
