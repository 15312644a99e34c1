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

from ledger import Checkpoint, check_event_lines, parse_verifier_key
from reports import build_report, create_bundle, export_parquet
from reports._events import EVENT_FIELDS, read_events
from reports._verify_events import EventReader, check_pool
from reports._verify_listing import listing_digest
from reports._verify_zip import BundleZip
from tests.reports.support import populate
from tests.support.service_backends import Backend

EVENTS = "ledger/events.jsonl"


async def _acme_events(backend: Backend, tmp_path: Path) -> tuple[Checkpoint, bytes]:
    """The signed checkpoint and the event lines of a bundle of tenant acme's decisions."""
    async with backend.service() as service:
        await populate(service, rounds=1)
        out = tmp_path / "acme.zip"
        await create_bundle(service.ledger, out, tenant="acme")
        key = parse_verifier_key(service.ledger.public_key())
    with zipfile.ZipFile(out) as archive:
        checkpoint = BundleZip(archive, print).checkpoint(key)
        raw = archive.read(EVENTS)
    assert checkpoint is not None
    return checkpoint, raw


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
    checkpoint, raw = await _acme_events(backend, tmp_path)
    lines = raw.splitlines()
    problems: list[str] = []
    size, root = checkpoint.size, checkpoint.root
    checked = check_event_lines(b"\n".join(lines), None, size, root, EVENT_FIELDS)
    assert checked is not None
    assert checked.positions == [json.loads(line)["position"] for line in lines]
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
            block = b"\n".join(edited)
            assert check_event_lines(block, None, size, root, EVENT_FIELDS) is None, what
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
    checkpoint, raw = await _acme_events(backend, tmp_path)
    blocks = [raw[i : i + size * 97] for i in range(0, len(raw), size * 97)]
    found: list[str] = []
    batches = list(EventReader(EVENTS, checkpoint, found.append).batches(blocks))
    assert found == []
    assert sum(len(b) for b in batches) == raw.count(b"\n")


def _tampered_lines(lines: list[bytes], at: int, what: str) -> list[bytes]:
    line = json.loads(lines[at])
    if what == "chain_hash":  # also what the next line's link is checked from
        line["chain_hash"] = hashlib.sha256(line["chain_hash"].encode()).hexdigest()
    elif what == "payload":
        line["payload"] += " "
    elif what == "proof":
        line["proof"]["hashes"] = list(reversed(line["proof"]["hashes"]))
    else:  # not an event line at all
        return [*lines[:at], b"{not json", *lines[at + 1 :]]
    return [*lines[:at], json.dumps(line).encode(), *lines[at + 1 :]]


@pytest.mark.parametrize("what", ["chain_hash", "payload", "proof", "not json"])
async def test_checks_in_worker_processes_name_what_one_by_one_names(
    backend: Backend, tmp_path: Path, what: str
) -> None:
    """Lines checked in parts by a pool of two processes, several batches ahead: the events
    kept and the problems named are exactly those of `read_events` over the whole file, for a
    valid file and for one tampered line at the start, the middle and the end of a batch and of
    a worker's part (the state a batch was checked from is then not the one its predecessor
    left, and the batch is checked again)."""
    checkpoint, raw = await _acme_events(backend, tmp_path)
    lines = raw.splitlines()
    assert len(lines) > 12
    cases = [lines] + [_tampered_lines(lines, at, what) for at in (0, 2, 3, 7, 8, len(lines) - 1)]
    with check_pool(2) as pool:
        for edited in cases:
            raw = b"\n".join(edited) + b"\n"
            want: list[str] = []
            kept = [
                e.position
                for e in read_events(EVENTS, raw.splitlines(True), checkpoint, want.append)
            ]
            for executor in (pool, None):
                found: list[str] = []
                reader = EventReader(EVENTS, checkpoint, found.append, executor, size=8, part=3)
                batches = list(
                    reader.batches([raw[i : i + 1000] for i in range(0, len(raw), 1000)])
                )
                assert found == want
                assert [p for b in batches for p in b.positions] == kept
                assert [b.envelope(i) for b in batches for i in range(len(b))] == list(
                    read_events(EVENTS, raw.splitlines(True), checkpoint, lambda _: None)
                )
