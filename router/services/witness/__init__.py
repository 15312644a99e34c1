"""Witnesses: independent parties that cosign a log's checkpoints (docs/witness.md).

The witness side is `Witness` (c2sp.org/tlog-witness v1 over its own key and SQLite state);
the log side submits each new checkpoint with its consistency proof to the configured witnesses
and stores the cosignatures they answer with.
"""

from router.services.witness._errors import (
    WitnessBadRequestError,
    WitnessConflictError,
    WitnessError,
    WitnessForbiddenError,
    WitnessInconsistentError,
    WitnessUnknownLogError,
)
from router.services.witness._protocol import (
    MAX_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    parse_conflict_size,
)
from router.services.witness._submit import (
    CosignatureStore,
    Outcome,
    WitnessEndpoint,
    WitnessStatus,
    WitnessSubmitter,
    cosign_now,
    parse_witnesses,
)
from router.services.witness._witness import CosignedHead, Refusal, Witness

__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "CosignatureStore",
    "CosignedHead",
    "Outcome",
    "Refusal",
    "Witness",
    "WitnessBadRequestError",
    "WitnessConflictError",
    "WitnessEndpoint",
    "WitnessError",
    "WitnessForbiddenError",
    "WitnessInconsistentError",
    "WitnessStatus",
    "WitnessSubmitter",
    "WitnessUnknownLogError",
    "cosign_now",
    "parse_conflict_size",
    "parse_witnesses",
]
