"""The one error root of the ledger package. Driver errors (sqlite3, asyncpg, SQLAlchemy) are
translated into these in exactly one place, the store, so callers never see a driver exception."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by `ledger`."""


class MerkleError(LedgerError):
    """Invalid arguments to the Merkle tree algebra: an index or size outside the tree, a size that
    shrinks, or a node hash missing from what a plan asked the store for."""


class CheckpointError(LedgerError):
    """A signed checkpoint (a C2SP signed note) could not be opened."""


class CheckpointFormatError(CheckpointError):
    """The note or its checkpoint body does not follow C2SP signed-note / tlog-checkpoint syntax."""


class CheckpointBodyError(CheckpointFormatError):
    """The note's signature verifies, but its text is not a tlog-checkpoint body (the message
    names the line at fault)."""


class VerifierKeyError(CheckpointError):
    """A verifier key (`<name>+<hex id>+<base64 key>`) or signer key string is malformed."""


class UnknownKeyError(CheckpointError):
    """The note carries no signature by the expected key (name and key ID)."""


class SignatureError(CheckpointError):
    """A signature line names the expected key, but the signature does not verify."""


class OriginMismatchError(CheckpointError):
    """The checkpoint's origin line is not the origin the verifier expects."""


class ProofError(LedgerError):
    """A proof document does not check out against its checkpoint(s)."""


class ProofFormatError(ProofError):
    """A proof document is malformed (the message holds a JSON pointer to the offending value)."""


class ProofSizeError(ProofError):
    """A proof's tree size(s) do not match the size(s) in the signed checkpoint(s)."""


class InclusionProofError(ProofError):
    """An inclusion path does not lead from the leaf hash to the checkpoint's root."""


class ConsistencyProofError(ProofError):
    """A consistency path does not connect the old checkpoint's root to the new one's."""


class InvalidEventError(LedgerError):
    """An event handed to `append` cannot be recorded (payload not JSON-able, bad name, …)."""


class StreamVersionConflictError(LedgerError):
    """Optimistic concurrency failed: the stream is not at the version the caller expected."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, expected {expected}"
            " (another writer appended first)"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventNotFoundError(LedgerError):
    """No event with that id or position."""


class NotMigratedError(LedgerError):
    """The database holds no ledger (yet): `unhardcoded db upgrade` creates it."""


class NotSequencedError(LedgerError):
    """The event is not yet covered by a signed checkpoint (run `sequence()` first)."""


class StoreUnavailableError(LedgerError):
    """The database could not be reached, is locked, or failed an operation."""


class ImmutableViolationError(LedgerError):
    """The database refused to change or delete a recorded row (the immutability guards)."""


class StoreIntegrityError(LedgerError):
    """The store holds data that contradicts itself (a bad key file, a constraint violation, …)."""


class SigningKeyError(LedgerError):
    """The home folder holds no key, or another key, than the one this ledger signs with (a
    mistaken home folder?), and no rotation to it is recorded."""


class KeyFileError(LedgerError):
    """The signing key file is missing, malformed or readable by others."""


def check_positive(name: str, value: object, what: str = "") -> None:
    """Raise `InvalidEventError` naming `name` unless `value` is a positive int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidEventError(f"{name} must be a positive int{what}, got {value!r}")
