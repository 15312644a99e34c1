"""`create_bundle`: one zip an auditor receives (docs/bundles.md): the Parquet data, the ledger
events it was built from with an inclusion proof each against one signed checkpoint, the
policies and catalogs referenced, the verifier key, the report, and a manifest of SHA-256s."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ledger import Envelope, Ledger, SignedCheckpoint
from reports._errors import ReportsError
from reports._events import event_line
from reports._export import Progress, export_parquet
from reports._folderproof import covering_checkpoint
from reports._html import render_html
from reports._report import build_report, ledger_context
from reports._sequence import at_us, plan_sequence
from reports._writer import open_dataset
from router.services.decisions import (
    CATALOG_PUBLISHED,
    POLICY_RECORDED,
    catalog_stream,
    outcome_stream,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BundleSummary",
    "create_bundle",
    "document_file",
    "event_line",
    "manifest_bytes",
]

BUNDLE_FORMAT = "unhardcoded-audit-bundle/1"
"""The manifest's `format`."""

MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.txt"
PUBLIC_KEY = "public_key.txt"
EVENTS = "ledger/events.jsonl"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
DATA = "data/"

_EPOCH = (1980, 1, 1, 0, 0, 0)
_COPY = 1 << 20


def _utc(at: datetime | None) -> datetime | None:
    """`at` in UTC (a naive time is taken as UTC)."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def manifest_bytes(document: dict[str, Any]) -> bytes:
    """The manifest's bytes (sorted keys, two-space indent, final newline)."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


@dataclass(frozen=True)
class BundleSummary:
    """What a bundle holds."""

    path: Path
    decisions: int
    events: int
    tree_size: int
    files: int
    note: str | None = None
    """Why the bundle holds no decisions, when it holds none (it then proves that there are
    none: its completeness proof spans the period)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        out: dict[str, Any] = {
            "bundle": str(self.path),
            "decisions": self.decisions,
            "events": self.events,
            "tree_size": self.tree_size,
            "files": self.files,
        }
        if self.note is not None:
            out["note"] = self.note
        return out


_BATCH = 4096
"""Events read, and their inclusion proofs assembled, together (their paths share most nodes)."""


def _compact(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _exported_positions(export: Path) -> npt.NDArray[np.int64]:
    """The ledger positions of the exported decisions and attempts, in order (8 bytes each)."""
    found = [
        batch.column(0).to_numpy()
        for name in ("decisions", "attempts")
        for batch in open_dataset(export, name).to_batches(columns=["position"])
    ]
    return np.unique(np.concatenate([np.zeros(0, np.int64), *found]))


async def _references(ledger: Ledger, export: Path) -> list[Envelope]:
    """The `CatalogPublished`, `PolicyRecorded` and `OutcomeRecorded` events the exported
    decisions refer to (the export checked each against the digest its decisions record)."""
    decisions = open_dataset(export, "decisions").to_table(
        columns=["catalog_version", "policy_fingerprint", "policy_ir_version", "outcome_digest"]
    )
    streams: set[str] = set()
    for version in pc.unique(decisions.column("catalog_version")).to_pylist():
        streams.add(catalog_stream(version))
    for digest in pc.unique(decisions.column("outcome_digest")).to_pylist():
        streams.add(outcome_stream(digest))
    policies = decisions.select(["policy_fingerprint", "policy_ir_version"]).group_by(
        ["policy_fingerprint", "policy_ir_version"]
    )
    for row in policies.aggregate([]).to_pylist():
        # The policy's stream is its fingerprint as the decisions record it (IR version added).
        version = row["policy_ir_version"]
        fingerprint = row["policy_fingerprint"]
        streams.add(fingerprint if version is None else f"{fingerprint} ({version})")
    found = []
    for stream in sorted(streams):
        (first,) = await ledger.stream(stream, 1, 1)
        found.append(first)
    return found


async def _write_events(
    ledger: Ledger,
    positions: npt.NDArray[np.int64],
    held: dict[int, Envelope],
    tree_size: int,
    target: Path,
) -> int:
    """`ledger/events.jsonl` into `target`: the events at `positions` (read from the ledger) and
    those `held` already, in position order, each with its inclusion proof in the tree of
    `tree_size` leaves; a batch of events and their proofs read together."""
    everything = np.union1d(positions, np.array(sorted(held), np.int64))
    with target.open("wb") as out:
        for low in range(0, len(everything), _BATCH):
            batch: list[int] = everything[low : low + _BATCH].tolist()
            read = await ledger.envelopes([p for p in batch if p not in held])
            envelopes = {e.position: e for e in read} | {p: held[p] for p in batch if p in held}
            proofs = await ledger.inclusion_proofs(batch, tree_size)
            for position, proof in zip(batch, proofs, strict=True):
                out.write(_compact(event_line(envelopes[position], proof.document())) + b"\n")
    return len(everything)


async def create_bundle(
    ledger: Ledger,
    out: Path | str,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
    cosigned: Callable[[SignedCheckpoint], Awaitable[str]] | None = None,
) -> BundleSummary:
    """Write the audit bundle of `tenant`'s decisions in [`since`, `until`) to `out` (a zip).

    `cosigned` gives the checkpoint's note with its witness cosignatures (docs/witness.md);
    without it `checkpoint.txt` holds the log's signature only."""
    target = Path(out)
    if target.suffix.lower() != ".zip":
        raise ReportsError(f"{target}: the bundle file name must end in .zip")
    # The manifest and the report state the period in UTC, and `bundle verify` rebuilds the
    # report from the manifest's: both must be built from the same UTC instants.
    since, until = _utc(since), _utc(until)
    # The folder is there before the work starts, not found missing at the end of it.
    target.parent.mkdir(parents=True, exist_ok=True)
    # The completeness proof first: it may seal the tenant's sequence, and the data then stops
    # exactly where the proof does (docs/bundles.md, "Completeness").
    sequence = await plan_sequence(ledger, tenant, since, until)
    with tempfile.TemporaryDirectory(prefix="unhardcoded-bundle-") as tmp:
        work = Path(tmp)
        export = work / "data"
        summary = await export_parquet(
            ledger,
            export,
            tenant=tenant,
            since=since,
            until=at_us(sequence.cut_us),
            progress=progress,
        )
        # The events behind the data: its decisions and attempts (by position), what they
        # refer to, and the boundaries of the tenant's sequence.
        positions = _exported_positions(export)
        references = await _references(ledger, export)
        held = {e.position: e for e in [*references, *sequence.boundaries]}
        last = max([-1, *held, *positions[-1:].tolist()])
        # What the export held and freed goes back to the system before the report is built.
        pa.default_memory_pool().release_unused()
        head = await covering_checkpoint(ledger, last)
        proofs = work / "events.jsonl"
        count = await _write_events(ledger, positions, held, head.tree_size, proofs)
        files: dict[str, bytes | Path] = {}
        signed = head.note if cosigned is None else await cosigned(head)
        files[CHECKPOINT] = signed.encode("utf-8")
        files[PUBLIC_KEY] = (head.verifier_key + "\n").encode("utf-8")
        files[EVENTS] = proofs
        for envelope in references:
            payload = envelope.payload_json()
            if envelope.type == POLICY_RECORDED:
                files[f"policies/{payload['digest']}.json"] = document_file(payload["policy"])
            elif envelope.type == CATALOG_PUBLISHED:
                files[f"catalogs/{payload['version']}.json"] = document_file(payload["catalog"])
        for path in sorted(export.rglob("*.parquet")):
            files[DATA + path.relative_to(export).as_posix()] = path
        created_at = _iso(datetime.now(UTC))
        assert created_at is not None
        context = ledger_context(head.note, head.verifier_key, created_at)
        report = build_report(export, tenant=tenant, since=since, until=until, context=context)
        report_json = work / "report.json"
        with report_json.open("w", encoding="utf-8") as handle:
            report.write_json(handle)
        files[REPORT_JSON] = report_json
        files[REPORT_HTML] = render_html(report).encode("utf-8")
        manifest = {
            "format": BUNDLE_FORMAT,
            "tenant": tenant,
            "since": _iso(since),
            "until": _iso(until),
            "created_at": created_at,
            "origin": ledger.origin,
            "tree_size": head.tree_size,
            "decisions": summary.decisions,
            "completeness": sequence.manifest(),
            "files": {name: _sha256(content) for name, content in sorted(files.items())},
        }
        with zipfile.ZipFile(target, "w") as archive:
            _write(archive, MANIFEST, manifest_bytes(manifest))
            for name, content in sorted(files.items()):
                _write(archive, name, content)
    note = summary.empty_note(tenant, since, until)
    return BundleSummary(target, summary.decisions, count, head.tree_size, len(files) + 1, note)


def document_file(document: Any) -> bytes:
    """The bytes of a bundled policy or catalog file: its document as the ledger recorded it,
    indented, keys sorted."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha256(content: bytes | Path) -> str:
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    with content.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write(archive: zipfile.ZipFile, name: str, content: bytes | Path) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    # Parquet files are compressed already; the text files deflate well.
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
    if isinstance(content, bytes):
        archive.writestr(info, content)
        return
    with content.open("rb") as source, archive.open(info, "w", force_zip64=True) as sink:
        shutil.copyfileobj(source, sink, _COPY)
