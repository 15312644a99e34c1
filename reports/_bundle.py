"""`create_bundle`: one zip an auditor receives (docs/bundles.md): the Parquet data, the ledger
events it was built from with an inclusion proof each against one signed checkpoint, the
policies and catalogs referenced, the verifier key, the report, and a manifest of SHA-256s."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ledger import Envelope, Ledger, SignedCheckpoint
from reports._errors import ReportsError
from reports._events import event_line
from reports._export import Progress, export_parquet
from reports._html import render_html
from reports._report import build_report, ledger_context
from reports._sequence import at_us, plan_sequence
from router.services.decisions import (
    ATTEMPT_FINISHED,
    CATALOG_PUBLISHED,
    DECISION_MADE,
    POLICY_RECORDED,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BundleSummary",
    "create_bundle",
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

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "bundle": str(self.path),
            "decisions": self.decisions,
            "events": self.events,
            "tree_size": self.tree_size,
            "files": self.files,
        }


async def _checkpoint_covering(ledger: Ledger, last: int) -> SignedCheckpoint:
    await ledger.sequence()
    head = await ledger.latest_checkpoint()
    if head is None or head.tree_size <= last:
        raise ReportsError(
            f"no signed checkpoint covers ledger position {last} yet (another process is "
            "sequencing the ledger right now): run the command again"
        )
    return head


class _Events:
    """The exported events, kept in position order without holding them all: decisions and
    attempts arrive in position order and go to a file (as their `events.jsonl` line without the
    proof); the catalogs, policies and outcomes they refer to (few, and fetched out of order)
    stay in memory until the merge."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "events.partial.jsonl"
        self._file: IO[bytes] | None = self.path.open("wb")
        self.references: dict[int, Envelope] = {}
        self.last = -1

    def __call__(self, envelope: Envelope) -> None:
        if envelope.type in (DECISION_MADE, ATTEMPT_FINISHED):
            assert self._file is not None
            self._file.write(_compact(event_line(envelope, {})) + b"\n")
        else:
            self.references[envelope.position] = envelope
        self.last = max(self.last, envelope.position)

    def close(self) -> None:
        """Finish the file of decisions and attempts."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _recorded(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as handle:
            for line in handle:
                yield json.loads(line)

    def in_order(self) -> Iterator[dict[str, Any]]:
        """Every event's line (without its proof), by position."""
        references = (event_line(self.references[p], {}) for p in sorted(self.references))
        return heapq.merge(references, self._recorded(), key=lambda line: line["position"])


def _compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


_PROOF_BATCH = 4096
"""Events whose inclusion proofs are read together (their paths share most nodes)."""


async def _write_proofs(
    ledger: Ledger, events: _Events, last: int, target: Path
) -> tuple[SignedCheckpoint, int]:
    """`ledger/events.jsonl` into `target`: every event with its inclusion proof against one
    signed checkpoint, the proofs of a batch of events read together."""
    head = await _checkpoint_covering(ledger, last)
    count = 0
    with target.open("wb") as out:
        lines = events.in_order()
        while batch := list(itertools.islice(lines, _PROOF_BATCH)):
            proofs = await ledger.inclusion_proofs(
                [line["position"] for line in batch], head.tree_size
            )
            for line, proof in zip(batch, proofs, strict=True):
                line["proof"] = proof.document()
                out.write(_compact(line) + b"\n")
            count += len(batch)
    return head, count


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
    # The completeness proof first: it may seal the tenant's sequence, and the data then stops
    # exactly where the proof does (docs/bundles.md, "Completeness").
    sequence = await plan_sequence(ledger, tenant, since, until)
    with tempfile.TemporaryDirectory(prefix="unhardcoded-bundle-") as tmp:
        work = Path(tmp)
        export = work / "data"
        events = _Events(work)
        try:
            summary = await export_parquet(
                ledger,
                export,
                tenant=tenant,
                since=since,
                until=at_us(sequence.cut_us),
                progress=progress,
                sink=events,
            )
        finally:
            events.close()
        for envelope in sequence.boundaries:
            events.references[envelope.position] = envelope
            events.last = max(events.last, envelope.position)
        files: dict[str, bytes | Path] = {}
        proofs = work / "events.jsonl"
        if events.last >= 0:
            head, count = await _write_proofs(ledger, events, events.last, proofs)
        else:
            head, count = await _checkpoint_covering(ledger, -1), 0
            proofs.write_bytes(b"")
        note = head.note if cosigned is None else await cosigned(head)
        files[CHECKPOINT] = note.encode("utf-8")
        files[PUBLIC_KEY] = (head.verifier_key + "\n").encode("utf-8")
        files[EVENTS] = proofs
        for envelope in events.references.values():
            payload = envelope.payload_json()
            if envelope.type == POLICY_RECORDED:
                files[f"policies/{payload['digest']}.json"] = _pretty(payload["policy"])
            elif envelope.type == CATALOG_PUBLISHED:
                files[f"catalogs/{payload['version']}.json"] = _pretty(payload["catalog"])
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
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w") as archive:
            _write(archive, MANIFEST, manifest_bytes(manifest))
            for name, content in sorted(files.items()):
                _write(archive, name, content)
    return BundleSummary(target, summary.decisions, count, head.tree_size, len(files) + 1)


def _pretty(document: Any) -> bytes:
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
