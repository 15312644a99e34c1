"""Completeness proofs (docs/bundles.md, "Completeness"): a bundle proves it holds every decision
of its tenant in its period. Dropping any one decision of the period — and rebuilding everything
an operator can rebuild without rewriting the log (events file, Parquet data, report, manifest)
— makes `bundle verify` fail naming completeness; an empty period is proven the same way."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from ledger import parse_verifier_key
from reports import create_bundle, verify_bundle
from reports._expect import ExpectedRows
from reports._html import render_html
from reports._report import build_report, ledger_context
from reports._schema import DATASETS, SCHEMAS
from reports._verify_data import ExpectedData
from reports._verify_result import BundleVerification
from reports._verify_zip import BundleZip
from reports._witnesses import log_note
from reports._writer import partitioning
from router.services.decisions import DecisionService
from tests.reports.support import populate
from tests.support.service_backends import Backend

EVENTS = "ledger/events.jsonl"


def _files(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(files: dict[str, bytes], target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _lines(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in files[EVENTS].decode().splitlines()]


def _about(line: dict[str, Any], dropped: set[str]) -> bool:
    if line["event_id"] in dropped:
        return True
    return line["type"] == "AttemptFinished" and json.loads(line["payload"])["decision_id"] in (
        dropped
    )


def _rebuild(
    source: Path, target: Path, key: str, dropped: set[str], *, claim: bool = True
) -> Path:
    """What an operator can do without rewriting the log: drop events from the events file,
    rebuild the Parquet data from the events that remain (with the verifier's own row builder),
    rebuild the report from that data, and rewrite the manifest (count, hashes; `claim=False`
    also removes its completeness member)."""
    files = _files(source)
    kept = [line for line in _lines(files) if not _about(line, dropped)]
    removed = sum(line["type"] == "DecisionMade" for line in _lines(files)) - sum(
        line["type"] == "DecisionMade" for line in kept
    )
    files[EVENTS] = "".join(json.dumps(line) + "\n" for line in kept).encode()
    manifest = json.loads(files["manifest.json"])
    verifier = parse_verifier_key(key)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with zipfile.ZipFile(_zip(files, work / "events.zip")) as archive:
            result = BundleVerification("rebuild")
            check = BundleZip(archive, result.problems.append)
            checkpoint = check.checkpoint(verifier)
            assert checkpoint is not None
            rows = ExpectedRows(work / "expected")
            ExpectedData(check, manifest, rows, result).run(checkpoint)
            rows.close()
        data = work / "data"
        for name in DATASETS:
            ds.write_dataset(
                rows.dataset(name).to_table(),
                data / name,
                schema=SCHEMAS[name],
                format="parquet",
                partitioning=partitioning(name),
                basename_template="part-{i}.parquet",
            )
            (data / name).mkdir(parents=True, exist_ok=True)  # an empty dataset is a folder
        files = {n: d for n, d in files.items() if not n.startswith("data/")}
        for path in sorted(data.rglob("*.parquet")):
            files["data/" + path.relative_to(data).as_posix()] = path.read_bytes()
        since, until = manifest["since"], manifest["until"]
        note = log_note(files["checkpoint.txt"].decode(), verifier.name)
        report = build_report(
            data,
            tenant=manifest["tenant"],
            since=None if since is None else datetime.fromisoformat(since),
            until=None if until is None else datetime.fromisoformat(until),
            context=ledger_context(note, key, manifest["created_at"]),
        )
        with (work / "report.json").open("w", encoding="utf-8") as handle:
            report.write_json(handle)
        files["report.json"] = (work / "report.json").read_bytes()
        files["report.html"] = render_html(report).encode("utf-8")
    manifest["decisions"] -= removed
    if not claim:
        del manifest["completeness"]
    manifest["files"] = {
        n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items()) if n != "manifest.json"
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    return _zip(files, target)


def _now() -> datetime:
    time.sleep(0.01)  # the next recorded event is strictly later than this instant
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


async def _three_periods(service: DecisionService) -> tuple[datetime, datetime]:
    """Decisions before `t1`, between `t1` and `t2`, and after `t2` (every tenant)."""
    await populate(service, rounds=1)
    t1 = _now()
    await populate(service, rounds=1)
    t2 = _now()
    await populate(service, rounds=1)
    return t1, t2


async def test_dropping_any_decision_of_the_period_fails_naming_completeness(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        t1, t2 = await _three_periods(service)
        bundle = tmp_path / "acme.zip"
        await create_bundle(service.ledger, bundle, tenant="acme", since=t1, until=t2)
        key = service.ledger.public_key()
    result = verify_bundle(bundle, key=key)
    assert result.problems == []
    assert result.decisions == 4
    proof = result.completeness
    assert proof is not None
    assert proof["stream"] == "decisions/acme"
    # The last decision before t1 (version 4), the period's four, the first after t2.
    assert (proof["first_version"], proof["last_version"]) == (4, 9)
    assert proof["proven_until"] == t2.isoformat().replace("+00:00", "Z")
    assert proof["unsequenced_before"] is None
    assert not [n for n in result.notes if "complet" in n]

    # The rebuild itself is faithful: with nothing dropped, the bundle still verifies.
    assert verify_bundle(_rebuild(bundle, tmp_path / "same.zip", key, set()), key=key).ok

    lines = _lines(_files(bundle))
    sequence = [line for line in lines if line["stream_id"] == "decisions/acme"]
    assert [line["stream_version"] for line in sequence] == list(range(4, 10))
    for line in sequence:
        for claim in (True, False):
            target = tmp_path / f"drop-{line['stream_version']}-{claim}.zip"
            found = verify_bundle(
                _rebuild(bundle, target, key, {line["event_id"]}, claim=claim), key=key
            )
            what = f"version {line['stream_version']} dropped (claim kept: {claim})"
            assert found.problems, what
            assert all(p.startswith("completeness: ") for p in found.problems), (
                what,
                found.problems,
            )
            assert found.completeness is None, what


async def test_an_empty_period_is_proven_empty(backend: Backend, tmp_path: Path) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        t1 = _now()
        t2 = _now()
        await populate(service, rounds=1)
        empty = tmp_path / "empty.zip"
        await create_bundle(service.ledger, empty, tenant="acme", since=t1, until=t2)
        never = tmp_path / "never.zip"
        await create_bundle(service.ledger, never, tenant="hooli", since=t1, until=t2)
        key = service.ledger.public_key()
    result = verify_bundle(empty, key=key)
    assert result.problems == []
    assert result.decisions == 0
    assert result.completeness is not None
    assert (result.completeness["first_version"], result.completeness["last_version"]) == (4, 5)
    # Either boundary dropped: the emptiness is no longer proven.
    for line in _lines(_files(empty)):
        if line["stream_id"] == "decisions/acme":
            target = tmp_path / f"empty-{line['stream_version']}.zip"
            found = verify_bundle(_rebuild(empty, target, key, {line["event_id"]}), key=key)
            assert found.problems
            assert all(p.startswith("completeness: ") for p in found.problems)

    # A tenant with no decision at all: its sequence starts with the bundle's seal.
    result = verify_bundle(never, key=key)
    assert result.problems == []
    assert result.decisions == 0
    assert result.completeness is not None
    assert (result.completeness["first_version"], result.completeness["last_version"]) == (1, 1)
    assert any("could only be unsequenced ones of release 0.1.0" in n for n in result.notes)


async def test_an_open_period_is_sealed_and_proven_up_to_the_seal(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        bundle = tmp_path / "open.zip"
        await create_bundle(service.ledger, bundle, tenant="acme")
        (seal,) = await service.ledger.stream("decisions/acme", 5, 10)
        key = service.ledger.public_key()
    assert seal.type == "DecisionsSealed"
    assert seal.payload_json() == {"schema": "unhardcoded.decisions-sealed/1", "tenant": "acme"}
    result = verify_bundle(bundle, key=key)
    assert result.problems == []
    assert result.decisions == 4
    assert result.completeness is not None
    assert result.completeness["proven_until"] == seal.recorded_at.isoformat().replace(
        "+00:00", "Z"
    )
    assert any(n.startswith("complete up to ") for n in result.notes)
    # Dropping the seal: nothing proves the last decision is the last one.
    found = verify_bundle(
        _rebuild(bundle, tmp_path / "unsealed.zip", key, {str(seal.event_id)}), key=key
    )
    assert any("nothing proves" in p for p in found.problems), found.problems


async def test_concurrent_routers_keep_one_gapless_sequence_per_tenant(backend: Backend) -> None:
    """Two routers (each its own ledger connection and group committer) deciding for one tenant
    at once: one sequence, versions 1..n with no gap or repeat, time never decreasing."""
    from router.core import NoEntryPasses, Policy
    from router.services.catalogs import bundled_catalog, bundled_policy_document

    catalog = bundled_catalog()
    async with backend.service() as first, backend.service() as second:
        await first.publish_catalog(catalog)
        policy = Policy.from_json(bundled_policy_document("enterprise-eu"), catalog.schema)

        async def one(service: DecisionService) -> None:
            with contextlib.suppress(NoEntryPasses):  # recorded all the same
                await service.decide("acme", policy, catalog)

        async def decide(service: DecisionService, n: int) -> None:
            for _ in range(n):
                await asyncio.gather(*(one(service) for _ in range(8)))

        await asyncio.gather(decide(first, 6), decide(second, 6))
        events = await first.ledger.stream("decisions/acme", 1, 1000)
    assert [e.stream_version for e in events] == list(range(1, 97))
    assert [e.position for e in events] == sorted(e.position for e in events)
    times = [e.recorded_at_us for e in events]
    assert times == sorted(times)


async def test_a_bundle_stripped_of_its_whole_sequence_is_not_proven_complete(
    backend: Backend, tmp_path: Path
) -> None:
    """Leaving out every event of the sequence (and the manifest's claim) leaves a bundle that
    looks like one of an earlier release: it verifies with the note, and fails when the auditor
    requires completeness."""
    async with backend.service() as service:
        t1, t2 = await _three_periods(service)
        bundle = tmp_path / "acme.zip"
        await create_bundle(service.ledger, bundle, tenant="acme", since=t1, until=t2)
        key = service.ledger.public_key()
    sequence = {
        line["event_id"] for line in _lines(_files(bundle)) if line["stream_id"] == "decisions/acme"
    }
    stripped = _rebuild(bundle, tmp_path / "stripped.zip", key, sequence, claim=False)
    result = verify_bundle(stripped, key=key)
    assert result.problems == []
    assert result.decisions == 0
    assert any(n.startswith("completeness is not proven") for n in result.notes)
    required = verify_bundle(stripped, key=key, require_complete=True)
    assert required.problems == ["completeness: not proven, and required (--require-complete)"]
    assert verify_bundle(bundle, key=key, require_complete=True).ok
