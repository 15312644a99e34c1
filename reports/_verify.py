"""`verify_bundle`: check an audit bundle offline — no database, no network (docs/bundles.md).

Trust flows from the verifier key: the checkpoint must be signed by it, every bundled event must
hash to a leaf whose inclusion proof leads to the signed root, and everything else in the bundle
(the Parquet data, policies, catalogs, the report) must be exactly what those proven events say.
The manifest only catches accidents: it is not signed, so nothing is trusted because of it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ledger import (
    Checkpoint,
    Envelope,
    LedgerError,
    VerifierKey,
    parse_verifier_key,
)
from reports._bundle import (
    BUNDLE_FORMAT,
    CHECKPOINT,
    DATA,
    EVENTS,
    MANIFEST,
    PUBLIC_KEY,
    REPORT_HTML,
    REPORT_JSON,
    document_file,
)
from reports._columnar import CatalogColumns, decision_batch, parse_decisions
from reports._completeness import SequenceCheck
from reports._errors import ReportsError
from reports._events import open_bundle_checkpoint, read_events
from reports._expect import ExpectedRows, compare_datasets
from reports._html import render_html
from reports._report import REPORT_SCHEMA, build_report, ledger_context
from reports._rows import DecisionKey, RowBuilder, decision_key
from reports._schema import DATASETS, PARTITIONS, SCHEMAS
from reports._sequence import sequence_of
from reports._witnesses import check_witnesses, key_argument, log_note, witness_quorum
from router.core import Catalog, Policy, RouterError
from router.services.decisions import (
    ATTEMPT_FINISHED,
    CATALOG_PUBLISHED,
    DECISION_MADE,
    OUTCOME_RECORDED,
    POLICY_RECORDED,
    DecisionPayload,
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
    notes: list[str] = field(default_factory=list)
    decisions: int = 0
    events: int = 0
    tree_size: int | None = None
    key: str | None = None
    key_source: str = "bundle"
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    quorum: int = 0
    completeness: dict[str, Any] | None = None
    """What the completeness proof proves (docs/bundles.md), None when nothing is proven."""

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
            "notes": list(self.notes),
            "decisions": self.decisions,
            "events": self.events,
            "tree_size": self.tree_size,
            "verifier_key": self.key,
            "key_source": self.key_source,
            "witnesses": list(self.witnesses),
            "quorum": self.quorum,
            "completeness": self.completeness,
        }


def _key(text: str) -> VerifierKey:
    """A verifier key given as the key string itself or as a file holding it."""
    try:
        return parse_verifier_key(key_argument(text, "--key", "a verifier key"))
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

    def sha256(self, name: str) -> str | None:
        """The SHA-256 of a file in the zip, read in blocks."""
        try:
            digest = hashlib.sha256()
            with self.archive.open(name) as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
            return digest.hexdigest()
        except KeyError:
            return None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")
            return None

    def lines(self, name: str) -> Iterator[tuple[int, str]] | None:
        """The numbered lines of a text file in the zip, read as they come (None: missing)."""
        if name not in self.names:
            return None

        def read() -> Iterator[tuple[int, str]]:
            try:
                with self.archive.open(name) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
                    for number, line in enumerate(text, start=1):
                        yield number, line.rstrip("\r\n")
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                self.problem(f"{name}: unreadable in the zip ({exc})")

        return read()

    def extract(self, name: str, target: Path) -> None:
        """Copy a file out of the zip in blocks."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.archive.open(name) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")

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
            digest = self.sha256(name)
            if digest is not None and digest != files[name]:
                self.problem(f"{name}: SHA-256 {digest} is not the manifest's {files[name]}")
        if len(self.names) != len(set(self.names)):
            self.problem("the zip holds two files with the same name")
        return manifest

    def checkpoint(self, key: VerifierKey) -> Checkpoint | None:
        note = self.read(CHECKPOINT)
        if note is None:
            self.problem(f"{CHECKPOINT}: missing")
            return None
        return open_bundle_checkpoint(CHECKPOINT, note, key, self.problem)

    def events(
        self, checkpoint: Checkpoint | None, problem: Callable[[str], None] | None = None
    ) -> Iterator[Envelope]:
        """The bundled events that pass every check (`reports._events`), read line by line, in
        file order; what fails goes to `problem` (default: the verification's problems)."""
        report = self.problem if problem is None else problem
        if EVENTS not in self.names:
            report(f"{EVENTS}: missing")
            return
        try:
            with self.archive.open(EVENTS) as raw:
                # The zip member read through a large buffer: its own line reader is slow.
                lines = io.BufferedReader(cast(io.RawIOBase, raw), _BLOCK)
                yield from read_events(EVENTS, lines, checkpoint, report)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            report(f"{EVENTS}: unreadable in the zip ({exc})")


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


_BLOCK = 1 << 20
"""Bytes read from the zip at a time (its own line reader reads a few bytes per call)."""

_CHUNK = 4096
"""Proven decisions whose rows are built together, column-wise (`reports._columnar`)."""

_SPILL_EVERY = 256
"""Events between two hand-overs of the rows built so far (each adds at most one group)."""

_WINDOW = 65_536
"""Recent decisions remembered for their attempts (an attempt of an older one costs a second
pass over the events, for the few such decisions only)."""


class _Expect:
    """Streams the proven events into the rows the bundled data must hold."""

    def __init__(self, check: _Check, manifest: Mapping[str, Any], rows: ExpectedRows) -> None:
        self.check = check
        self.expected = rows
        self.rows = rows.rows
        self.tenant = manifest.get("tenant")
        self.since = _micros(manifest.get("since"))
        self.until = _micros(manifest.get("until"))
        self.references: dict[tuple[str, int], Envelope] = {}
        self.recent: OrderedDict[str, DecisionKey] = OrderedDict()
        self.late: list[Envelope] = []
        self.sequence = SequenceCheck(manifest, self.since, self.until)
        self.columns = CatalogColumns()
        self.pending: list[tuple[int, str, int, DecisionPayload, bytes, int | None]] = []

    def reference(self, stream: str, kind: str) -> Envelope | None:
        """The proven first event of `stream` when it is of type `kind`."""
        found = self.references.get((stream, 1))
        return found if found is not None and found.type == kind else None

    def decision(self, envelope: Envelope) -> None:
        check, rows = self.check, self.rows
        name = f"decision {envelope.event_id}"
        try:
            payload = decode_decision(_json(envelope.payload))
        except RecordMismatchError as exc:
            check.problem(f"{name}: its payload is {exc}")
            return
        if payload.decision_id != str(envelope.event_id):
            check.problem(f"{name}: its payload names decision {payload.decision_id}")
            return
        if payload.tenant != self.tenant:
            check.problem(f"{name}: tenant {payload.tenant!r}, the bundle is {self.tenant!r}")
        if not self.sequence.owns(envelope):
            self.sequence.outside(envelope, payload.fingerprint)
        at = envelope.recorded_at_us
        if (self.since is not None and at < self.since) or (
            self.until is not None and at >= self.until
        ):
            check.problem(f"{name}: recorded outside the bundle's period")
        version, fingerprint, digest = rows.missing(payload)
        if version is not None:
            found = self.reference(f"catalog/{version}", CATALOG_PUBLISHED)
            if found is None:
                check.problem(f"{name}: catalog {version} is not among the proven events")
                return
            catalog = Catalog.from_json(found.payload_json()["catalog"])
            if catalog.version != version:
                check.problem(
                    f"catalog {version}: its proven content has version {catalog.version}"
                )
                return
            rows.add_catalog(catalog, found.recorded_at_us)
        if fingerprint is not None:
            found = self.reference(fingerprint, POLICY_RECORDED)
            if found is None:
                check.problem(f"{name}: policy {fingerprint} is not among the proven events")
                return
            policy = Policy.from_json(found.payload_json()["policy"])
            if policy.digest != payload.policy_digest:
                check.problem(
                    f"policy {fingerprint}: its proven content has digest "
                    f"{policy.digest}, {name} names {payload.policy_digest}"
                )
                return
            rows.add_policy(policy, found.recorded_at_us)
        if digest is not None:
            found = self.reference(f"outcome/{digest}", OUTCOME_RECORDED)
            if found is None:
                check.problem(f"{name}: outcome {digest} is not among the proven events")
                return
            document = found.payload_json()
            if outcome_digest(document) != digest:
                check.problem(f"outcome {digest}: its proven content has another digest")
                return
            rows.add_outcome(digest, document)
        rows.add_group(payload)
        self.pending.append(
            (
                envelope.position,
                str(envelope.event_id),
                at,
                payload,
                envelope.payload,
                sequence_of(envelope, payload.tenant),
            )
        )
        if len(self.pending) >= _CHUNK:
            self.flush()
        self.recent[str(envelope.event_id)] = decision_key(payload, at)
        if len(self.recent) > _WINDOW:
            self.recent.popitem(last=False)
        check.result.decisions += 1

    def flush(self) -> None:
        """The `decisions` rows of the pending decisions, built column-wise from their payloads
        like the exporter builds them; one by one (`RowBuilder.add_decision`) when the payloads
        do not parse column-wise (a value of another type than a decision's)."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        for version in {payload.catalog_version for _, _, _, payload, _, _ in pending}:
            self.columns.add(self.rows.catalogs[version])
        try:
            table = parse_decisions([raw for _, _, _, _, raw, _ in pending])
            batch = decision_batch(
                table,
                pa.array([position for position, *_ in pending], pa.int64()),
                pa.array([sequence for *_, sequence in pending], pa.int64()),
                pa.array([at for _, _, at, _, _, _ in pending], pa.int64()),
                self.columns,
            )
        except (pa.ArrowException, KeyError, TypeError, ValueError):
            for position, event_id, at, payload, _, sequence in pending:
                self.rows.add_decision(position, event_id, at, payload, sequence)
            return
        self.expected.put("decisions", batch)

    def release(self) -> None:
        """Drop what the pass over the events held (catalogs, referenced events, recent
        decisions): what follows it needs none of it."""
        self.references.clear()
        self.recent.clear()
        self.late.clear()
        self.columns = CatalogColumns()
        self.rows = self.expected.rows = RowBuilder()

    def attempt(self, envelope: Envelope, key: DecisionKey | None) -> None:
        payload = envelope.payload_json()
        if key is None:
            key = self.recent.get(payload.get("decision_id"))
        if key is None:
            self.late.append(envelope)
            return
        self.rows.add_attempt(envelope.position, envelope.recorded_at_us, payload, key)

    def run(self, checkpoint: Checkpoint) -> None:
        """One pass over the proven events; a second one, for the decisions of the attempts
        whose decision was not among the recent ones."""
        for envelope in self.check.events(checkpoint):
            self.check.result.events += 1
            if not self.check.result.events % _SPILL_EVERY:
                self.expected.spill()
            if self.sequence.owns(envelope):
                if self.sequence.feed(envelope):  # else a boundary or a seal: not in the data
                    self.decision(envelope)
            elif envelope.type == DECISION_MADE:
                self.decision(envelope)
            elif envelope.type == ATTEMPT_FINISHED:
                self.attempt(envelope, None)
            else:
                self.references.setdefault((envelope.stream_id, envelope.stream_version), envelope)
        self.flush()
        if not self.late:
            return
        wanted = {e.payload_json().get("decision_id") for e in self.late}
        keys: dict[str, DecisionKey] = {}
        for envelope in self.check.events(checkpoint, problem=lambda _: None):
            decision_id = str(envelope.event_id)
            if envelope.type != DECISION_MADE or decision_id in self.sequence.boundaries:
                continue
            if decision_id in wanted:
                try:
                    payload = decode_decision(envelope.payload)
                except RecordMismatchError:
                    continue  # named by the first pass
                if payload.decision_id == str(envelope.event_id):
                    keys[str(envelope.event_id)] = decision_key(payload, envelope.recorded_at_us)
        for envelope in self.late:
            decision_id = envelope.payload_json().get("decision_id")
            key = keys.get(decision_id)
            if key is None:
                self.check.problem(
                    f"attempt event {envelope.event_id}: its decision {decision_id} is not in "
                    "the bundle"
                )
                continue
            self.attempt(envelope, key)


def _json(payload: bytes) -> Any:
    """A payload's JSON value (orjson), or the bytes themselves when orjson refuses them:
    `decode_decision` then parses them with the standard parser, as it always did."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload


def _referenced_files(check: _Check, expect: _Expect) -> None:
    rows = expect.rows
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
        proven = expect.reference(f"catalog/{version}", CATALOG_PUBLISHED)
        if proven is not None and raw == document_file(proven.payload_json()["catalog"]):
            continue  # the proven catalog's own bytes (a catalog is large: not parsed again)
        try:
            found = Catalog.from_json(json.loads(raw)).version
        except (json.JSONDecodeError, UnicodeDecodeError, RouterError) as exc:
            check.problem(f"{name}: not a catalog ({exc})")
            continue
        if found != version:
            check.problem(f"{name}: its version is {found}")


def verify_bundle(
    path: Path | str,
    *,
    key: str | None = None,
    witness_keys: Sequence[str] = (),
    quorum: int | None = None,
    require_complete: bool = False,
) -> BundleVerification:
    """Check an audit bundle (see the module docstring); `key` is the verifier key string or a
    file holding it (default: the bundle's own `public_key.txt`, which proves only that the
    bundle is self-consistent: pass the ledger operator's published key).

    `witness_keys` (vkeys or files holding one) and `quorum` (default: all of them): the
    checkpoint must carry valid cosignatures by at least `quorum` of those witnesses
    (docs/witness.md). `require_complete`: a bundle without a completeness proof is a problem,
    not a note (docs/bundles.md, "Completeness")."""
    source = Path(path)
    witnesses = witness_quorum(witness_keys, quorum)
    result = BundleVerification(str(source), quorum=len(witnesses) if quorum is None else quorum)
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
        if opened is not None and witnesses:
            found, problems = check_witnesses(
                check.read(CHECKPOINT) or b"", witnesses, result.quorum
            )
            result.witnesses.extend(found)
            for text in problems:
                check.problem(text)
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
        if opened is None or manifest is None:
            result.events = sum(1 for _ in check.events(opened))
            return result
        work = Path(tmp)
        expected = ExpectedRows(work / "expected")
        expect = _Expect(check, manifest, expected)
        try:
            expect.run(opened)
        except (RouterError, LedgerError, ReportsError, KeyError, TypeError) as exc:
            check.problem(f"{EVENTS}: the proven events do not make a decision record: {exc}")
            return result
        finally:
            expected.close()
        result.completeness = expect.sequence.finish(check.problem, result.notes.append)
        if require_complete and result.completeness is None and not result.problems:
            check.problem("completeness: not proven, and required (--require-complete)")
        _referenced_files(check, expect)
        expect.release()
        pa.default_memory_pool().release_unused()
        data = work / "data"
        for name in check.names:
            if name.startswith(DATA) and name.endswith(".parquet"):
                check.extract(name, data / name[len(DATA) :])
        for dataset in DATASETS:
            (data / dataset).mkdir(parents=True, exist_ok=True)
        held = {name[len(DATA) :].split("/", 1)[0] for name in check.names if name.startswith(DATA)}
        made_by = _report_schema(check, REPORT_JSON)
        absent: tuple[str, ...] = ()
        earlier: tuple[str, ...] = ()
        if made_by != REPORT_SCHEMA:  # a bundle of today's layout must hold every dataset
            absent = tuple(d for d in DATASETS_ADDED_SINCE_RELEASE_0_1 if d not in held)
            earlier = tuple(d for d in DATASETS if d not in absent and _earlier(data, d))
        for dataset in absent:
            # Bundles of release 0.1 predate these datasets: what they hold is still checked.
            result.notes.append(
                f"{DATA}{dataset}: not in this bundle (made before the dataset existed); the "
                "datasets it holds are checked against the proven events"
            )
        for dataset in earlier:
            result.notes.append(
                f"{DATA}{dataset}: the columns of an earlier release; not compared (the proven "
                "events it was made from are checked above)"
            )
        absent += earlier
        compare_datasets(
            expected,
            data,
            check.problem,
            DATA,
            lambda name, exc: check.problem(f"{DATA}{name}: unreadable Parquet ({exc})"),
            tuple(d for d in DATASETS if d not in absent),
        )
        if result.problems:
            return result
        if made_by != REPORT_SCHEMA:
            # A report is rebuilt byte for byte by the code that knows its layout; an earlier
            # release's layout is not kept. Its data and events are proven above all the same.
            result.notes.append(
                f"{REPORT_JSON} and {REPORT_HTML} have the layout {made_by!r}, not "
                f"{REPORT_SCHEMA!r}: they are not rebuilt; the data and events they summarize "
                "are proven"
            )
            return result
        since, until = manifest.get("since"), manifest.get("until")
        note = log_note((check.read(CHECKPOINT) or b"").decode("utf-8", "replace"), verifier.name)
        report = build_report(
            data,
            tenant=str(manifest.get("tenant")),
            since=None if since is None else datetime.fromisoformat(since.replace("Z", "+00:00")),
            until=None if until is None else datetime.fromisoformat(until.replace("Z", "+00:00")),
            context=ledger_context(note, str(verifier), str(manifest.get("created_at"))),
        )
        rebuilt = work / "report.json"
        with rebuilt.open("w", encoding="utf-8") as handle:
            report.write_json(handle)
        with rebuilt.open("rb") as handle:
            want = hashlib.file_digest(handle, "sha256").hexdigest()
        if check.sha256(REPORT_JSON) != want:
            check.problem(f"{REPORT_JSON}: not the report of the proven data")
        if check.read(REPORT_HTML) != render_html(report).encode("utf-8"):
            check.problem(f"{REPORT_HTML}: not the report of the proven data")
    return result


#: Datasets that bundles made by release 0.1 do not carry; their absence is a note, not a problem.
DATASETS_ADDED_SINCE_RELEASE_0_1 = ("explanations",)


def _earlier(data: Path, dataset: str) -> bool:
    """Whether the bundled `dataset` has other columns than today's (an earlier release's)."""
    files = sorted((data / dataset).rglob("*.parquet"))
    if not files:
        return False
    try:
        names: list[str] = list(pq.read_schema(files[0]).names)
    except (OSError, pa.ArrowException):
        return False  # named as unreadable by the comparison
    return names != [n for n in SCHEMAS[dataset].names if n not in PARTITIONS[dataset]]


_SCHEMA_LINE = re.compile(r'  "schema": ("(?:[^"\\]|\\.)*"),?')
_PARSED_WHOLE = 16 << 20
"""A report.json up to this size is parsed whole when its lines do not show the member."""


def _report_schema(check: _Check, name: str) -> str | None:
    """The `schema` member of a bundled report.json, or None when it has none or is not JSON.

    Reports are written with two-space indentation, top-level members on their own lines: the
    member is found by reading the lines (a report lists every decision: it is not loaded)."""
    lines = check.lines(name)
    if lines is None:
        return None
    for _, line in lines:
        found = _SCHEMA_LINE.fullmatch(line)
        if found is not None:
            value = json.loads(found.group(1))
            return value if isinstance(value, str) else None
    info = check.archive.getinfo(name)
    document = check.read(name) if info.file_size <= _PARSED_WHOLE else None
    if document is None:
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    schema = value.get("schema") if isinstance(value, dict) else None
    return schema if isinstance(schema, str) else None
