"""`verify_bundle`: check an audit bundle offline — no database, no network (docs/bundles.md).

Trust flows from the verifier key: the checkpoint must be signed by it, every bundled event must
hash to a leaf whose inclusion proof leads to the signed root, and everything else in the bundle
(the Parquet data, policies, catalogs, the report) must be exactly what those proven events say.
The manifest only catches accidents: it is not signed, so nothing is trusted because of it."""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ledger import Checkpoint, Envelope, LedgerError, VerifierKey, parse_verifier_key
from reports._bundle import (
    BUNDLE_FORMAT,
    CHECKPOINT,
    DATA,
    EVENTS,
    MANIFEST,
    PUBLIC_KEY,
    REPORT_HTML,
    REPORT_JSON,
)
from reports._errors import ReportsError
from reports._events import open_bundle_checkpoint, read_events
from reports._html import render_html
from reports._report import build_report
from reports._rows import RowBuilder, decision_key
from reports._schema import DATASETS
from reports._writer import read_dataset
from router.core import Catalog, Policy, RouterError
from router.services.decisions import (
    ATTEMPT_FINISHED,
    CATALOG_PUBLISHED,
    DECISION_MADE,
    OUTCOME_RECORDED,
    POLICY_RECORDED,
    RecordMismatchError,
    decode_decision,
    outcome_digest,
)

__all__ = ["BundleVerification", "verify_bundle"]


@dataclass
class BundleVerification:
    """The outcome of `verify_bundle`: `ok` when `problems` is empty."""

    bundle: str
    problems: list[str] = field(default_factory=list)
    decisions: int = 0
    events: int = 0
    tree_size: int | None = None
    key: str | None = None
    key_source: str = "bundle"

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "bundle": self.bundle,
            "ok": self.ok,
            "problems": list(self.problems),
            "decisions": self.decisions,
            "events": self.events,
            "tree_size": self.tree_size,
            "verifier_key": self.key,
            "key_source": self.key_source,
        }


def _key(text: str) -> VerifierKey:
    """A verifier key given as the key string itself or as a file holding it."""
    candidate = text.strip()
    path = Path(candidate)
    if "+" not in candidate or path.is_file():
        try:
            candidate = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ReportsError(
                f"--key {text!r}: not a verifier key, and unreadable: {exc}"
            ) from None
    try:
        return parse_verifier_key(candidate)
    except LedgerError as exc:
        raise ReportsError(f"--key: {exc}") from None


class _Check:
    def __init__(self, archive: zipfile.ZipFile, result: BundleVerification) -> None:
        self.archive = archive
        self.result = result
        self.names = [i.filename for i in archive.infolist() if not i.is_dir()]

    def problem(self, text: str) -> None:
        self.result.problems.append(text)

    def read(self, name: str) -> bytes | None:
        try:
            return self.archive.read(name)
        except KeyError:
            return None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")
            return None

    def manifest(self) -> dict[str, Any] | None:
        raw = self.read(MANIFEST)
        if raw is None:
            self.problem(f"{MANIFEST}: missing")
            return None
        try:
            manifest = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.problem(f"{MANIFEST}: not JSON ({exc})")
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            self.problem(f"{MANIFEST}/format: expected {BUNDLE_FORMAT!r}")
            return None
        files = manifest.get("files")
        if not isinstance(files, dict):
            self.problem(f"{MANIFEST}/files: expected an object of file name → SHA-256")
            return None
        present = set(self.names) - {MANIFEST}
        for name in sorted(set(files) - present):
            self.problem(f"{name}: listed in the manifest but not in the bundle")
        for name in sorted(present - set(files)):
            self.problem(f"{name}: in the bundle but not listed in the manifest")
        for name in sorted(present & set(files)):
            data = self.read(name)
            if data is not None and hashlib.sha256(data).hexdigest() != files[name]:
                self.problem(
                    f"{name}: SHA-256 {hashlib.sha256(data).hexdigest()} is not the "
                    f"manifest's {files[name]}"
                )
        if len(self.names) != len(set(self.names)):
            self.problem("the zip holds two files with the same name")
        return manifest

    def checkpoint(self, key: VerifierKey) -> Checkpoint | None:
        note = self.read(CHECKPOINT)
        if note is None:
            self.problem(f"{CHECKPOINT}: missing")
            return None
        return open_bundle_checkpoint(CHECKPOINT, note, key, self.problem)

    def events(self, checkpoint: Checkpoint | None) -> list[Envelope]:
        raw = self.read(EVENTS)
        if raw is None:
            self.problem(f"{EVENTS}: missing")
            return []
        return read_events(EVENTS, raw, checkpoint, self.problem)


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    fields = [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    plain = table.cast(pa.schema(fields)).to_pylist()
    return sorted(tuple(json.dumps(v, default=str) for v in row.values()) for row in plain)


def _expected(check: _Check, proven: list[Envelope], manifest: Mapping[str, Any]) -> RowBuilder:
    """The rows the proven events say the data holds; problems for anything inconsistent."""
    rows = RowBuilder()
    by_stream = {(e.stream_id, e.stream_version): e for e in proven}
    tenant = manifest.get("tenant")
    since, until = _micros(manifest.get("since")), _micros(manifest.get("until"))
    keys = {}
    for envelope in proven:
        if envelope.type != DECISION_MADE:
            continue
        name = f"decision {envelope.event_id}"
        try:
            payload = decode_decision(envelope.payload)
        except RecordMismatchError as exc:
            check.problem(f"{name}: its payload is {exc}")
            continue
        if payload.decision_id != str(envelope.event_id):
            check.problem(f"{name}: its payload names decision {payload.decision_id}")
            continue
        if payload.tenant != tenant:
            check.problem(f"{name}: tenant {payload.tenant!r}, the bundle is {tenant!r}")
        at = envelope.recorded_at_us
        if (since is not None and at < since) or (until is not None and at >= until):
            check.problem(f"{name}: recorded outside the bundle's period")
        version, fingerprint, digest = rows.missing(payload)
        if version is not None:
            found = by_stream.get((f"catalog/{version}", 1))
            if found is None or found.type != CATALOG_PUBLISHED:
                check.problem(f"{name}: catalog {version} is not among the proven events")
                continue
            catalog = Catalog.from_json(found.payload_json()["catalog"])
            if catalog.version != version:
                check.problem(
                    f"catalog {version}: its proven content has version {catalog.version}"
                )
                continue
            rows.add_catalog(catalog, found.recorded_at_us)
        if fingerprint is not None:
            found = by_stream.get((fingerprint, 1))
            if found is None or found.type != POLICY_RECORDED:
                check.problem(f"{name}: policy {fingerprint} is not among the proven events")
                continue
            policy = Policy.from_json(found.payload_json()["policy"])
            if policy.digest != payload.policy_digest:
                check.problem(
                    f"policy {fingerprint}: its proven content has digest "
                    f"{policy.digest}, {name} names {payload.policy_digest}"
                )
                continue
            rows.add_policy(policy, found.recorded_at_us)
        if digest is not None:
            found = by_stream.get((f"outcome/{digest}", 1))
            if found is None or found.type != OUTCOME_RECORDED:
                check.problem(f"{name}: outcome {digest} is not among the proven events")
                continue
            document = found.payload_json()
            if outcome_digest(document) != digest:
                check.problem(f"outcome {digest}: its proven content has another digest")
                continue
            rows.add_outcome(digest, document)
        rows.add_decision(envelope.position, str(envelope.event_id), at, payload)
        keys[str(envelope.event_id)] = decision_key(payload, at)
        check.result.decisions += 1
    for envelope in proven:
        if envelope.type == ATTEMPT_FINISHED:
            payload = envelope.payload_json()
            key = keys.get(payload.get("decision_id"))
            if key is None:
                check.problem(
                    f"attempt event {envelope.event_id}: its decision "
                    f"{payload.get('decision_id')} is not in the bundle"
                )
                continue
            rows.add_attempt(envelope.position, envelope.recorded_at_us, payload, key)
    return rows


def _compare(check: _Check, name: str, expected: pa.Table | None, found: pa.Table) -> None:
    want = _rows(expected) if expected is not None else []
    have = _rows(found)
    if want == have:
        return
    if name in ("decisions", "attempts"):
        wanted = {r[0] for r in want}
        held = {r[0] for r in have}
        for d in sorted(held - wanted):
            check.problem(f"{DATA}{name}: decision {json.loads(d)} has no proven event")
        for d in sorted(wanted - held):
            check.problem(f"{DATA}{name}: proven decision {json.loads(d)} is missing")
        if wanted == held:
            check.problem(f"{DATA}{name}: rows differ from what the proven events say")
    else:
        check.problem(
            f"{DATA}{name}: {len(have)} rows differ from the {len(want)} the proven events say"
        )


def _referenced_files(check: _Check, rows: RowBuilder) -> None:
    for digest in sorted(rows.policies):
        name = f"policies/{digest}.json"
        raw = check.read(name)
        if raw is None:
            check.problem(f"{name}: missing (the decisions refer to policy digest {digest})")
            continue
        try:
            found = Policy.from_json(json.loads(raw)).digest
        except (json.JSONDecodeError, UnicodeDecodeError, RouterError) as exc:
            check.problem(f"{name}: not a policy ({exc})")
            continue
        if found != digest:
            check.problem(f"{name}: its digest is {found}")
    for version in sorted(rows.catalogs):
        name = f"catalogs/{version}.json"
        raw = check.read(name)
        if raw is None:
            check.problem(f"{name}: missing (the decisions refer to catalog {version})")
            continue
        try:
            found = Catalog.from_json(json.loads(raw)).version
        except (json.JSONDecodeError, UnicodeDecodeError, RouterError) as exc:
            check.problem(f"{name}: not a catalog ({exc})")
            continue
        if found != version:
            check.problem(f"{name}: its version is {found}")


def verify_bundle(path: Path | str, *, key: str | None = None) -> BundleVerification:
    """Check an audit bundle (see the module docstring); `key` is the verifier key string or a
    file holding it (default: the bundle's own `public_key.txt`, which proves only that the
    bundle is self-consistent: pass the ledger operator's published key)."""
    source = Path(path)
    result = BundleVerification(str(source))
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReportsError(f"{source}: not a readable zip file ({exc})") from None
    with archive, tempfile.TemporaryDirectory(prefix="unhardcoded-verify-") as tmp:
        check = _Check(archive, result)
        manifest = check.manifest()
        bundled = check.read(PUBLIC_KEY)
        bundled_text = None if bundled is None else bundled.decode("utf-8", "replace").strip()
        if key is not None:
            verifier = _key(key)
            result.key_source = "given"
            if bundled_text is not None and bundled_text != str(verifier):
                check.problem(f"{PUBLIC_KEY}: the bundled key is not the given key {verifier}")
        elif bundled_text is None:
            check.problem(f"{PUBLIC_KEY}: missing (and no --key given)")
            return result
        else:
            try:
                verifier = parse_verifier_key(bundled_text)
            except LedgerError as exc:
                check.problem(f"{PUBLIC_KEY}: {exc}")
                return result
        result.key = str(verifier)
        opened = check.checkpoint(verifier)
        if opened is not None:
            result.tree_size = opened.size
            if manifest is not None and manifest.get("tree_size") != opened.size:
                check.problem(
                    f"{MANIFEST}/tree_size: {manifest.get('tree_size')} is not the "
                    f"checkpoint's {opened.size}"
                )
            if manifest is not None and manifest.get("origin") != opened.origin:
                check.problem(
                    f"{MANIFEST}/origin: {manifest.get('origin')!r} is not the "
                    f"checkpoint's {opened.origin!r}"
                )
        proven = check.events(opened)
        result.events = len(proven)
        if opened is None or manifest is None:
            return result
        seen: set[str] = set()
        for envelope in proven:
            if str(envelope.event_id) in seen:
                check.problem(f"{EVENTS}: event {envelope.event_id} appears twice")
            seen.add(str(envelope.event_id))
        try:
            rows = _expected(check, proven, manifest)
        except (RouterError, LedgerError, ReportsError, KeyError, TypeError) as exc:
            check.problem(f"{EVENTS}: the proven events do not make a decision record: {exc}")
            return result
        _referenced_files(check, rows)
        data = Path(tmp) / "data"
        for name in check.names:
            if name.startswith(DATA) and name.endswith(".parquet"):
                target = data / name[len(DATA) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(check.read(name) or b"")
        for dataset in DATASETS:
            (data / dataset).mkdir(parents=True, exist_ok=True)
            try:
                found = read_dataset(data, dataset)
            except (OSError, pa.ArrowException, ReportsError) as exc:
                check.problem(f"{DATA}{dataset}: unreadable Parquet ({exc})")
                continue
            _compare(check, dataset, rows.take(dataset), found)
        if result.problems:
            return result
        since, until = manifest.get("since"), manifest.get("until")
        report = build_report(
            data,
            tenant=str(manifest.get("tenant")),
            since=None if since is None else datetime.fromisoformat(since.replace("Z", "+00:00")),
            until=None if until is None else datetime.fromisoformat(until.replace("Z", "+00:00")),
        )
        shown = check.read(REPORT_JSON)
        try:
            same = shown is not None and json.loads(shown) == report.to_json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            same = False
        if not same:
            check.problem(f"{REPORT_JSON}: not the report of the proven data")
        if check.read(REPORT_HTML) != render_html(report).encode("utf-8"):
            check.problem(f"{REPORT_HTML}: not the report of the proven data")
    return result
