"""The witness (c2sp.org/tlog-witness v1): cosign a log's checkpoint only when it is signed by
the log's key and consistent with the last checkpoint this witness cosigned for that log.

`Witness.add_checkpoint` is the whole protocol; the HTTP handler only moves bytes and maps the
errors to their status codes. Each request is one `BEGIN IMMEDIATE` transaction on the witness's
database: the latest cosigned size is read, checked and replaced atomically, and the new
checkpoint is durable (WAL, synchronous=FULL) before the cosignature leaves.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ledger import (
    Checkpoint,
    CheckpointFormatError,
    CosignerKey,
    LedgerError,
    OriginMismatchError,
    VerifierKey,
    open_checkpoint,
    parse_note,
    parse_verifier_key,
    signature_line,
)
from ledger.merkle import verify_consistency
from router.services.witness._errors import (
    WitnessBadRequestError,
    WitnessConflictError,
    WitnessError,
    WitnessForbiddenError,
    WitnessInconsistentError,
    WitnessUnknownLogError,
)
from router.services.witness._protocol import AddCheckpoint
from router.services.witness._state import connect, create_state, load_key

__all__ = ["CosignedHead", "Refusal", "Witness"]


@dataclass(frozen=True, slots=True)
class CosignedHead:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    tree_size: int
    root_hash: bytes
    cosigned_at: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request kept as evidence: a validly signed checkpoint that rolls the log back,
    forks it, or does not follow from the cosigned one by the proof given."""

    id: int
    origin: str
    status: int
    reason: str
    request: bytes
    received_at: int


class Witness:
    """A witness over its state folder (see `router.services.witness._state`)."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder).expanduser()
        self.key: CosignerKey = load_key(self.folder)

    @classmethod
    def init(cls, folder: Path | str, name: str) -> Witness:
        """Create a witness named `name` (its key name, e.g. `witness.example/w1`) in `folder`."""
        create_state(Path(folder).expanduser(), name)
        return cls(folder)

    def verifier_key(self) -> str:
        """The witness's public key as a C2SP vkey (signature type 0x04)."""
        return str(self.key.verifier())

    def add_log(self, verifier_key: str, origin: str | None = None) -> str:
        """Witness the log whose checkpoints `verifier_key` signs; its origin defaults to the key
        name (the convention of tlog-checkpoint, which unhardcoded ledgers follow)."""
        try:
            key = parse_verifier_key(verifier_key)
        except LedgerError as exc:
            raise WitnessError(f"log key: {exc}") from None
        origin = key.name if origin is None else origin
        if not origin or "\n" in origin:
            raise WitnessError(f"origin {origin!r} is empty or spans lines")
        with connect(self.folder) as conn:
            conn.execute(
                "INSERT INTO witness_logs (origin, verifier_key, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (origin) DO UPDATE SET verifier_key = excluded.verifier_key",
                (origin, str(key), int(time.time())),
            )
        return origin

    def logs(self) -> dict[str, str]:
        """Origin → verifier key of every log this witness cosigns."""
        with connect(self.folder) as conn:
            rows = conn.execute("SELECT origin, verifier_key FROM witness_logs ORDER BY origin")
            return {origin: key for origin, key in rows}

    def latest(self, origin: str) -> CosignedHead | None:
        """The latest checkpoint cosigned for `origin` (None before the first)."""
        with connect(self.folder) as conn:
            return _latest(conn, origin)

    def refusals(self, origin: str | None = None) -> list[Refusal]:
        """The refused requests kept as evidence, oldest first."""
        query = "SELECT id, origin, status, reason, request, received_at FROM witness_refusals"
        with connect(self.folder) as conn:
            if origin is None:
                rows = conn.execute(query + " ORDER BY id").fetchall()
            else:
                rows = conn.execute(query + " WHERE origin = ? ORDER BY id", (origin,)).fetchall()
        return [Refusal(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def cosigned_sizes(self, origin: str) -> list[int]:
        """Every tree size cosigned for `origin`, in the order they were cosigned."""
        with connect(self.folder) as conn:
            rows = conn.execute(
                "SELECT tree_size FROM witness_cosigned WHERE origin = ? ORDER BY id",
                (origin,),
            )
            return [size for (size,) in rows]

    def add_checkpoint(self, body: bytes) -> str:
        """Handle one add-checkpoint request body; the answer is the cosignature line.

        Raises the `WitnessError` whose `status` is the answer the spec prescribes: 400
        malformed, 404 unknown origin, 403 no valid log signature, 409 old size not the latest
        cosigned (`size` says which) or same size with another root, 422 proof does not verify.
        Refusals of a validly signed checkpoint (409 rollback or fork, 422) are kept as evidence.
        """
        request = AddCheckpoint.parse(body)
        try:
            text, _ = parse_note(request.note)
            claimed = Checkpoint.parse_body(text)
        except CheckpointFormatError as exc:
            raise WitnessBadRequestError(f"checkpoint: {exc}") from None
        if request.old_size > claimed.size:
            raise WitnessBadRequestError(
                f"old size {request.old_size} is larger than the checkpoint's {claimed.size}"
            )
        with connect(self.folder) as conn:
            checkpoint = self._open(conn, request.note, claimed.origin)
            conn.execute("BEGIN IMMEDIATE")
            try:
                line = self._cosign(conn, request, checkpoint, text, body)
            except WitnessError:
                conn.execute("COMMIT")  # the evidence recorded, if any
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return line

    def _open(self, conn: sqlite3.Connection, note: str, origin: str) -> Checkpoint:
        row = conn.execute(
            "SELECT verifier_key FROM witness_logs WHERE origin = ?", (origin,)
        ).fetchone()
        if row is None:
            raise WitnessUnknownLogError(f"this witness does not witness the log {origin!r}")
        key: VerifierKey = parse_verifier_key(row[0])
        try:
            return open_checkpoint(note, key, origin=origin)
        except OriginMismatchError as exc:
            raise WitnessBadRequestError(f"checkpoint: {exc}") from None
        except LedgerError as exc:
            raise WitnessForbiddenError(
                f"checkpoint of {origin!r} is not validly signed by {key}: {exc}"
            ) from None

    def _cosign(
        self,
        conn: sqlite3.Connection,
        request: AddCheckpoint,
        checkpoint: Checkpoint,
        text: str,
        body: bytes,
    ) -> str:
        origin = checkpoint.origin
        head = _latest(conn, origin)
        size, root = (0, b"") if head is None else (head.tree_size, head.root_hash)

        def refuse(error: WitnessError) -> WitnessError:
            conn.execute(
                "INSERT INTO witness_refusals (origin, status, reason, request, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (origin, error.status, str(error), body, int(time.time())),
            )
            return error

        if request.old_size != size:
            conflict = WitnessConflictError(
                f"old size {request.old_size} is not the size this witness last cosigned for "
                f"{origin!r} ({size})",
                size,
            )
            # A stale old size is how a log learns the witness's size; a checkpoint smaller
            # than the cosigned one is a rollback, kept as evidence.
            raise refuse(conflict) if checkpoint.size < size else conflict
        if checkpoint.size == size and size > 0:
            if checkpoint.root != root:
                raise refuse(
                    WitnessConflictError(
                        f"tree size {size} of {origin!r} was cosigned with root "
                        f"{root.hex()}, this checkpoint says {checkpoint.root.hex()}: a fork",
                        size,
                    )
                )
        elif size == 0:
            if request.proof:
                raise refuse(
                    WitnessInconsistentError("a consistency proof from size 0 must be empty")
                )
        elif not verify_consistency(size, checkpoint.size, root, checkpoint.root, request.proof):
            raise refuse(
                WitnessInconsistentError(
                    f"the consistency proof does not lead from the cosigned tree of {origin!r} "
                    f"(size {size}, root {root.hex()}) to size {checkpoint.size}, root "
                    f"{checkpoint.root.hex()}"
                )
            )
        now = int(time.time())
        line = signature_line(self.key.cosign(text, now))
        conn.execute(
            "INSERT INTO witness_cosigned (origin, tree_size, root_hash, checkpoint, "
            "cosignature, cosigned_at) VALUES (?, ?, ?, ?, ?, ?)",
            (origin, checkpoint.size, checkpoint.root, request.note, line, now),
        )
        return line


def _latest(conn: sqlite3.Connection, origin: str) -> CosignedHead | None:
    row = conn.execute(
        "SELECT origin, tree_size, root_hash, cosigned_at FROM witness_cosigned "
        "WHERE origin = ? ORDER BY tree_size DESC, id DESC LIMIT 1",
        (origin,),
    ).fetchone()
    return None if row is None else CosignedHead(row[0], row[1], bytes(row[2]), row[3])
