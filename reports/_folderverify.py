"""`verify_export`: check offline that a tenant's export folder holds every decision of its
period (docs/reports.md, "Completeness of a tenant's export"; the argument is docs/bundles.md's).

Trust comes from the verifier key: the manifest's checkpoint must be signed by it and each event
of `completeness_proof/events` must hash to a leaf whose inclusion proof leads to the signed
root. Those events (the boundaries of the tenant's sequence and its seals) and the `sequence`
numbers of the rows of the `decisions` dataset must then make the tenant's sequence without a
gap between the two boundaries, time never decreasing along it: a decision left out of the data
leaves a gap (or shifts the rows after it onto the upper boundary's number)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ledger import Checkpoint, Envelope, LedgerError, VerifierKey, parse_verifier_key
from reports._completeness import SequenceCheck
from reports._errors import ReportsError
from reports._events import open_bundle_checkpoint, read_events
from reports._folder import MANIFEST, FolderManifest
from reports._folderproof import PROOF_MEMBER
from reports._schema import SCHEMAS
from reports._sequence import at_us
from reports._verify_result import ExportVerification, given_key
from reports._writer import partitioning

__all__ = ["ExportVerification", "verify_export"]

_COLUMNS = ("decision_id", "position", "sequence", "recorded_at", "tenant")
_PROOF_EVENTS = f"{MANIFEST}/{PROOF_MEMBER}/events"


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    return (datetime.fromisoformat(text) - at_us(0)) // timedelta(microseconds=1)


def _rows(base: Path, result: ExportVerification) -> pa.Table | None:
    """The decisions' identity columns, in position order (None: unreadable, said why)."""
    folder = base / "decisions"
    if not folder.is_dir():
        result.problems.append(f"{folder}: missing (not an export folder)")
        return None
    try:
        dataset = ds.dataset(folder, format="parquet", partitioning=partitioning("decisions"))
        if not dataset.files:  # an empty period: no row
            return SCHEMAS["decisions"].empty_table().select(list(_COLUMNS))
        if "sequence" not in dataset.schema.names:
            result.problems.append(
                "completeness: decisions/ has no `sequence` column (exported by an earlier "
                "release): its rows cannot be placed in the tenant's sequence"
            )
            return None
        table = dataset.to_table(columns=list(_COLUMNS))
    except (OSError, pa.ArrowException) as exc:
        result.problems.append(f"{folder}: unreadable Parquet ({exc})")
        return None
    micros = pc.cast(table.column("recorded_at"), pa.int64())
    return table.set_column(_COLUMNS.index("recorded_at"), "recorded_at", micros)


def _key(text: str | None, proof: dict[str, Any], result: ExportVerification) -> VerifierKey:
    if text is not None:
        result.key_source = "given"
        return given_key(text)
    result.notes.append(
        "checked against the verifier key inside the folder: this only shows the folder is "
        "self-consistent; pass the key the ledger's operator publishes (--key)"
    )
    try:
        return parse_verifier_key(str(proof.get("verifier_key")))
    except LedgerError as exc:
        raise ReportsError(f"{MANIFEST}/{PROOF_MEMBER}/verifier_key: {exc}") from None


def verify_export(
    folder: Path | str, *, key: str | None = None, require_complete: bool = False
) -> ExportVerification:
    """Check offline that the export folder `folder` holds every decision of its tenant in its
    period, against the verifier key `key` (the string or a file holding it; default: the key
    the folder names, which only shows it is self-consistent)."""
    base = Path(folder)
    result = ExportVerification(str(base))
    manifest = FolderManifest.read(base)
    proof = (manifest.proof or {}).get(PROOF_MEMBER)
    claim = (manifest.proof or {}).get("completeness")
    if manifest.tenant is None or claim is None or not isinstance(proof, dict):
        why = (
            "the folder holds every tenant's decisions (a proof is per tenant: export with "
            "--tenant)"
            if manifest.tenant is None
            else "its manifest carries no completeness proof (exported by an earlier release)"
        )
        if require_complete:
            result.problems.append(f"completeness: not proven, and required: {why}")
        else:
            result.notes.append(f"completeness is not proven: {why}")
        return result
    verifier = _key(key, proof, result)
    result.key = str(verifier)
    note = proof.get("checkpoint")
    checkpoint: Checkpoint | None = None
    if not isinstance(note, str):
        result.problems.append(f"{MANIFEST}/{PROOF_MEMBER}/checkpoint: expected a signed note")
    else:
        checkpoint = open_bundle_checkpoint(
            f"{MANIFEST}/{PROOF_MEMBER}/checkpoint",
            note.encode("utf-8"),
            verifier,
            result.problems.append,
        )
    if checkpoint is None:
        return result
    result.tree_size = checkpoint.size
    if proof.get("tree_size") != checkpoint.size:
        result.problems.append(
            f"{MANIFEST}/{PROOF_MEMBER}/tree_size: {proof.get('tree_size')!r} is not the signed "
            f"checkpoint's {checkpoint.size}"
        )
    lines = proof.get("events")
    if not isinstance(lines, list):
        result.problems.append(f"{_PROOF_EVENTS}: expected a list of event lines")
        return result
    raw = [json.dumps(line, ensure_ascii=False).encode("utf-8") for line in lines]
    events = list(read_events(_PROOF_EVENTS, raw, checkpoint, result.problems.append))
    result.events = len(events)
    table = _rows(base, result)
    if table is None or result.problems:
        return result
    _check_sequence(manifest, claim, events, table, result)
    return result


def _check_sequence(
    manifest: FolderManifest,
    claim: Any,
    events: list[Envelope],
    table: pa.Table,
    result: ExportVerification,
) -> None:
    """Place the proven events and the rows in one sequence, in position order."""
    problem = result.problems.append
    since, until = _micros(manifest.since), _micros(manifest.until)
    check = SequenceCheck({"tenant": manifest.tenant, "completeness": claim}, since, until)
    items: list[tuple[int, Envelope | dict[str, Any]]] = [(e.position, e) for e in events]
    items += [(row["position"], row) for row in table.to_pylist()]
    items.sort(key=lambda item: item[0])
    unsequenced = 0
    last_position = -1
    for position, item in items:
        if position == last_position:
            problem(f"completeness: two entries at ledger position {position}")
        last_position = position
        if isinstance(item, Envelope):
            if not check.owns(item):
                problem(
                    f"{_PROOF_EVENTS}: event {item.event_id} is in stream {item.stream_id!r}, "
                    f"not the tenant's sequence {check.stream!r}"
                )
            elif check.feed(item):
                problem(
                    f"{_PROOF_EVENTS}: decision {item.event_id} is recorded in the period: the "
                    "data holds the period's decisions, the proof only its boundaries and seals"
                )
            continue
        result.decisions += 1
        name = f"decisions/ row of decision {item['decision_id']} (position {position})"
        at = item["recorded_at"]
        if item["tenant"] != manifest.tenant:
            problem(f"{name}: tenant {item['tenant']!r}, the folder is {manifest.tenant!r}'s")
        elif (since is not None and at < since) or (until is not None and at >= until):
            problem(f"{name}: recorded outside the folder's period")
        elif item["sequence"] is None:
            unsequenced += 1  # release 0.1.0: recorded without a sequence
        else:
            check.feed_row(item["sequence"], at, item["decision_id"])
    result.completeness = check.finish(problem, result.notes.append)
    if unsequenced:
        result.notes.append(
            f"{unsequenced} decisions were recorded without a sequence (release 0.1.0): the "
            "proof does not cover them"
        )
