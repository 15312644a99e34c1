"""`create_bundle`: one zip an auditor receives (docs/bundles.md): the Parquet data, the ledger
events it was built from with an inclusion proof each against one signed checkpoint, the
policies and catalogs referenced, the verifier key, the report, and a manifest of SHA-256s."""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import Envelope, Ledger, SignedCheckpoint
from reports._errors import ReportsError
from reports._export import Progress, export_parquet
from reports._html import render_html
from reports._report import build_report
from router.services.decisions import CATALOG_PUBLISHED, POLICY_RECORDED

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


def _utc(at: datetime | None) -> datetime | None:
    """`at` in UTC (a naive time is taken as UTC)."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_line(envelope: Envelope, proof: dict[str, Any]) -> dict[str, Any]:
    """One line of `ledger/events.jsonl`: the envelope fields that make the leaf, the exact
    payload text, and the event's inclusion proof document."""
    return {
        "position": envelope.position,
        "event_id": str(envelope.event_id),
        "type": envelope.type,
        "stream_id": envelope.stream_id,
        "stream_version": envelope.stream_version,
        "recorded_at_us": envelope.recorded_at_us,
        "payload": envelope.payload.decode("utf-8"),
        "attachments": {k: v.hex() for k, v in sorted(envelope.attachment_digests.items())},
        "prev_hash": envelope.prev_hash.hex(),
        "chain_hash": envelope.chain_hash.hex(),
        "leaf_hash": envelope.leaf_hash.hex(),
        "proof": proof,
    }


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


async def _proofs(
    ledger: Ledger, envelopes: Iterable[Envelope], last: int
) -> tuple[SignedCheckpoint, list[dict[str, Any]]]:
    """Inclusion proofs of every event against one checkpoint (retried while a concurrent
    sequencer moves the latest checkpoint under us)."""
    events = list(envelopes)
    for _ in range(5):
        head = await _checkpoint_covering(ledger, last)
        lines = []
        for envelope in events:
            bundle = await ledger.inclusion_proof(envelope.position)
            if bundle.checkpoint.tree_size != head.tree_size:
                break
            lines.append(event_line(envelope, json.loads(bundle.proof.to_json())))
        else:
            return head, lines
    raise ReportsError("the ledger's checkpoint kept moving while proofs were taken: run again")


async def create_bundle(
    ledger: Ledger,
    out: Path | str,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> BundleSummary:
    """Write the audit bundle of `tenant`'s decisions in [`since`, `until`) to `out` (a zip)."""
    target = Path(out)
    if target.suffix.lower() != ".zip":
        raise ReportsError(f"{target}: the bundle file name must end in .zip")
    # The manifest and the report state the period in UTC, and `bundle verify` rebuilds the
    # report from the manifest's: both must be built from the same UTC instants.
    since, until = _utc(since), _utc(until)
    collected: dict[int, Envelope] = {}
    with tempfile.TemporaryDirectory(prefix="unhardcoded-bundle-") as tmp:
        export = Path(tmp) / "data"
        summary = await export_parquet(
            ledger,
            export,
            tenant=tenant,
            since=since,
            until=until,
            progress=progress,
            sink=lambda e: collected.__setitem__(e.position, e),
        )
        envelopes = [collected[p] for p in sorted(collected)]
        files: dict[str, bytes | Path] = {}
        last = envelopes[-1].position if envelopes else -1
        if envelopes:
            head, lines = await _proofs(ledger, envelopes, last)
        else:
            head, lines = await _checkpoint_covering(ledger, last), []
        files[CHECKPOINT] = head.note.encode("utf-8")
        files[PUBLIC_KEY] = (head.verifier_key + "\n").encode("utf-8")
        files[EVENTS] = b"".join(
            (json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
            for line in lines
        )
        for envelope in envelopes:
            payload = envelope.payload_json()
            if envelope.type == POLICY_RECORDED:
                files[f"policies/{payload['digest']}.json"] = _pretty(payload["policy"])
            elif envelope.type == CATALOG_PUBLISHED:
                files[f"catalogs/{payload['version']}.json"] = _pretty(payload["catalog"])
        for path in sorted(export.rglob("*.parquet")):
            files[DATA + path.relative_to(export).as_posix()] = path
        report = build_report(export, tenant=tenant, since=since, until=until)
        files[REPORT_JSON] = _pretty(report.to_json())
        files[REPORT_HTML] = render_html(report).encode("utf-8")
        manifest = {
            "format": BUNDLE_FORMAT,
            "tenant": tenant,
            "since": _iso(since),
            "until": _iso(until),
            "created_at": _iso(datetime.now(UTC)),
            "origin": ledger.origin,
            "tree_size": head.tree_size,
            "decisions": summary.decisions,
            "files": {name: _sha256(content) for name, content in sorted(files.items())},
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w") as archive:
            _write(archive, MANIFEST, manifest_bytes(manifest))
            for name, content in sorted(files.items()):
                _write(archive, name, content)
    return BundleSummary(target, summary.decisions, len(lines), head.tree_size, len(files) + 1)


def _pretty(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha256(content: bytes | Path) -> str:
    data = content.read_bytes() if isinstance(content, Path) else content
    return hashlib.sha256(data).hexdigest()


def _write(archive: zipfile.ZipFile, name: str, content: bytes | Path) -> None:
    data = content.read_bytes() if isinstance(content, Path) else content
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    # Parquet files are compressed already; the text files deflate well.
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
