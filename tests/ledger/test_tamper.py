"""Mutation sweep: with the immutability triggers dropped by hand, every kind of tampering with
the stored rows is caught by `verify`, which names the position."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, NewEvent, merkle
from ledger._format import chain_hash, leaf_data
from tests.conftest import PgSchema
from tests.ledger._backends import Backend, decision

SIGNED = 30  # events covered by the checkpoint
TOTAL = 36  # six more after it (chain-checked, not yet in the tree)
TARGET = 17
UNSIGNED = SIGNED + 2  # an event after the checkpoint

COLUMNS = (
    "position",
    "event_id",
    "type",
    "stream_id",
    "stream_version",
    "recorded_at_us",
    "payload",
    "payload_digest",
    "attachments",
    "prev_hash",
    "chain_hash",
    "leaf_hash",
)
HASHED = [c for c in COLUMNS if c != "position"]


@dataclass
class Case:
    name: str
    tamper: Callable[[Backend], Awaitable[None]]
    positions: tuple[int, ...]  # where verify may point (the bad row, or the subtree holding it)
    text: str


def _flip(value: Any) -> Any:
    if isinstance(value, bool | None):
        raise AssertionError(value)
    if isinstance(value, int):
        return value ^ 0x10000  # one bit, far from any neighbour's value
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ 1)
    raw = bytearray(value)
    raw[len(raw) // 2] ^= 0x01
    return bytes(raw)


async def _row(backend: Backend, position: int) -> dict[str, Any]:
    cols = ", ".join(COLUMNS)
    (row,) = await backend.sql(f"SELECT {cols} FROM ledger_events WHERE position = {position}")
    return {
        c: (bytes(v) if isinstance(v, bytes | memoryview) else v)
        for c, v in zip(COLUMNS, row, strict=True)
    }


async def _insert(backend: Backend, row: dict[str, Any]) -> None:
    cols = ", ".join(row)
    params = ", ".join(f":{c}" for c in row)
    await backend.sql(f"INSERT INTO ledger_events ({cols}) VALUES ({params})", row)


def _forge(row: dict[str, Any], prev: bytes, payload: bytes) -> dict[str, Any]:
    """A row that is internally consistent (digest, chain, leaf) with a different payload."""
    forged = dict(row, payload=payload, payload_digest=hashlib.sha256(payload).digest())
    data = leaf_data(
        forged["position"],
        forged["event_id"],
        forged["recorded_at_us"],
        forged["stream_version"],
        forged["payload_digest"],
        prev,
        forged["type"].encode(),
        forged["stream_id"].encode(),
        forged["attachments"],
    )
    return dict(
        forged, prev_hash=prev, chain_hash=chain_hash(prev, data), leaf_hash=merkle.leaf_hash(data)
    )


# The field each one-column tampering is refused on: the first check it fails.
REFUSED_FIELD = {
    "payload": "payload_digest does not match the payload",
    "payload_digest": "payload_digest does not match the payload",
    "prev_hash": f"prev_hash is not the chain_hash of position {TARGET - 1}",
    "leaf_hash": "leaf_hash does not match the envelope",
}


def _column_case(column: str) -> Case:
    async def tamper(backend: Backend) -> None:
        value = (await _row(backend, TARGET))[column]
        await backend.sql(
            f"UPDATE ledger_events SET {column} = :v WHERE position = {TARGET}", {"v": _flip(value)}
        )

    text = REFUSED_FIELD.get(column, "chain_hash does not match the envelope")
    return Case(f"one byte of {column}", tamper, (TARGET,), text)


async def _delete(backend: Backend) -> None:
    await backend.sql(f"DELETE FROM ledger_events WHERE position = {TARGET}")


async def _swap(backend: Backend) -> None:
    a, b = await _row(backend, 10), await _row(backend, 20)
    await backend.sql("DELETE FROM ledger_events WHERE position IN (10, 20)")
    await _insert(backend, dict(b, position=10))
    await _insert(backend, dict(a, position=20))


async def _forged_tail(backend: Backend) -> None:
    last = await _row(backend, TOTAL - 1)
    row = dict(last, position=TOTAL, event_id=uuid.uuid4().bytes, stream_id="forged")
    await _insert(backend, dict(row, chain_hash=bytes(32), leaf_hash=bytes(32)))


async def _forged_replacement(backend: Backend) -> None:
    row = await _row(backend, TARGET)
    await _delete(backend)
    await _insert(backend, _forge(row, row["prev_hash"], b'{"forged":true}'))


async def _rewrite_history(backend: Backend) -> None:
    """Rewrite one event and re-chain everything after it: only the tree can tell."""
    rows = [await _row(backend, p) for p in range(TARGET, TOTAL)]
    await backend.sql(f"DELETE FROM ledger_events WHERE position >= {TARGET}")
    prev = rows[0]["prev_hash"]
    for i, row in enumerate(rows):
        payload = b'{"forged":true}' if i == 0 else row["payload"]
        forged = _forge(row, prev, payload)
        await _insert(backend, forged)
        prev = forged["chain_hash"]


async def _rechain_unsigned(backend: Backend, **change: Any) -> None:
    """Change one event past the checkpoint and re-chain everything after it: the tree does not
    cover those events yet, so only the per-event checks can tell."""
    rows = [await _row(backend, p) for p in range(UNSIGNED, TOTAL)]
    await backend.sql(f"DELETE FROM ledger_events WHERE position >= {UNSIGNED}")
    prev = rows[0]["prev_hash"]
    for i, row in enumerate(rows):
        forged = _forge(dict(row, **change) if i == 0 else row, prev, row["payload"])
        await _insert(backend, forged)
        prev = forged["chain_hash"]


async def _skipped_version(backend: Backend) -> None:
    version = (await _row(backend, UNSIGNED))["stream_version"]
    await _rechain_unsigned(backend, stream_version=version + 10)  # clear of the stream's next


async def _time_backwards(backend: Backend) -> None:
    # Ten seconds before the stream's previous event (three positions earlier): a tenant's
    # decision sequence proves completeness only while time never decreases along it.
    before = (await _row(backend, UNSIGNED - 3))["recorded_at_us"]
    await _rechain_unsigned(backend, recorded_at_us=before - 10_000_000)


async def _short_event_id(backend: Backend) -> None:
    # The leaf data's fixed-size field pads a 15-byte id with a zero byte: the hashes agree.
    await _rechain_unsigned(backend, event_id=uuid.uuid4().bytes[:15])


async def _forged_checkpoint_note(backend: Backend) -> None:
    query = "SELECT note FROM ledger_checkpoints WHERE tree_size = :n"
    ((note,),) = await backend.sql(query, {"n": SIGNED})
    await backend.sql(
        "UPDATE ledger_checkpoints SET note = :note WHERE tree_size = :n",
        {"note": note.replace(f"\n{SIGNED}\n", f"\n{SIGNED + 1}\n", 1), "n": SIGNED},
    )


async def _tamper_node(backend: Backend) -> None:
    await backend.sql(
        "UPDATE ledger_merkle_nodes SET hash = :h WHERE level = 2 AND idx = 4", {"h": bytes(32)}
    )


async def _tamper_checkpoint(backend: Backend) -> None:
    await backend.sql(
        "UPDATE ledger_checkpoints SET root_hash = :h WHERE tree_size = :n",
        {"h": bytes(32), "n": SIGNED},
    )


async def _drop_checkpoint_rows(backend: Backend) -> None:
    await backend.sql(f"DELETE FROM ledger_events WHERE position >= {SIGNED - 2}")


COLUMN_CASES = [_column_case(c) for c in HASHED]
CASES = [
    *COLUMN_CASES,
    Case("a deleted row", _delete, (TARGET,), "missing"),
    Case("two swapped rows", _swap, (10,), ""),
    Case("a forged row at the end", _forged_tail, (TOTAL,), ""),
    Case("a forged row in place of a deleted one", _forged_replacement, (16, 17, 18), ""),
    Case("a rewritten, re-chained history", _rewrite_history, (16,), "Merkle node"),
    Case("a tampered Merkle node", _tamper_node, (16,), "Merkle node"),
    Case("a tampered checkpoint root", _tamper_checkpoint, (), "checkpoint at tree size 30"),
    Case("rows a checkpoint signs, deleted", _drop_checkpoint_rows, (SIGNED - 2,), "checkpoint"),
    Case("a skipped stream version, re-chained", _skipped_version, (UNSIGNED,), "follows version"),
    Case(
        "a time going backwards along a stream, re-chained",
        _time_backwards,
        (UNSIGNED,),
        "time goes backwards along the stream",
    ),
    Case("a 15-byte event id, re-chained", _short_event_id, (UNSIGNED,), "not 16 bytes"),
    Case("a checkpoint note rewritten", _forged_checkpoint_note, (), "does not open"),
]


async def fill(led: Ledger) -> None:
    """The sweep's ledger: SIGNED events (some with attachments) signed in checkpoints of 8,
    then unsigned ones up to TOTAL, over three streams."""
    for i in range(SIGNED):
        attachments = {"body": b"request %d" % i} if i % 4 == 1 else {}
        await led.append(NewEvent("DecisionMade", f"fp-{i % 3}", {"i": i}, attachments))
    await led.sequence(max_leaves=8)
    for i in range(SIGNED, TOTAL):
        await led.append(decision(i, f"fp-{i % 3}"))


class SweepContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
    async def test_verify_catches_it(self, backend: Backend, case: Case) -> None:
        async with backend.open() as led:
            await fill(led)
            assert (await led.verify(chunk=7)).ok
            await backend.drop_guards()
            await case.tamper(backend)
            report = await led.verify(chunk=7)
        assert report.problem is not None, f"{case.name} went unnoticed"
        if case.positions:
            assert report.problem.position in case.positions, report.problem
        else:
            assert report.problem.position is None, report.problem
        assert case.text in str(report.problem)

    @pytest.mark.parametrize("case", COLUMN_CASES, ids=lambda c: c.name)
    async def test_a_refusal_names_the_event_and_the_field(
        self, backend: Backend, case: Case
    ) -> None:
        async with backend.open() as led:
            await fill(led)
            await backend.drop_guards()
            await case.tamper(backend)
            report = await led.verify(chunk=7)
        event = uuid.UUID(bytes=(await _row(backend, TARGET))["event_id"])
        assert str(report.problem) == f"position {TARGET}: event {event}: {case.text}"


class TestSweepSQLite(SweepContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


@pytest.mark.postgres
class TestSweepPostgres(SweepContract):
    @pytest.fixture
    def backend(self, tmp_path: Path, pg_schema: PgSchema) -> Backend:
        return Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path)
