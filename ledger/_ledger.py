"""The ledger facade the services layer uses (floor 2): `async with open_ledger(url) as ledger`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import and_, inspect, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ledger._committer import GroupCommitter, prepare
from ledger._errors import (
    InvalidEventError,
    NotMigratedError,
    SigningKeyError,
    StoreUnavailableError,
    check_positive,
)
from ledger._format import Envelope, NewEvent
from ledger._keyfile import key_file
from ledger._postgres import PostgresStore
from ledger._proofread import ProofReads
from ledger._query import EventRecord
from ledger._reads import EventReads
from ledger._rotation import KEY_ROTATED, KEY_STREAM
from ledger._signer import Signer
from ledger._sqlite import SqliteStore
from ledger._store import BatchWriter, Store, translate_errors
from ledger._tables import attachments, meta
from ledger._treestore import (
    SignedCheckpoint,
    has_event,
    integrate,
    latest_checkpoint,
    read_batch,
)
from ledger._verify import VerifyReport
from ledger._verifyrun import verify_ledger

__all__ = [
    "DEFAULT_HOME",
    "EventRecord",
    "Ledger",
    "open_ledger",
    "open_store",
]

DEFAULT_HOME = Path("~/.unhardcoded")

SEQUENCE_BATCH = 1024
"""Leaves per sequencing batch (one checkpoint each): bounds the sequencer's write transaction,
which on SQLite holds the database's single write lock that appends wait for."""


class Ledger(EventReads, ProofReads):
    """An open ledger. Create it with `open_ledger`; every method is safe from many tasks.

    Appends, sequencing, signing keys and verify are here; the reads of recorded events
    (`get`, `select`, `scan`, ...) are `EventReads`'s, the proofs `ProofReads`'s."""

    def __init__(
        self,
        store: Store,
        ledger_id: str,
        signer: Signer,
        committer: GroupCommitter,
        writer: BatchWriter,
    ) -> None:
        self._store = store
        self._writer = writer
        self.ledger_id = ledger_id
        self.origin = signer.origin
        self._signer = signer
        self._committer = committer
        self._checkpoint_listeners: list[Callable[[SignedCheckpoint], None]] = []

    @property
    def store(self) -> Store:
        """The database seam this ledger runs on, for services that keep their own (rebuildable,
        non-hashed) projection tables in the same database."""
        return self._store

    @property
    def committer(self) -> GroupCommitter:
        """The group committer (its `batches` counter shows how appends were batched)."""
        return self._committer

    def public_key(self) -> str:
        """The C2SP verifier key string of the home folder's signing key (`SigningKeyError`
        when the home holds none: it is created by the first checkpoint of a new ledger)."""
        self._signer.reread()
        if self._signer.key is None:
            raise SigningKeyError(
                f"{key_file(self._signer.home)}: no signing key (a new ledger creates it when it "
                "signs its first checkpoint)"
            )
        return self._signer.key.verifier_key()

    async def verifier_key(self) -> str:
        """The verifier key this ledger signs its checkpoints with now. A ledger that has never
        signed signs with the home folder's key, created here if the home holds none (as its
        first checkpoint would)."""
        async with self._store.read() as conn:
            current = await self._signer.current(conn)
            if current is None:
                key, _ = await self._signer.for_batch(conn, 0, 1)
                return key.verifier_key()
        return current

    async def check_signing_key(self) -> None:
        """Raise `SigningKeyError` unless this process can sign the next checkpoint (creating the
        first key of a ledger that has never signed): a long-running process checks at start."""
        async with self._store.read() as conn:
            head = await latest_checkpoint(conn)
            await self._signer.for_batch(conn, head.tree_size if head else 0, 1)

    async def rotate_key(self, reason: str) -> SignedCheckpoint | None:
        """Record that this ledger signs with the home folder's key from now on (created if the
        home holds none), then sign a checkpoint covering the record with it."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidEventError("a key rotation needs a reason (what happened to the old key)")
        async with self._store.read() as conn:
            previous, key = await self._signer.rotation(conn)
        payload = {"from": previous, "to": key.verifier_key(), "reason": reason.strip()}
        await self._committer.submit([prepare(NewEvent(KEY_ROTATED, KEY_STREAM, payload))], None)
        return await self.sequence()

    async def append(
        self, new: NewEvent | Sequence[NewEvent], *, expected_version: int | None = None
    ) -> list[Envelope]:
        """Record events atomically; returns their envelopes once durably committed.

        `expected_version` (optimistic concurrency): the stream must be exactly at that version
        (its last event's version; 0 = empty) or `StreamVersionConflictError` is raised. It
        needs all the events to belong to one stream. None appends at the stream's end.
        """
        if isinstance(new, NewEvent):
            batch = [new]
        elif isinstance(new, Sequence) and not isinstance(new, str | bytes | bytearray):
            batch = list(new)
        else:
            raise InvalidEventError(
                f"append takes a NewEvent or a sequence of them, got {type(new).__name__}"
            )
        if not batch:
            raise InvalidEventError("append needs at least one event")
        prepared = [prepare(event) for event in batch]
        if expected_version is not None:
            if isinstance(expected_version, bool) or not isinstance(expected_version, int):
                raise InvalidEventError(
                    f"expected_version must be an int, got {expected_version!r}"
                )
            if len({p.stream_id for p in prepared}) != 1:
                raise InvalidEventError("expected_version needs all the events in one stream")
        for p in prepared:  # a loop, not any(): this is every append's path
            if p.stream_id == KEY_STREAM:
                raise InvalidEventError(
                    f"stream {KEY_STREAM!r} is the ledger's own record of its signing keys: "
                    "`rotate_key` writes it"
                )
        return await self._committer.submit(prepared, expected_version)

    async def sequence(
        self,
        max_leaves: int = SEQUENCE_BATCH,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> SignedCheckpoint | None:
        """Integrate every recorded event into the Merkle tree, signing one checkpoint per batch
        of `max_leaves`. Returns the latest checkpoint, or None when another process holds the
        sequencer right now (PostgreSQL) and nothing was signed here. `progress` is called
        after each batch with (the tree size signed, the events recorded).

        Appends go on meanwhile: each batch is read from a snapshot without a lock, hashed and
        signed on a worker thread, and written (its nodes and checkpoint) in one short
        transaction that first checks the tree has not moved on since the read."""
        check_positive("max_leaves", max_leaves)
        async with self._store.sequencer() as elected:
            if not elected:
                return None
            while True:
                async with self._store.read() as conn:
                    head = await latest_checkpoint(conn)
                    size = head.tree_size if head else 0
                    if head is not None and not await has_event(conn, size):
                        return head  # nothing to sign: no key needed
                    # The key, the rotations that choose it and the leaves come from one
                    # snapshot, so a rotation inside the batch is seen; one appended later sits
                    # beyond it. The write's head check keeps a first key chosen meanwhile out.
                    key, limit = await self._signer.for_batch(conn, size, max_leaves)
                    batch = await read_batch(conn, head, limit)
                done = await asyncio.to_thread(integrate, batch, key, self.origin)
                if not await self._writer.write_tree(done):
                    continue  # another sequencer extended the tree meanwhile: read its head
                for listener in self._checkpoint_listeners:
                    listener(done.checkpoint)
                if progress is not None:
                    progress(done.checkpoint.tree_size, await self.last_position() + 1)
                if done.added < limit:
                    return done.checkpoint

    def add_checkpoint_listener(self, listener: Callable[[SignedCheckpoint], None]) -> None:
        """Call `listener(checkpoint)` after each new checkpoint this process signs (e.g. to
        submit it to witnesses). It runs on the sequencer's path: it must return at once."""
        self._checkpoint_listeners.append(listener)

    async def erase_attachment(self, ref: uuid.UUID | str | int, name: str) -> None:
        """Delete an attachment's bytes for good, keeping a tombstone; `verify` stays green
        because only the digest is part of the hashed envelope.

        On SQLite the bytes are then gone from the database file and its WAL (secure delete and a
        TRUNCATE checkpoint); on PostgreSQL the table is vacuumed (docs/ledger.md says what that
        does and does not reach)."""
        envelope = await self._attachment_of(ref, name)
        async with self._store.write() as conn:
            await conn.execute(
                update(attachments)
                .where(
                    and_(attachments.c.position == envelope.position, attachments.c.name == name)
                )
                .values(content=None, erased_at_us=time.time_ns() // 1000)
            )
        await self._store.purge_erased(attachments.name)

    async def verify(
        self,
        *,
        chunk: int = 50_000,
        trusted_keys: Iterable[str] | None = None,
        workers: int | None = 1,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Recompute every digest, the chain, the leaves, the tree, the stored Merkle nodes and
        every checkpoint signature, streaming the events in chunks of `chunk` (bounded memory).

        `workers` processes check ranges of the log in parallel (1, the default: this process
        only; None: one per CPU from 200,000 events on). A problem found in parallel is named by
        a re-run in one range, so the first bad position is exact either way. `progress` is
        called on the event loop's thread with (events checked, events in the log). Raises
        `InvalidEventError` for a `chunk` or `workers` that is not a positive int.
        """
        return await verify_ledger(
            self._store,
            self.origin,
            chunk=chunk,
            trusted_keys=trusted_keys,
            workers=workers,
            progress=progress,
        )

    async def close(self) -> None:
        """Finish queued appends and release the database."""
        try:
            await self._committer.close()
        finally:
            try:
                await self._writer.close()
            finally:
                await self._store.dispose()


def open_store(url: str | URL, *, search_path: str | None = None) -> Store:
    """The store of the database at `url`: SQLite (`sqlite+aiosqlite:///path.db`) or PostgreSQL
    (`postgresql+asyncpg://…`; `search_path` puts the tables in that schema). Its engine opens
    connections lazily; `dispose()` closes them."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailableError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteStore(parsed)
    if backend == "postgresql":
        return PostgresStore(parsed, search_path=search_path)
    raise StoreUnavailableError(
        f"unsupported database {backend!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


@asynccontextmanager
async def open_ledger(
    url: str,
    *,
    home: Path | str | None = None,
    search_path: str | None = None,
    max_batch_events: int = 2000,
    max_batch_bytes: int = 8 << 20,
) -> AsyncIterator[Ledger]:
    """Open the ledger at `url`; the signing key lives in `home`.

    The database must have been migrated (`unhardcoded db upgrade`, `unhardcoded.db.upgrade`):
    `NotMigratedError` otherwise. The ledger never migrates, since its database holds the
    tables of other packages too.

    `search_path` (PostgreSQL) puts the ledger's tables in that schema. `max_batch_events` and
    `max_batch_bytes` bound one group-commit transaction (1 = one commit per append).
    """
    with translate_errors():
        store = open_store(url, search_path=search_path)
    shown = store.url.render_as_string(hide_password=True)
    not_migrated = f"{shown} is not an unhardcoded ledger yet: run `unhardcoded db upgrade`"
    try:
        if not await store.exists():
            raise NotMigratedError(f"{not_migrated} (no such file)")
        async with store.read() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            if meta.name not in tables:
                raise NotMigratedError(not_migrated)
            ledger_id = await conn.scalar(select(meta.c.value).where(meta.c.key == "ledger_id"))
        if ledger_id is None:
            raise NotMigratedError(not_migrated)
        store.bind_ledger(ledger_id)
        signer = Signer.open(
            Path(home) if home is not None else DEFAULT_HOME, f"unhardcoded/{ledger_id}"
        )
        writer = store.writer()
        committer = GroupCommitter(
            writer,
            max_events=max_batch_events,
            max_bytes=max_batch_bytes,
        )
        ledger = Ledger(store, ledger_id, signer, committer, writer)
    except BaseException:
        await store.dispose()
        raise
    try:
        yield ledger
    finally:
        await ledger.close()
