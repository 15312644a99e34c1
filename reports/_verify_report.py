"""A bundle's data and report against what its proven events make (docs/bundles.md, "What
`bundle verify` checks", steps 6 and 8).

The bundled Parquet datasets are compared with the expected rows in DuckDB (`compare_datasets`),
then the report is rebuilt from the data and compared byte for byte: `report.json` first as
rendered column-wise (`reports._verify_listing`), and by the report's own writer when that does
not give the bundled bytes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ledger import VerifierKey
from reports._bundle import CHECKPOINT, DATA, REPORT_HTML, REPORT_JSON
from reports._expect import ExpectedRows, compare_datasets
from reports._html import render_html
from reports._report import REPORT_SCHEMA, build_report, ledger_context
from reports._schema import DATASETS, PARTITIONS, SCHEMAS
from reports._verify_listing import listing_digest
from reports._verify_result import BundleVerification
from reports._verify_zip import BundleZip
from reports._witnesses import log_note

__all__ = ["DATASETS_ADDED_SINCE_RELEASE_0_1", "check_data", "check_report"]

#: Datasets that bundles made by release 0.1 do not carry; their absence is a note, not a problem.
DATASETS_ADDED_SINCE_RELEASE_0_1 = ("explanations",)

_SCHEMA_LINE = re.compile(r'  "schema": ("(?:[^"\\]|\\.)*"),?')
_PARSED_WHOLE = 16 << 20
"""A report.json up to this size is parsed whole when its lines do not show the member."""


def check_data(
    bundle: BundleZip, expected: ExpectedRows, data: Path, result: BundleVerification
) -> str | None:
    """Extract the bundled datasets to `data` and compare them with the expected rows; returns
    the bundled report's schema (the layout it was made in)."""
    for name in bundle.names:
        if name.startswith(DATA) and name.endswith(".parquet"):
            bundle.extract(name, data / name[len(DATA) :])
    for dataset in DATASETS:
        (data / dataset).mkdir(parents=True, exist_ok=True)
    held = {name[len(DATA) :].split("/", 1)[0] for name in bundle.names if name.startswith(DATA)}
    made_by = _report_schema(bundle, REPORT_JSON)
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
        bundle.problem,
        DATA,
        lambda name, exc: bundle.problem(f"{DATA}{name}: unreadable Parquet ({exc})"),
        tuple(d for d in DATASETS if d not in absent),
    )
    return made_by


def check_report(
    bundle: BundleZip,
    manifest: Mapping[str, Any],
    verifier: VerifierKey,
    data: Path,
    made_by: str | None,
    result: BundleVerification,
) -> None:
    """`report.json` and `report.html` are exactly the report of the (verified) data."""
    if made_by != REPORT_SCHEMA:
        # A report is rebuilt byte for byte by the code that knows its layout; an earlier
        # release's layout is not kept. Its data and events are proven above all the same.
        result.notes.append(
            f"{REPORT_JSON} and {REPORT_HTML} have the layout {made_by!r}, not "
            f"{REPORT_SCHEMA!r}: they are not rebuilt; the data and events they summarize "
            "are proven"
        )
        return
    since, until = manifest.get("since"), manifest.get("until")
    note = log_note((bundle.read(CHECKPOINT) or b"").decode("utf-8", "replace"), verifier.name)
    report = build_report(
        data,
        tenant=str(manifest.get("tenant")),
        since=None if since is None else datetime.fromisoformat(since.replace("Z", "+00:00")),
        until=None if until is None else datetime.fromisoformat(until.replace("Z", "+00:00")),
        context=ledger_context(note, str(verifier), str(manifest.get("created_at"))),
    )
    found = bundle.sha256(REPORT_JSON)
    if found is None or listing_digest(report) != found:
        # Not the bytes rendered column-wise (or not rendered there): the report's own writer
        # decides.
        rebuilt = data.parent / "report.json"
        with rebuilt.open("w", encoding="utf-8") as handle:
            report.write_json(handle)
        with rebuilt.open("rb") as handle:
            want = hashlib.file_digest(handle, "sha256").hexdigest()
        if found != want:
            bundle.problem(f"{REPORT_JSON}: not the report of the proven data")
    if bundle.read(REPORT_HTML) != render_html(report).encode("utf-8"):
        bundle.problem(f"{REPORT_HTML}: not the report of the proven data")


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


def _report_schema(bundle: BundleZip, name: str) -> str | None:
    """The `schema` member of a bundled report.json, or None when it has none or is not JSON.

    Reports are written with two-space indentation, top-level members on their own lines: the
    member is found by reading the lines (a report lists every decision: it is not loaded)."""
    lines = bundle.lines(name)
    if lines is None:
        return None
    for line in lines:
        found = _SCHEMA_LINE.fullmatch(line)
        if found is not None:
            value = json.loads(found.group(1))
            return value if isinstance(value, str) else None
    info = bundle.archive.getinfo(name)
    document = bundle.read(name) if info.file_size <= _PARSED_WHOLE else None
    if document is None:
        return None
    try:
        value = json.loads(document)
    except ValueError:
        return None
    schema = value.get("schema") if isinstance(value, dict) else None
    return schema if isinstance(schema, str) else None
