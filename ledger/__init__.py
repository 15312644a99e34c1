"""The ledger: an append-only, tamper-evident event store (DESIGN §5).

It knows nothing of routing. `ledger.merkle` is the public RFC 6962 reference module; the names
below are the pure core (tree algebra, signed checkpoints, proof documents) and the store.
"""

from ledger._checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger._errors import (
    CheckpointError,
    CheckpointFormatError,
    ConsistencyProofError,
    InclusionProofError,
    LedgerError,
    MerkleError,
    OriginMismatchError,
    ProofError,
    ProofFormatError,
    ProofSizeError,
    SignatureError,
    UnknownKeyError,
    VerifierKeyError,
)
from ledger._keys import SigningKey, VerifierKey, parse_signer_key, parse_verifier_key
from ledger._proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_document,
    verify_inclusion_document,
)
from ledger._tree import (
    Frontier,
    NodeId,
    ProofPlan,
    append_leaves,
    assemble,
    consistency_proof_plan,
    inclusion_proof_plan,
    root_plan,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointFormatError",
    "ConsistencyProof",
    "ConsistencyProofError",
    "Frontier",
    "InclusionProof",
    "InclusionProofError",
    "LedgerError",
    "MerkleError",
    "NodeId",
    "OriginMismatchError",
    "ProofError",
    "ProofFormatError",
    "ProofPlan",
    "ProofSizeError",
    "SignatureError",
    "SigningKey",
    "UnknownKeyError",
    "VerifierKey",
    "VerifierKeyError",
    "append_leaves",
    "assemble",
    "consistency_proof_plan",
    "inclusion_proof_plan",
    "open_checkpoint",
    "parse_signer_key",
    "parse_verifier_key",
    "root_plan",
    "sign_checkpoint",
    "verify_consistency_document",
    "verify_inclusion_document",
]
