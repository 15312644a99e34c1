"""The verifier's column-wise paths give the answers of the definitions they stand in for: the
report's per-decision list rendered in DuckDB is the report writer's bytes, and a batch of event
lines is accepted at once exactly when every line passes `read_events`."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from ledger import parse_verifier_key
from reports import build_report, create_bundle, export_parquet
from reports._events import read_events
from reports._verify_events import EventReader
from reports._verify_listing import listing_digest
from reports._verify_zip import BundleZip
from tests.reports.support import populate
from tests.support.service_backends import Backend

EVENTS = "ledger/events.jsonl"


async def test_the_listing_rendered_in_duckdb_is_the_writers_bytes(
    backend: Backend, tmp_path: Path
) -> None:
    """Decisions with and without attempts, previews, decisions no entry passed: each tenant's
    report.json hashes the same whether written by the report or rendered column-wise."""
    async with backend.service() as service:
        done = await populate(service, rounds=2)
        await export_parquet(service.ledger, tmp_path / "x")
    for tenant in sorted({d.tenant for d in done.decisions}):
        report = build_report(tmp_path / "x", tenant=tenant)
        out = io.StringIO()
        report.write_json(out)
        written = out.getvalue()
        assert '"attempts":[{' in written or tenant != "acme"
        assert listing_digest(report) == hashlib.sha256(written.encode("utf-8")).hexdigest()


async def test_a_batch_is_accepted_at_once_exactly_when_every_line_passes(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        out = tmp_path / "acme.zip"
        await create_bundle(service.ledger, out, tenant="acme")
        key = parse_verifier_key(service.ledger.public_key())
    with zipfile.ZipFile(out) as archive:
        problems: list[str] = []
        checkpoint = BundleZip(archive, problems.append).checkpoint(key)
        lines = archive.read(EVENTS).splitlines()
    assert checkpoint is not None
    assert EventReader(EVENTS, checkpoint, problems.append)._accept(lines) is not None
    reference = list(read_events(EVENTS, lines, checkpoint, problems.append))
    assert problems == []
    changes = {
        "payload": lambda line: {**line, "payload": line["payload"] + " "},
        "a member too many": lambda line: {**line, "extra": 1},
        "position as a boolean": lambda line: {**line, "position": True},
        "uppercase hex": lambda line: {**line, "leaf_hash": line["leaf_hash"].upper()},
        "event id not canonical": lambda line: {**line, "event_id": line["event_id"].upper()},
        "another proof path": lambda line: {
            **line,
            "proof": {**line["proof"], "hashes": list(reversed(line["proof"]["hashes"]))},
        },
        "a forged attachment": lambda line: {**line, "attachments": {"body": "00" * 32}},
    }
    for what, change in changes.items():
        for at in (0, len(lines) // 2, len(lines) - 1):
            edited = list(lines)
            edited[at] = json.dumps(change(json.loads(lines[at]))).encode()
            assert EventReader(EVENTS, checkpoint, problems.append)._accept(edited) is None, what
            found: list[str] = []
            batches = EventReader(EVENTS, checkpoint, found.append).batches([b"\n".join(edited)])
            kept = sum(len(batch) for batch in batches)
            assert found, what
            assert f"line {at + 1}" in found[0], (what, found)
            assert kept < len(reference), what


@pytest.mark.parametrize("size", [1, 5])
async def test_batches_split_anywhere_read_the_same_events(
    backend: Backend, tmp_path: Path, size: int
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        out = tmp_path / "acme.zip"
        await create_bundle(service.ledger, out, tenant="acme")
        key = parse_verifier_key(service.ledger.public_key())
    with zipfile.ZipFile(out) as archive:
        checkpoint = BundleZip(archive, print).checkpoint(key)
        raw = archive.read(EVENTS)
    blocks = [raw[i : i + size * 97] for i in range(0, len(raw), size * 97)]
    found: list[str] = []
    batches = list(EventReader(EVENTS, checkpoint, found.append).batches(blocks))
    assert found == []
    assert sum(len(b) for b in batches) == raw.count(b"\n")
