"""The ledger: an append-only, tamper-evident event store (docs/architecture.md, "The ledger").

It knows nothing of routing. `ledger.merkle` is the public RFC 6962 reference module; the names
below are the pure core (tree algebra, signed checkpoints, proof documents) and the store.

The database side (`Ledger`, `open_ledger`, `open_store`, `Store`, ...) loads on first use
(PEP 562): SQLAlchemy costs about a second of CPU to import, and a verify worker process, or a
program that only checks signed notes and proofs, never needs it.
"""

import importlib
from typing import TYPE_CHECKING

from ledger._batchverify import CheckedLines, InclusionChecker, check_event_lines, event_hashes
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
from ledger._note import NoteSignature, parse_note
from ledger._proofs import (
    ConsistencyProof,
    InclusionProof,
    verify_consistency_document,
    verify_inclusion_document,
)
from ledger._rotation import KEY_ROTATED, KEY_STREAM
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
from ledger._verify import Problem, VerifyReport

if TYPE_CHECKING:
    from ledger._batches import EVENT_BATCH_SCHEMA
    from ledger._ledger import DEFAULT_HOME, EventRecord, Ledger, open_ledger, open_store
    from ledger._proofread import InclusionProofBundle
    from ledger._store import Store
    from ledger._treestore import SignedCheckpoint

_DATABASE_SIDE = {
    "DEFAULT_HOME": "ledger._ledger",
    "EVENT_BATCH_SCHEMA": "ledger._batches",
    "EventRecord": "ledger._ledger",
    "InclusionProofBundle": "ledger._proofread",
    "Ledger": "ledger._ledger",
    "SignedCheckpoint": "ledger._treestore",
    "Store": "ledger._store",
    "open_ledger": "ledger._ledger",
    "open_store": "ledger._ledger",
}


def __getattr__(name: str) -> object:
    """A name of the database side, imported on first use."""
    if name not in _DATABASE_SIDE:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(_DATABASE_SIDE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_HOME",
    "EVENT_BATCH_SCHEMA",
    "GENESIS_HASH",
    "KEY_FILE_NAME",
    "KEY_ROTATED",
    "KEY_STREAM",
    "CheckedLines",
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
    "check_event_lines",
    "consistency_proof_plan",
    "cosignature_message",
    "event_hashes",
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
