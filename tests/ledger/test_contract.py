"""The recorder contract: one abstract suite, run against a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from ledger import (
    EVENT_BATCH_SCHEMA,
    Envelope,
    EventNotFoundError,
    ImmutableViolationError,
    InvalidEventError,
    Ledger,
    LedgerError,
    NewEvent,
    NotSequencedError,
    StreamVersionConflictError,
    merkle,
    verify_consistency_document,
    verify_inclusion_document,
)
from ledger._batches import page_query
from ledger._errors import StoreUnavailableError
from ledger._sqlite import SqliteStore
from tests.conftest import PgSchema
from tests.ledger._backends import IMMUTABLE, Backend, decision


class LedgerContract:
    """Everything a ledger backend must do. Subclasses provide the `backend` fixture."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    async def test_append_assigns_gapless_positions_versions_and_chain(
        self, backend: Backend
    ) -> None:
        async with backend.open() as led:
            first = await led.append([decision(0, "a"), decision(1, "b")])
            second = await led.append(decision(2, "a"))
            envs = [*first, *second]
            assert [e.position for e in envs] == [0, 1, 2]
            assert [(e.stream_id, e.stream_version) for e in envs] == [("a", 1), ("b", 1), ("a", 2)]
            assert envs[0].prev_hash == bytes(32)
            for prev, env in itertools.pairwise(envs):
                assert env.prev_hash == prev.chain_hash
            for env in envs:
                data = env.leaf_data()
                assert env.leaf_hash == merkle.leaf_hash(data)
                assert env.chain_hash == hashlib.sha256(env.prev_hash + data).digest()
                assert env.payload_digest == hashlib.sha256(env.payload).digest()
                assert env.event_id.version == 7
            assert await led.get(envs[1].event_id) == envs[1]
            assert await led.get(2) == envs[2]
            assert await led.get(str(envs[0].event_id)) == envs[0]
            assert await led.read(1, limit=5) == envs[1:]
            assert await led.stream("a") == [envs[0], envs[2]]
            assert await led.count() == 3

    async def test_payload_is_stored_as_canonical_json(self, backend: Backend) -> None:
        async with backend.open() as led:
            (env,) = await led.append(NewEvent("T", "s", {"b": [1, 2.5, "é"], "a": None}))
            assert env.payload == '{"a":null,"b":[1,2.5,"é"]}'.encode()
            assert (await led.get(env.event_id)).payload_json() == {"a": None, "b": [1, 2.5, "é"]}

    async def test_given_event_id_is_kept_and_a_duplicate_is_refused(
        self, backend: Backend
    ) -> None:
        given = uuid.uuid4()
        async with backend.open() as led:
            (env,) = await led.append(NewEvent("T", "s", {}, event_id=given))
            assert env.event_id == given
            with pytest.raises(InvalidEventError, match="already recorded"):
                await led.append(NewEvent("T", "s", {}, event_id=given))
            assert await led.count() == 1

    async def test_one_id_twice_in_one_batch_is_recorded_once(self, backend: Backend) -> None:
        given = uuid.uuid4()
        async with backend.open() as led:
            results = await asyncio.gather(
                *(led.append(NewEvent("T", "s", {"n": n}, event_id=given)) for n in range(3)),
                return_exceptions=True,
            )
            assert led.committer.batches == 1
            assert [type(r) for r in results] == [list, InvalidEventError, InvalidEventError]
            assert await led.count() == 1

    async def test_a_batch_of_many_rows_reads_back_identical(self, backend: Backend) -> None:
        # More rows than one multi-row INSERT statement holds, with attachments in between.
        events = [
            NewEvent("T", f"s{i % 3}", {"i": i}, attachments={"a": b"x"} if i % 7 == 0 else {})
            for i in range(75)
        ]
        async with backend.open() as led:
            envs = [*await led.append(events[:5]), *await led.append(events[5:])]
            assert await led.read(0, limit=100) == envs
            assert [e.position for e in envs] == list(range(75))
            assert (await led.verify()).ok

    async def test_two_writers_taking_turns_keep_versions_and_chain(self, backend: Backend) -> None:
        # Each writer's batches see what the other one committed in between.
        def event(stream: str, given: uuid.UUID | None = None) -> NewEvent:
            return NewEvent("T", stream, {"s": stream}, event_id=given)

        async with backend.open() as one, backend.open() as two:
            await one.append([event("a"), event("b")])
            assert (await one.append(event("a")))[0].stream_version == 2
            assert (await two.append(event("b")))[0].stream_version == 2
            await one.append(event("c"))  # the head moved under `one`
            assert (await one.append(event("b")))[0].stream_version == 3
            assert (await two.append(event("d")))[0].stream_version == 1
            assert (await one.append(event("d")))[0].stream_version == 2
            given = uuid.uuid4()
            await two.append(event("e", given))
            await one.append(event("a"))
            with pytest.raises(InvalidEventError, match="already recorded"):
                await one.append(event("e", given))
            envs = await one.read(0, limit=100)
            assert [e.position for e in envs] == list(range(len(envs)))
            for stream in "abcde":
                versions = [e.stream_version for e in envs if e.stream_id == stream]
                assert versions == list(range(1, len(versions) + 1))
            assert (await one.verify()).ok

    async def test_bad_events_are_refused_with_the_reason(self, backend: Backend) -> None:
        async with backend.open() as led:
            with pytest.raises(InvalidEventError, match="payload must be a JSON object"):
                await led.append(NewEvent("T", "s", [1]))  # type: ignore[arg-type]
            with pytest.raises(InvalidEventError, match="stream id"):
                await led.append(NewEvent("T", "", {}))
            with pytest.raises(InvalidEventError, match="canonical JSON"):
                await led.append(NewEvent("T", "s", {"x": float("nan")}))
            with pytest.raises(EventNotFoundError):
                await led.get(uuid.uuid4())

    async def test_expected_version_is_checked_under_the_lock(self, backend: Backend) -> None:
        async with backend.open() as led:
            await led.append(decision(0, "s"), expected_version=0)
            await led.append(decision(1, "s"), expected_version=1)
            with pytest.raises(StreamVersionConflictError) as caught:
                await led.append(decision(2, "s"), expected_version=1)
            assert (caught.value.expected, caught.value.actual) == (1, 2)
            # Ten writers race for version 3: exactly one wins, the others conflict.
            results = await asyncio.gather(
                *(led.append(decision(i, "s"), expected_version=2) for i in range(10)),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, list)]
            assert len(won) == 1
            assert all(isinstance(r, StreamVersionConflictError) for r in results if r not in won)
            assert [e.stream_version for e in await led.stream("s")] == [1, 2, 3]

    async def test_concurrent_appends_share_transactions(self, backend: Backend) -> None:
        async with backend.open() as led:
            results = await asyncio.gather(*(led.append(decision(i)) for i in range(64)))
            assert sorted(e.position for (e,) in results) == list(range(64))
            assert led.committer.batches < 64
        async with backend.open(max_batch_events=1) as led:
            await asyncio.gather(*(led.append(decision(i)) for i in range(8)))
            assert led.committer.batches == 8

    async def test_producers_coming_back_from_one_batch_share_the_next(
        self, backend: Backend
    ) -> None:
        async def producer(led: Ledger, n: int) -> list[int]:
            return [e.position for i in range(2) for e in await led.append(decision(2 * n + i))]

        async with backend.open() as led:
            done = await asyncio.gather(*(producer(led, n) for n in range(32)))
            assert sorted(p for positions in done for p in positions) == list(range(64))
            assert led.committer.batches == 2

    async def test_a_failing_batch_fails_every_append_in_it(self, backend: Backend) -> None:
        # A real database rule refusing one event's insert makes the whole transaction fail.
        async with backend.open() as led:
            if backend.name == "sqlite":
                await backend.sql(
                    "CREATE TRIGGER poison BEFORE INSERT ON ledger_events WHEN NEW.type = 'Poison' "
                    "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END"
                )
            else:
                await backend.sql(
                    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.type = 'Poison' THEN RAISE EXCEPTION 'poisoned event'; END IF; "
                    "RETURN NEW; END $$"
                )
                await backend.sql(
                    "CREATE TRIGGER poison BEFORE INSERT ON ledger_events "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            batch = [decision(i) for i in range(5)] + [NewEvent("Poison", "p", {})]
            results = await asyncio.gather(*(led.append(e) for e in batch), return_exceptions=True)
            assert all(isinstance(r, LedgerError) for r in results), results
            assert all("poisoned event" in str(r) for r in results)
            assert await led.count() == 0
            (env,) = await led.append(decision(9))
            assert env.position == 0

    async def test_many_inclusion_proofs_read_together_equal_one_by_one(
        self, backend: Backend
    ) -> None:
        async with backend.open() as led:
            envs = [e for i in range(37) for e in await led.append(decision(i))]
            await led.sequence(max_leaves=8)
            leaves = [e.leaf_hash for e in envs]
            for size in (1, 8, 13, 37):
                positions = [p for p in (12, 0, 5, 6, 7, 36, 3) if p < size]
                proofs = await led.inclusion_proofs(positions, size)
                assert [p.leaf_index for p in proofs] == positions
                for proof in proofs:
                    assert proof.tree_size == size
                    assert proof.leaf_hash == leaves[proof.leaf_index]
                    assert list(proof.hashes) == merkle.inclusion_proof(
                        proof.leaf_index, leaves[:size]
                    )
            assert await led.inclusion_proofs([], 37) == []
            assert await led.envelopes([36, 5, 5, 0, 99]) == [envs[0], envs[5], envs[36]]
            with pytest.raises(EventNotFoundError, match="position 37 is not in the tree"):
                await led.inclusion_proofs([1, 37], 37)

    async def test_batch_proofs_of_leaves_far_apart(self, backend: Backend) -> None:
        """Positions far apart (and the right-edge nodes, far from them) are read by separate
        range queries: the proofs are the same."""
        async with backend.open() as led:
            envs = await led.append([decision(i) for i in range(203)])
            await led.sequence()
            leaves = [e.leaf_hash for e in envs]
            positions = [150, 2, 3, 202, 70]
            proofs = await led.inclusion_proofs(positions, 203)
            for position, proof in zip(positions, proofs, strict=True):
                assert list(proof.hashes) == merkle.inclusion_proof(position, leaves)

    async def test_proofs_against_signed_checkpoints(self, backend: Backend) -> None:
        async with backend.open() as led:
            envs = [e for i in range(13) for e in await led.append(decision(i))]
            with pytest.raises(NotSequencedError):
                await led.inclusion_proof(envs[0].event_id)
            first = await led.sequence(max_leaves=5)
            assert first is not None
            assert first.tree_size == 13
            leaves = [e.leaf_hash for e in envs]
            assert first.root_hash == merkle.root(leaves)
            for env in envs:
                bundle = await led.inclusion_proof(env.event_id)
                assert list(bundle.proof.hashes) == merkle.inclusion_proof(env.position, leaves)
                verify_inclusion_document(bundle.proof, first.note, led.public_key())
            envs += [e for i in range(6) for e in await led.append(decision(i))]
            head = await led.sequence()
            assert head is not None
            assert head.tree_size == 19
            proof, old, new = await led.consistency_proof(13)
            assert (old.tree_size, new.tree_size) == (13, 19)
            verify_consistency_document(proof, old.note, new.note, led.public_key())
            assert await led.sequence() == head  # nothing new: no new checkpoint
            report = await led.verify(chunk=4)
            assert report.ok, report.problem
            assert (report.events, report.tree_size) == (19, 19)
            assert report.root_hash == merkle.root([e.leaf_hash for e in envs])
            assert report.checkpoints == 4  # 5, 10, 13 (max_leaves=5), then 19
            # Unsigned events after the last checkpoint: chained, in the report's root too.
            envs += [e for i in range(3) for e in await led.append(decision(i))]
            report = await led.verify(chunk=4)
            assert (report.events, report.checkpoints) == (22, 4)
            assert report.root_hash == merkle.root([e.leaf_hash for e in envs])

    async def test_erasing_an_attachment_keeps_verify_green(self, backend: Backend) -> None:
        body = b'{"messages": [{"role": "user", "content": "my secret"}]}'
        async with backend.open() as led:
            (env,) = await led.append(NewEvent("DecisionMade", "s", {"d": 1}, {"body": body}))
            await led.append(decision(2))
            await led.sequence()
            assert env.attachment_digests == {"body": hashlib.sha256(body).digest()}
            assert await led.attachment(env.event_id, "body") == body
            await led.erase_attachment(env.event_id, "body")
            assert await led.attachment(env.event_id, "body") is None
            rows = await backend.sql("SELECT content, erased_at_us FROM ledger_attachments")
            assert rows[0][0] is None
            assert rows[0][1] is not None
            report = await led.verify()
            assert report.ok, report.problem
            with pytest.raises(EventNotFoundError, match="no attachment"):
                await led.erase_attachment(env.event_id, "other")

    @pytest.mark.parametrize("table", IMMUTABLE)
    async def test_the_database_refuses_update_and_delete(
        self, backend: Backend, table: str
    ) -> None:
        async with backend.open() as led:
            await led.append(decision(0))
            await led.sequence()
            await led.append(decision(1))
            await led.sequence()
        column = {
            "ledger_events": "type",
            "ledger_merkle_nodes": "hash",
            "ledger_checkpoints": "note",
            "ledger_meta": "value",
        }[table]
        value = b"x" if column == "hash" else "x"
        with pytest.raises(ImmutableViolationError, match="append-only"):
            await backend.sql(f"UPDATE {table} SET {column} = :v", {"v": value})
        with pytest.raises(ImmutableViolationError, match="append-only"):
            await backend.sql(f"DELETE FROM {table}")
        if backend.name == "postgres":
            with pytest.raises(ImmutableViolationError, match="append-only"):
                await backend.sql(f"TRUNCATE {table}")
        assert await backend.sql(f"SELECT count(*) FROM {table}") != [(0,)]

    async def test_reopening_keeps_the_ledger_id_and_key(self, backend: Backend) -> None:
        async with backend.open() as led:
            await led.append(decision(0))
            await led.sequence()  # a new ledger's first checkpoint creates its key
            ledger_id, key = led.ledger_id, led.public_key()
        async with backend.open() as led:
            assert (led.ledger_id, led.public_key()) == (ledger_id, key)
            assert key.startswith(f"unhardcoded/{ledger_id}+")
            (env,) = await led.append(decision(1))
            assert env.position == 1

    async def test_untrusted_checkpoint_keys_fail_verify(self, backend: Backend) -> None:
        async with backend.open() as led:
            await led.append(decision(0))
            await led.sequence()
            assert (await led.verify(trusted_keys=[led.public_key()])).ok
            report = await led.verify(trusted_keys=["someone+00000000+AAAA"])
        assert report.problem is not None
        assert "untrusted key" in str(report.problem)

    async def test_two_sequencers_at_once_build_one_consistent_tree(self, backend: Backend) -> None:
        async with backend.open() as one, backend.open() as two:
            for i in range(20):
                await (one if i % 2 else two).append(decision(i))
            results = await asyncio.gather(one.sequence(max_leaves=3), two.sequence(max_leaves=3))
            head = await one.latest_checkpoint()
            assert head is not None
            assert head.tree_size == 20
            assert any(r == head for r in results)
            report = await one.verify()
            assert report.ok, report.problem

    async def test_select_scan_and_count_filter_by_position_type_stream_id_and_time(
        self, backend: Backend
    ) -> None:
        async with backend.open() as led:
            assert await led.last_position() == -1
            assert [b async for b in led.scan()] == []
            written = []
            for i in range(23):
                kind = "Attempt" if i % 3 == 0 else "DecisionMade"
                written += await led.append(NewEvent(kind, f"s-{i % 2}", {"i": i}))
            by_position = {e.position: e for e in written}
            assert await led.last_position() == written[-1].position

            every = [r async for batch in led.scan(batch=5) for r in batch]
            assert [r.position for r in every] == sorted(by_position)
            for record in every:
                envelope = by_position[record.position]
                assert record == (
                    envelope.position,
                    envelope.event_id.bytes,
                    envelope.type,
                    envelope.stream_id,
                    envelope.recorded_at_us,
                    envelope.payload,
                    envelope.stream_version,
                )
            batches = [len(b) async for b in led.scan(batch=5)]
            assert batches == [5, 5, 5, 5, 3]

            def expected(keep: Callable[[Envelope], bool]) -> list[int]:
                return [e.position for e in written if keep(e)]

            start, stop = written[4].position, written[17].position
            since, until = written[6].recorded_at_us, written[20].recorded_at_us
            picked = [e.event_id for e in written[::4]]
            cases: list[tuple[dict[str, Any], Callable[[Envelope], bool]]] = [
                ({"types": ["Attempt"]}, lambda e: e.type == "Attempt"),
                ({"stream_id": "s-1"}, lambda e: e.stream_id == "s-1"),
                ({"stop": stop}, lambda e: e.position < stop),
                ({"event_ids": picked}, lambda e: e.event_id in picked),
                (
                    {"recorded_since_us": since, "recorded_until_us": until},
                    lambda e: since <= e.recorded_at_us < until,
                ),
                (
                    {"start": start, "stop": stop, "types": ["DecisionMade"], "stream_id": "s-0"},
                    lambda e: (
                        start <= e.position < stop
                        and e.type == "DecisionMade"
                        and e.stream_id == "s-0"
                    ),
                ),
            ]
            for filters, keep in cases:
                first = filters.pop("start", 0)
                want = expected(lambda e, k=keep, f=first: e.position >= f and k(e))
                scanned = [r.position async for b in led.scan(first, batch=4, **filters) for r in b]
                assert scanned == want, filters
                assert [r.position for r in await led.select(first, 100, **filters)] == want
                assert await led.count(first, **filters) == len(want), filters
            assert [r.position for r in await led.select(start, 3)] == expected(
                lambda e: e.position >= start
            )[:3]
            with pytest.raises(InvalidEventError, match="batch must be a positive int"):
                _ = [b async for b in led.scan(batch=0)]

    async def test_scan_batches_are_the_scan_in_columns(self, backend: Backend) -> None:
        async with backend.open() as led:
            assert [b async for b in led.scan_batches()] == []
            written = []
            for i in range(23):
                kind = "Attempt" if i % 3 == 0 else "DecisionMade"
                payload = {"i": i, "text": "é\u2028\"'\\"} if i % 5 == 0 else {"i": i}
                written += await led.append(NewEvent(kind, f"s-{i % 2}-ü", payload))

            batches = [b async for b in led.scan_batches(batch=5)]
            assert [b.num_rows for b in batches] == [5, 5, 5, 5, 3]
            assert all(b.schema == EVENT_BATCH_SCHEMA for b in batches)
            rows = [tuple(row.values()) for b in batches for row in b.to_pylist()]
            assert rows == [
                (
                    e.position,
                    e.event_id.bytes,
                    e.type,
                    e.stream_id,
                    e.recorded_at_us,
                    e.payload,
                    e.stream_version,
                )
                for e in written
            ]

            start, stop = written[4].position, written[17].position
            since, until = written[6].recorded_at_us, written[20].recorded_at_us
            cases: list[dict[str, Any]] = [
                {"types": ["Attempt"]},
                {"types": ["Attempt", "DecisionMade"], "stream_id": "s-1-ü"},
                {"start": start, "stop": stop},
                {"event_ids": [e.event_id for e in written[::4]]},
                {"recorded_since_us": since, "recorded_until_us": until},
                {"start": start, "types": ["DecisionMade"], "stream_id": "s-0-ü", "stop": stop},
                {"types": ["Nothing"]},
            ]
            for filters in cases:
                first = filters.pop("start", 0)
                want = [r async for b in led.scan(first, batch=4, **filters) for r in b]
                for size in (1, 3, 100):
                    got = [
                        tuple(row.values())
                        async for b in led.scan_batches(first, batch=size, **filters)
                        for row in b.to_pylist()
                    ]
                    assert got == [tuple(r) for r in want], (filters, size)
            with pytest.raises(InvalidEventError, match="batch must be a positive int"):
                _ = [b async for b in led.scan_batches(batch=0)]

    async def test_scan_batches_of_more_rows_than_a_driver_batch(self, backend: Backend) -> None:
        # ADBC's SQLite driver returns 1,024 rows per batch by default: a page is still one
        # batch of the schema, whatever its size.
        async with backend.open() as led:
            written = await led.append([decision(i, f"s-{i % 3}") for i in range(2500)])
            batches = [b async for b in led.scan_batches(batch=2000)]
            assert [b.num_rows for b in batches] == [2000, 500]
            assert all(b.schema == EVENT_BATCH_SCHEMA for b in batches)
            positions = [p for b in batches for p in b.column("position").to_pylist()]
            assert positions == [e.position for e in written]
            payloads = [p for b in batches for p in b.column("payload").to_pylist()]
            assert payloads == [e.payload for e in written]

    async def test_a_scan_left_early_stops_reading(self, backend: Backend) -> None:
        async with backend.open() as led:
            await led.append([decision(i) for i in range(10)])
            scan = led.scan_batches(batch=2)
            first = await anext(scan)
            await scan.aclose()
            assert first.column("position").to_pylist() == [0, 1]
            # The ledger still reads and writes (nothing left holding the reader).
            await led.append(decision(10))
            assert sum([b.num_rows async for b in led.scan_batches(batch=4)]) == 11


class TestSQLite(LedgerContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)

    async def test_scan_batches_read_a_payload_stored_as_text(self, backend: Backend) -> None:
        # SQLite keeps a value's own type whatever the column's: a payload written as TEXT (by
        # hand, or by another writer) still comes as its bytes in the binary column.
        async with backend.open() as led:
            written = await led.append([decision(i) for i in range(5)])
        await backend.drop_guards()
        await backend.sql(
            "UPDATE ledger_events SET payload = CAST(payload AS TEXT) WHERE position IN (0, 3)"
        )
        assert await backend.sql(
            "SELECT typeof(payload) FROM ledger_events WHERE position = 3"
        ) == [("text",)]
        async with backend.open() as led:
            (batch,) = [b async for b in led.scan_batches()]
        assert batch.schema == EVENT_BATCH_SCHEMA
        assert batch.column("payload").to_pylist() == [e.payload for e in written]

    async def test_scan_batches_on_an_unreadable_file_is_a_store_error(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        async with backend.open() as led:
            await led.append(decision(0))
        (tmp_path / "ledger.db").write_bytes(b"not a database" * 100)
        store = SqliteStore(make_url(backend.url))
        try:
            with pytest.raises(StoreUnavailableError, match=r"reading events from .*ledger\.db"):
                await store.read_columns(page_query(store.engine.dialect), 0, 10)
        finally:
            await store.dispose()


@pytest.mark.postgres
class TestPostgres(LedgerContract):
    @pytest.fixture
    def backend(self, tmp_path: Path, pg_schema: PgSchema) -> Backend:
        return Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path)
