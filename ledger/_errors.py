"""The one error root of the ledger package. Driver errors (sqlite3, asyncpg, SQLAlchemy) are
translated into these in exactly one place, the store, so callers never see a driver exception."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by `ledger`."""


class InvalidEvent(LedgerError):
    """An event handed to `append` cannot be recorded (payload not JSON-able, bad name, …)."""


class StreamVersionConflict(LedgerError):
    """Optimistic concurrency failed: the stream is not at the version the caller expected."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, expected {expected}"
            " (another writer appended first)"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventNotFound(LedgerError):
    """No event with that id or position."""


class NotSequenced(LedgerError):
    """The event is not yet covered by a signed checkpoint (run `sequence()` first)."""


class StoreUnavailable(LedgerError):
    """The database could not be reached, is locked, or failed an operation."""


class ImmutableViolation(LedgerError):
    """The database refused to change or delete a recorded row (the immutability guards)."""


class IntegrityFailure(LedgerError):
    """The store holds data that contradicts itself (a bad key file, a constraint violation, …)."""


class KeyFileError(LedgerError):
    """The signing key file is missing, malformed or readable by others."""
