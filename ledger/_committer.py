"""Appends with group commit (floor 2).

Every `append` prepares its events in the caller's task (canonical payload, digests), then joins a
queue. The committer drains the queue into batches (bounded in events and bytes) and writes
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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields

from ledger._errors import (
    InvalidEventError,
    LedgerError,
    StoreUnavailableError,
    StreamVersionConflictError,
)
from ledger._format import (
    GENESIS_HASH,
    LEAF_HEAD,
    LEAF_MAGIC,
    Envelope,
    NewEvent,
    canonical_json,
    chain_hash,
    encode_attachment_digests,
    leaf_hash,
    leaf_tail,
)

__all__ = ["GroupCommitter", "Prepared", "Request", "assign", "prepare", "uuid7"]

BatchWriter = Callable[[Sequence["Request"]], Awaitable[None]]
"""Writes one batch in one durable transaction (the backend's `write_batch`)."""

_sha256 = hashlib.sha256


def _uuid7_bytes() -> bytes:
    # ms ‖ version 7 ‖ 12 random bits ‖ variant 0b10 ‖ 62 random bits, as one integer.
    rand = int.from_bytes(os.urandom(10), "big")
    return (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (rand >> 64 & 0xFFF) << 64
        | 0b10 << 62
        | rand & 0x3FFF_FFFF_FFFF_FFFF
    ).to_bytes(16, "big")


def uuid7() -> uuid.UUID:
    """A time-ordered RFC 9562 UUIDv7 (48-bit Unix milliseconds, then random bits)."""
    return uuid.UUID(bytes=_uuid7_bytes())


# Immutable objects built through their slot descriptors: a frozen dataclass's __init__ (one
# object.__setattr__ per field) and UUID(bytes=...) (argument parsing) cost ~3x as much, and
# the writer builds one envelope per event while the whole batch waits for it.
_set_uuid_int = uuid.UUID.int.__set__  # type: ignore[attr-defined,misc]
_set_uuid_safe = uuid.UUID.is_safe.__set__  # type: ignore[attr-defined,misc]
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """`uuid.UUID(bytes=raw)` without its argument parsing (raw is always 16 bytes here)."""
    made = object.__new__(uuid.UUID)
    _set_uuid_int(made, int.from_bytes(raw, "big"))
    _set_uuid_safe(made, _UNKNOWN)
    return made


def _envelope_maker() -> Callable[..., Envelope]:
    """`Envelope(...)` with all fields positional, through the slot descriptors."""
    (p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11) = (
        getattr(Envelope, f.name).__set__ for f in fields(Envelope)
    )
    new = object.__new__

    def make(
        position: int,
        event_id: uuid.UUID,
        type_: str,
        stream_id: str,
        stream_version: int,
        recorded_at_us: int,
        payload: bytes,
        payload_digest: bytes,
        attachment_digests: dict[str, bytes],
        prev_hash: bytes,
        chain_hash: bytes,
        leaf_hash: bytes,
    ) -> Envelope:
        made = new(Envelope)
        p0(made, position)
        p1(made, event_id)
        p2(made, type_)
        p3(made, stream_id)
        p4(made, stream_version)
        p5(made, recorded_at_us)
        p6(made, payload)
        p7(made, payload_digest)
        p8(made, attachment_digests)
        p9(made, prev_hash)
        p10(made, chain_hash)
        p11(made, leaf_hash)
        return made

    return make


_envelope = _envelope_maker()


@dataclass(slots=True)
class Prepared:
    """An event ready for the write transaction: everything that does not need the lock.

    `type_length` and `tail` complete the leaf data after its fixed-size head (`leaf_tail`).
    """

    event_id: bytes
    type: str
    stream_id: str
    payload: bytes
    payload_digest: bytes
    attachments: dict[str, bytes]
    attachment_digests: dict[str, bytes]
    attachments_encoded: bytes
    id_given: bool
    type_length: int
    tail: bytes
    size: int
    """Bytes this event adds to a batch."""


def _tail(type_: str, stream_id: str, encoded: bytes) -> tuple[int, bytes]:
    """(type length, the leaf data after its fixed-size head) of an event."""
    try:
        type_bytes = type_.encode("utf-8")
        stream_bytes = stream_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventError(f"type or stream id is not valid UTF-8 text: {exc}") from exc
    return len(type_bytes), leaf_tail(type_bytes, stream_bytes, encoded)


def prepare(new: NewEvent) -> Prepared:
    """Validate and encode one event (raises `InvalidEventError` naming what is wrong)."""
    if not isinstance(new, NewEvent):
        raise InvalidEventError(f"append takes NewEvent objects, got {type(new).__name__}")
    type_, stream_id, event_id = new.type, new.stream_id, new.event_id
    if not isinstance(type_, str) or not type_ or len(type_) > 200:
        raise InvalidEventError(f"event type must be a 1..200 character string, got {type_!r}")
    if not isinstance(stream_id, str) or not stream_id or len(stream_id) > 500:
        raise InvalidEventError(f"stream id must be a 1..500 character string, got {stream_id!r}")
    if not isinstance(new.payload, dict):
        raise InvalidEventError(f"payload must be a JSON object (a dict), got {type(new.payload)}")
    payload = canonical_json(new.payload)
    blobs: dict[str, bytes] = {}
    digests: dict[str, bytes] = {}
    encoded = b""
    if new.attachments:
        for name, content in new.attachments.items():
            if not isinstance(content, bytes | bytearray):
                raise InvalidEventError(
                    f"attachment {name!r} must be bytes, got {type(content).__name__}"
                )
            blobs[name] = bytes(content)
            digests[name] = _sha256(content).digest()
        encoded = encode_attachment_digests(digests)
    type_length, tail = _tail(type_, stream_id, encoded)
    return Prepared(
        (event_id.bytes if event_id is not None else _uuid7_bytes()),
        type_,
        stream_id,
        payload,
        _sha256(payload).digest(),
        blobs,
        digests,
        encoded,
        event_id is not None,
        type_length,
        tail,
        len(payload) + sum(map(len, blobs.values())) + 200,
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
    events = request.events
    if expected is None and len(events) == 1:
        # The gateway's shape (one event, no expected version): one set probe, no generator.
        only = events[0].event_id
        if only in taken:
            request.error = InvalidEventError(
                f"event id {uuid.UUID(bytes=only)} is already recorded"
            )
        else:
            taken.add(only)
        return
    if expected is not None:
        for stream_id in sorted({p.stream_id for p in request.events}):
            actual = versions.get(stream_id, 0)
            if actual != expected:
                request.error = StreamVersionConflictError(stream_id, expected, actual)
                return
    ids = [p.event_id for p in events]
    clash = next((i for i in ids if i in taken), None)
    if clash is not None:
        request.error = InvalidEventError(f"event id {uuid.UUID(bytes=clash)} is already recorded")
        return
    unique = set(ids)
    if len(unique) != len(ids):
        seen: set[bytes] = set()
        for twice in ids:
            if twice in seen:
                request.error = InvalidEventError(
                    f"event id {uuid.UUID(bytes=twice)} is given twice in one append"
                )
                return
            seen.add(twice)
    taken.update(unique)


def assign(
    requests: Sequence[Request],
    head: tuple[int, bytes, int] | None,
    versions: dict[str, int],
    taken: set[bytes],
    recorded_at_us: int,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Under the write lock: give each accepted event its position, stream version and hashes.

    `head` is the last recorded (position, chain hash, recorded_at_us), `versions` the current
    version of the batch's streams, `taken` the given event ids already recorded. Appends that
    fail their own check (version conflict, duplicate id) get `error` set and write nothing; the
    others get their envelopes in `result` (valid once the transaction commits). Returns the
    event rows (the columns of `ledger_events`, in table order) and the attachment rows.
    """
    position, prev = (head[0] + 1, head[1]) if head else (0, GENESIS_HASH)
    # Time never runs backwards along the log, whatever the clocks of the processes that write
    # it: a batch is stamped no earlier than the event before it. Positions and stream versions
    # are assigned in this same serialized step, so `recorded_at_us` is non-decreasing along
    # every stream too, which is what a per-stream completeness proof relies on
    # (docs/bundles.md, "Completeness").
    if head is not None and head[2] > recorded_at_us:
        recorded_at_us = head[2]
    rows: list[tuple[object, ...]] = []
    blob_rows: list[tuple[object, ...]] = []
    add_row, pack, magic = rows.append, LEAF_HEAD.pack, LEAF_MAGIC
    make_envelope, make_uuid = _envelope, _uuid_from_bytes
    for request in requests:
        events = request.events
        _check_one(request, versions, taken)
        if request.error is not None:
            continue
        add_envelope = request.result.append
        for p in events:
            stream_id = p.stream_id
            version = versions.get(stream_id, 0) + 1
            versions[stream_id] = version
            eid, digest = p.event_id, p.payload_digest
            data = (
                pack(magic, position, eid, recorded_at_us, version, digest, prev, p.type_length)
                + p.tail
            )
            chained = chain_hash(prev, data)
            leaf = leaf_hash(data)
            add_row(
                (
                    position,
                    eid,
                    p.type,
                    stream_id,
                    version,
                    recorded_at_us,
                    p.payload,
                    digest,
                    p.attachments_encoded,
                    prev,
                    chained,
                    leaf,
                )
            )
            if p.attachments:
                for name, content in p.attachments.items():
                    blob_rows.append((position, name, p.attachment_digests[name], content))
            add_envelope(
                make_envelope(
                    position,
                    make_uuid(eid),
                    p.type,
                    stream_id,
                    version,
                    recorded_at_us,
                    p.payload,
                    digest,
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
    """Batches concurrent appends of one process into shared transactions.

    Scheduling: when a batch completes, the next one (what queued up meanwhile) is started
    from the completion callback, BEFORE the finished batch's appenders are woken, so the writer
    is never idle while appends wait. When the writer is idle, appends issued together (in one
    turn of the event loop) are flushed together at the end of that turn. (Splitting producers
    that come back together into two alternating groups, one committing while the other
    prepares, was measured and dropped: it doubles the fsyncs, and lost on a quiet machine.)
    """

    def __init__(
        self,
        write: BatchWriter,
        *,
        max_events: int = 2000,
        max_bytes: int = 8 << 20,
    ) -> None:
        if max_events < 1 or max_bytes < 1:
            raise InvalidEventError("batch limits must be positive")
        self._write = write
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._queue: deque[Request] = deque()
        self._inflight: asyncio.Future[None] | None = None
        self._kick_scheduled = False
        self._closed = False
        self.batches = 0
        """How many transactions committed (a measure of batching)."""

    async def submit(
        self, prepared: Sequence[Prepared], expected_version: int | None
    ) -> list[Envelope]:
        """Queue one append and wait until its transaction has committed."""
        if self._closed:
            raise StoreUnavailableError("the ledger is closed")
        request = Request(
            prepared,
            expected_version,
            asyncio.get_running_loop().create_future(),
            sum(p.size for p in prepared),
        )
        queue = self._queue
        queue.append(request)
        if self._inflight is None and not self._kick_scheduled:
            self._kick_scheduled = True
            asyncio.get_running_loop().call_soon(self._kick)
        return await request.future

    def _kick(self) -> None:
        self._kick_scheduled = False
        if self._inflight is None and self._queue:
            self._start()

    def _start(self) -> None:
        queue, batch = self._queue, list[Request]()
        count = nbytes = 0
        while queue:
            nxt = queue[0]
            if batch and (
                count + len(nxt.events) > self._max_events or nbytes + nxt.nbytes > self._max_bytes
            ):
                break
            batch.append(queue.popleft())
            count += len(nxt.events)
            nbytes += nxt.nbytes
        inflight = asyncio.ensure_future(self._write(batch))
        self._inflight = inflight
        inflight.add_done_callback(lambda done: self._finish(batch, done))

    def _finish(self, batch: list[Request], done: asyncio.Future[None]) -> None:
        self._inflight = None
        if self._queue:
            self._start()
        self._settle(batch, asyncio.CancelledError() if done.cancelled() else done.exception())

    def _settle(self, batch: list[Request], failure: BaseException | None) -> None:
        """Wake the batch's appenders: with the batch's failure, their own error or their
        envelopes."""
        if failure is None:
            self.batches += 1
        elif not isinstance(failure, LedgerError):
            failure = StoreUnavailableError(f"append interrupted before it committed: {failure!r}")
        for request in batch:
            if request.future.done():
                continue
            if failure is not None:
                request.future.set_exception(failure)
            elif request.error is not None:
                request.future.set_exception(request.error)
            else:
                request.future.set_result(request.result)

    async def close(self) -> None:
        """Commit what is already queued, then stop accepting appends."""
        self._closed = True
        while self._inflight is not None:
            await asyncio.wait((self._inflight,))
