"""The ledger: an append-only, tamper-evident event store (docs/architecture.md, "The ledger").

It knows nothing of routing. `ledger.merkle` is the public RFC 6962 reference module; the names
below are the pure core (tree algebra, signed checkpoints, proof documents) and the store.
"""

from ledger._batches import EVENT_BATCH_SCHEMA
from ledger._batchverify import InclusionChecker
from ledger._checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger._committer import uuid7
from ledger._cosignature import (
    CosignatureCheck,
    CosignerKey,
    CosignerVerifier,
    check_cosignatures,
    cosignature_message,
    parse_cosigner_key,
    parse_cosigner_secret,
    signature_line,
)
from ledger._errors import (
    CheckpointBodyError,
    CheckpointError,
    CheckpointFormatError,
    ConsistencyProofError,
    EventNotFoundError,
    ImmutableViolationError,
    InclusionProofError,
    InvalidEventError,
    KeyFileError,
    LedgerError,
    MerkleError,
    NotMigratedError,
    NotSequencedError,
    OriginMismatchError,
    ProofError,
    ProofFormatError,
    ProofSizeError,
    SignatureError,
    SigningKeyError,
    StoreIntegrityError,
    StoreUnavailableError,
    StreamVersionConflictError,
    UnknownKeyError,
    VerifierKeyError,
)
from ledger._format import GENESIS_HASH, Envelope, NewEvent, canonical_json, chain_hash
from ledger._keyfile import KEY_FILE_NAME
from ledger._keys import SigningKey, VerifierKey, parse_signer_key, parse_verifier_key
from ledger._ledger import (
    DEFAULT_HOME,
    EventRecord,
    InclusionProofBundle,
    Ledger,
    open_ledger,
    open_store,
)
from ledger._note import NoteSignature, parse_note
from ledger._proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_document,
    verify_inclusion_document,
)
from ledger._rotation import KEY_ROTATED, KEY_STREAM
from ledger._store import Store
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
from ledger._treestore import SignedCheckpoint
from ledger._verify import Problem, VerifyReport

__all__ = [
    "DEFAULT_HOME",
    "EVENT_BATCH_SCHEMA",
    "GENESIS_HASH",
    "KEY_FILE_NAME",
    "KEY_ROTATED",
    "KEY_STREAM",
    "Checkpoint",
    "CheckpointBodyError",
    "CheckpointError",
    "CheckpointFormatError",
    "ConsistencyProof",
    "ConsistencyProofError",
    "CosignatureCheck",
    "CosignerKey",
    "CosignerVerifier",
    "Envelope",
    "EventNotFoundError",
    "EventRecord",
    "Frontier",
    "ImmutableViolationError",
    "InclusionChecker",
    "InclusionProof",
    "InclusionProofBundle",
    "InclusionProofError",
    "InvalidEventError",
    "KeyFileError",
    "Ledger",
    "LedgerError",
    "MerkleError",
    "NewEvent",
    "NodeId",
    "NotMigratedError",
    "NotSequencedError",
    "NoteSignature",
    "OriginMismatchError",
    "Problem",
    "ProofError",
    "ProofFormatError",
    "ProofPlan",
    "ProofSizeError",
    "SignatureError",
    "SignedCheckpoint",
    "SigningKey",
    "SigningKeyError",
    "Store",
    "StoreIntegrityError",
    "StoreUnavailableError",
    "StreamVersionConflictError",
    "UnknownKeyError",
    "VerifierKey",
    "VerifierKeyError",
    "VerifyReport",
    "append_leaves",
    "assemble",
    "canonical_json",
    "chain_hash",
    "check_cosignatures",
    "consistency_proof_plan",
    "cosignature_message",
    "inclusion_proof_plan",
    "open_checkpoint",
    "open_ledger",
    "open_store",
    "parse_cosigner_key",
    "parse_cosigner_secret",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "root_plan",
    "sign_checkpoint",
    "signature_line",
    "uuid7",
    "verify_consistency_document",
    "verify_inclusion_document",
]
