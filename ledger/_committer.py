"""Appends with group commit (floor 2).

Every `append` prepares its events in the caller's task (canonical payload, digests), then joins a
queue. One committer task drains the queue into batches (bounded in events and bytes) and writes
each batch in ONE transaction under the ledger-wide write lock: positions, stream versions and the
chain are assigned there, so they are gapless with any number of writer processes. A caller's
`append` returns only after its batch committed (fsync'd); if the commit fails, every append of the
batch fails with the translated error and none of them was acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ledger import merkle
from ledger._envelope import (
    GENESIS_HASH,
    Envelope,
    NewEvent,
    canonical_json,
    chain_hash,
    encode_attachment_digests,
    leaf_data,
)
from ledger._errors import (
    InvalidEventError,
    LedgerError,
    StoreUnavailableError,
    StreamVersionConflictError,
)

__all__ = ["GroupCommitter", "Prepared", "Request", "assign", "prepare", "uuid7"]

BatchWriter = Callable[[Sequence["Request"]], Awaitable[None]]

_sha256 = hashlib.sha256


def uuid7() -> uuid.UUID:
    """A time-ordered RFC 9562 UUIDv7 (48-bit Unix milliseconds, then random bits)."""
    ms = time.time_ns() // 1_000_000
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return uuid.UUID(bytes=bytes(raw))


@dataclass(frozen=True, slots=True)
class Prepared:
    """An event ready for the write transaction: everything that does not need the lock."""

    event_id: bytes
    type: str
    stream_id: str
    type_bytes: bytes
    stream_bytes: bytes
    payload: bytes
    payload_digest: bytes
    attachments: dict[str, bytes]
    attachment_digests: dict[str, bytes]
    attachments_encoded: bytes
    id_given: bool

    @property
    def size(self) -> int:
        """Bytes this event adds to a batch."""
        return len(self.payload) + sum(len(v) for v in self.attachments.values()) + 200


def prepare(new: NewEvent) -> Prepared:
    """Validate and encode one event (raises `InvalidEventError` naming what is wrong)."""
    if not isinstance(new, NewEvent):
        raise InvalidEventError(f"append takes NewEvent objects, got {type(new).__name__}")
    if not isinstance(new.type, str) or not new.type or len(new.type) > 200:
        raise InvalidEventError(f"event type must be a 1..200 character string, got {new.type!r}")
    if not isinstance(new.stream_id, str) or not new.stream_id or len(new.stream_id) > 500:
        raise InvalidEventError(
            f"stream id must be a 1..500 character string, got {new.stream_id!r}"
        )
    if not isinstance(new.payload, dict):
        raise InvalidEventError(f"payload must be a JSON object (a dict), got {type(new.payload)}")
    payload = canonical_json(new.payload)
    blobs: dict[str, bytes] = {}
    for name, content in new.attachments.items():
        if not isinstance(content, bytes | bytearray):
            raise InvalidEventError(
                f"attachment {name!r} must be bytes, got {type(content).__name__}"
            )
        blobs[name] = bytes(content)
    digests = {name: _sha256(content).digest() for name, content in blobs.items()}
    try:
        type_bytes = new.type.encode("utf-8")
        stream_bytes = new.stream_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventError(f"type or stream id is not valid UTF-8 text: {exc}") from exc
    return Prepared(
        event_id=(new.event_id or uuid7()).bytes,
        type=new.type,
        stream_id=new.stream_id,
        type_bytes=type_bytes,
        stream_bytes=stream_bytes,
        payload=payload,
        payload_digest=_sha256(payload).digest(),
        attachments=blobs,
        attachment_digests=digests,
        attachments_encoded=encode_attachment_digests(digests),
        id_given=new.event_id is not None,
    )


@dataclass(slots=True)
class Request:
    events: Sequence[Prepared]
    expected_version: int | None
    future: asyncio.Future[list[Envelope]]
    nbytes: int
    error: LedgerError | None = None
    result: list[Envelope] = field(default_factory=list)


def _check_one(request: Request, versions: dict[str, int], taken: set[bytes]) -> None:
    expected = request.expected_version
    if expected is not None:
        for stream_id in sorted({p.stream_id for p in request.events}):
            actual = versions.get(stream_id, 0)
            if actual != expected:
                request.error = StreamVersionConflictError(stream_id, expected, actual)
                return
    ids = [p.event_id for p in request.events]
    clash = next((i for i in ids if i in taken), None)
    if clash is not None or len(set(ids)) != len(ids):
        request.error = InvalidEventError(
            f"event id {uuid.UUID(bytes=clash or ids[0])} is already recorded"
        )
        return
    taken.update(ids)


def assign(
    requests: Sequence[Request],
    head: tuple[int, bytes] | None,
    versions: dict[str, int],
    taken: set[bytes],
    recorded_at_us: int,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Under the write lock: give each accepted event its position, stream version and hashes.

    `head` is the last recorded (position, chain hash), `versions` the current version of the
    batch's streams, `taken` the given event ids already recorded. Appends that fail their own
    check (version conflict, duplicate id) get `error` set and write nothing; the others get
    their envelopes in `result` (valid once the transaction commits). Returns the event rows
    (columns in `EVENT_COLUMNS` order) and the attachment rows.
    """
    position, prev = (head[0] + 1, head[1]) if head else (0, GENESIS_HASH)
    rows: list[tuple[object, ...]] = []
    blob_rows: list[tuple[object, ...]] = []
    leaf_hash = merkle.leaf_hash
    make_envelope = Envelope
    for request in requests:
        _check_one(request, versions, taken)
        if request.error is not None:
            continue
        out = request.result
        for p in request.events:
            version = versions.get(p.stream_id, 0) + 1
            versions[p.stream_id] = version
            data = leaf_data(
                position,
                p.event_id,
                recorded_at_us,
                version,
                p.payload_digest,
                prev,
                p.type_bytes,
                p.stream_bytes,
                p.attachments_encoded,
            )
            chained = chain_hash(prev, data)
            leaf = leaf_hash(data)
            rows.append(
                (
                    position,
                    p.event_id,
                    p.type,
                    p.stream_id,
                    version,
                    recorded_at_us,
                    p.payload,
                    p.payload_digest,
                    p.attachments_encoded,
                    prev,
                    chained,
                    leaf,
                )
            )
            for name, content in p.attachments.items():
                blob_rows.append((position, name, p.attachment_digests[name], content))
            out.append(
                make_envelope(
                    position,
                    uuid.UUID(bytes=p.event_id),
                    p.type,
                    p.stream_id,
                    version,
                    recorded_at_us,
                    p.payload,
                    p.payload_digest,
                    p.attachment_digests,
                    prev,
                    chained,
                    leaf,
                )
            )
            prev = chained
            position += 1
    return rows, blob_rows


class GroupCommitter:
    """Batches concurrent appends of one process into shared transactions."""

    def __init__(
        self, write: BatchWriter, *, max_events: int = 2000, max_bytes: int = 8 << 20
    ) -> None:
        if max_events < 1 or max_bytes < 1:
            raise InvalidEventError("batch limits must be positive")
        self._write = write
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        """How many transactions committed (a measure of batching)."""

    async def submit(
        self, prepared: Sequence[Prepared], expected_version: int | None
    ) -> list[Envelope]:
        """Queue one append and wait until its transaction has committed."""
        if self._closed:
            raise StoreUnavailableError("the ledger is closed")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ledger-group-commit")
        loop = asyncio.get_running_loop()
        request = Request(
            events=prepared,
            expected_version=expected_version,
            future=loop.create_future(),
            nbytes=sum(p.size for p in prepared),
        )
        await self._queue.put(request)
        return await request.future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch, count, nbytes = [first], len(first.events), first.nbytes
            stop = False
            while not self._queue.empty():
                nxt = self._queue._queue[0]  # type: ignore[attr-defined]
                if nxt is None:
                    self._queue.get_nowait()
                    stop = True
                    break
                if count + len(nxt.events) > self._max_events or nbytes + nxt.nbytes > (
                    self._max_bytes
                ):
                    break
                self._queue.get_nowait()
                batch.append(nxt)
                count += len(nxt.events)
                nbytes += nxt.nbytes
            await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[Request]) -> None:
        try:
            await self._write(batch)
        except LedgerError as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        except BaseException as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(
                        StoreUnavailableError(f"append interrupted before it committed: {exc!r}")
                    )
            raise
        self.batches += 1
        for request in batch:
            if request.future.done():
                continue
            if request.error is not None:
                request.future.set_exception(request.error)
            else:
                request.future.set_result(request.result)

    async def close(self) -> None:
        """Commit what is already queued, then stop the committer task."""
        if self._closed:
            return
        self._closed = True
        if self._task is None or self._task.done():
            self._task = None
            return
        await self._queue.put(None)
        await self._task
        self._task = None
