"""The SHA-256 of a report.json made column-wise: its per-decision list rendered in DuckDB.

`ComplianceReport.write_json` writes one JSON line per decision, a dict built and dumped in
Python for each: for a large bundle that costs more than all the other checks together. Here the
same bytes are made without a Python object per decision. The report's own writer gives the
frame (everything but the lines: the document, the separators) by writing a report whose list
is two marker rows. Each line is assembled in DuckDB from pieces that are, by construction, what
the writer's `json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
writes for the row `_listing_row` makes: the JSON text of every value that is not a plain
integer, boolean or string without a character to escape is made in Python by that same
`json.dumps`, once per distinct value (rules removed and why the winner won are per group,
costs per selected entry and token counts), and joined back. Anything this does not cover — an
unknown row layout, a string to escape, a time outside 1970..9999 — makes it answer None: the
report is then rebuilt by its own code, which decides."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reports._engine import connect
from reports._report import _LISTING, ComplianceReport, _bind, _listing_row

__all__ = ["listing_digest"]

_KEYS = (
    "attempts",
    "catalog_version",
    "decision_id",
    "policy",
    "position",
    "preview",
    "recorded_at",
    "removed",
    "selected",
    "selected_cost_usd",
    "why_selected",
)
_SAMPLE = {
    "decision_id": "d",
    "recorded_at_us": 0,
    "position": 0,
    "preview": False,
    "policy_fingerprint": "p",
    "catalog_version": "c",
    "selected_id": None,
    "selected_cost_usd": 0.1,
    "why_selected": "w",
    "removals": [],
    "attempts": [],
}
"""A row of `_LISTING` as `_listing_row` reads it: its answer must have exactly `_KEYS`."""

_MARK = "listing marker é"
_FETCH = 4096
_READ = [
    "decision_id",
    "position",
    "preview",
    "policy_fingerprint",
    "catalog_version",
    "selected_id",
    "selected_cost_usd",
    "why_selected",
    "removals_key",
    "recorded_text",
]
"""The listing's columns the lines are made of (the lists of rules removed by their key)."""
_GROUPS = "ROW_GROUP_SIZE 4096"
"""Rows per Parquet row group: the writer holds one in memory (lines are ~1 KB each)."""
_NO_ESCAPE = r"""^[^"\\\x00-\x1f]*$"""
"""A string JSON writes between quotes as it is (ensure_ascii=False escapes only these)."""
_LATEST_US = 253_402_300_800_000_000
"""Year 10000: `isoformat` writes four-digit years only."""


class _Framed(ComplianceReport):
    """The report with two marker rows for a list: what its writer puts around the lines."""

    def decisions(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Two marker rows."""
        return iter([{"b": 1, "a": _MARK}, {"b": 1, "a": _MARK}])


def _frame(report: ComplianceReport) -> tuple[str, str, str] | None:
    """(before the first line, between two lines, after the last), or None when the writer's
    lines are not compact JSON with sorted keys and characters unescaped."""
    out = io.StringIO()
    _Framed(report.document, report.export, report._bounds).write_json(out)
    text = out.getvalue()
    line = json.dumps({"a": _MARK, "b": 1}, ensure_ascii=False, separators=(",", ":"))
    if text.count(line) != 2:
        return None
    first = text.index(line)
    second = text.index(line, first + len(line))
    return text[:first], text[first + len(line) : second], text[second + len(line) :]


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rendered(column: str, key: str) -> Callable[[object], str]:
    """The JSON text `_listing_row` and the writer make of a value of the listing's `column`
    (at the row's `key`)."""
    return lambda value: _dumps(_listing_row({**_SAMPLE, column: value})[key])


_PIECES = (
    ("catalog_version", "catalog_version"),
    ("policy_fingerprint", "policy"),
    ("removals", "removed"),
    ("selected_id", "selected"),
    ("selected_cost_usd", "selected_cost_usd"),
    ("why_selected", "why_selected"),
)
"""Listing columns rendered once per distinct value (column, row key), found by the column
itself or, for `removals` (a list of structs), by its DuckDB JSON text as a key."""

_EXTRA = """
SELECT *, to_json(removals)::VARCHAR AS removals_key,
       CASE WHEN recorded_at_us BETWEEN 0 AND $1 - 1 THEN
           strftime(make_timestamp(recorded_at_us), '%Y-%m-%dT%H:%M:%S')
           || CASE WHEN recorded_at_us % 1000000 = 0 THEN ''
                   ELSE '.' || lpad(CAST(recorded_at_us % 1000000 AS VARCHAR), 6, '0') END
           || 'Z' END AS recorded_text
FROM (LISTING)
"""
"""The listing in position order with what the lines need beside it: the time as `iso_us`
writes it (in 1970..9999), and a key for each distinct list of rules removed."""


def _plain() -> bool:
    """Whether `_listing_row` has the layout rendered here: these keys, and the identifiers,
    position and preview flag as they are (the time as `iso_us`: compared by the tests)."""
    row = _listing_row(dict(_SAMPLE))
    return (
        sorted(row) == list(_KEYS)
        and row["decision_id"] == _SAMPLE["decision_id"]
        and row["position"] == _SAMPLE["position"]
        and row["preview"] is False
    )


class _Texts:
    """The JSON texts of the distinct values of the listing's columns."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.values: dict[str, pa.Array] = {}
        self.texts: dict[str, pa.Array] = {}
        for column, key in _PIECES:
            by = "removals_key" if column == "removals" else column
            found = con.sql(f"SELECT DISTINCT ON ({by}) {by} AS k, {column} AS v FROM listing")
            table = found.to_arrow_table()
            render = _rendered(column, key)
            self.values[column] = table.column("k").combine_chunks()
            texts = [render(v) for v in table.column("v").to_pylist()]
            self.texts[column] = pa.array(texts, pa.string())
        attempted = con.sql(
            "SELECT decision_id, attempts FROM listing WHERE len(attempts) > 0"
        ).to_arrow_table()
        render = _rendered("attempts", "attempts")
        self.values["attempts"] = attempted.column("decision_id").combine_chunks()
        texts = [render(a) for a in attempted.column("attempts").to_pylist()]
        self.texts["attempts"] = pa.array(texts, pa.string())
        self.no_attempt = render(None)

    def of(self, column: str, values: pa.Array) -> pa.Array:
        """The texts of `values` (null where a value has none)."""
        found = pc.index_in(values, value_set=self.values[column], skip_nulls=False)
        return pc.take(self.texts[column], found)

    def lines(self, batch: pa.RecordBatch) -> pa.Array | None:
        """The lines of a batch of the listing, or None when one is not made here."""
        ids = batch.column("decision_id")
        times = batch.column("recorded_text")
        if not len(ids):
            return pa.array([], pa.string())
        if not pc.all(pc.match_substring_regex(ids, _NO_ESCAPE)).as_py():
            return None
        if times.null_count:
            return None
        attempts = pc.fill_null(self.of("attempts", ids), self.no_attempt)
        parts = [
            '{"attempts":',
            attempts,
            ',"catalog_version":',
            self.of("catalog_version", batch.column("catalog_version")),
            ',"decision_id":"',
            ids,
            '","policy":',
            self.of("policy_fingerprint", batch.column("policy_fingerprint")),
            ',"position":',
            pc.cast(batch.column("position"), pa.string()),
            ',"preview":',
            pc.if_else(batch.column("preview"), "true", "false"),
            ',"recorded_at":"',
            times,
            '","removed":',
            self.of("removals", batch.column("removals_key")),
            ',"selected":',
            self.of("selected_id", batch.column("selected_id")),
            ',"selected_cost_usd":',
            self.of("selected_cost_usd", batch.column("selected_cost_usd")),
            ',"why_selected":',
            self.of("why_selected", batch.column("why_selected")),
            "}",
        ]
        lines = pc.binary_join_element_wise(*parts, "")
        return None if lines.null_count else lines


def listing_digest(report: ComplianceReport) -> str | None:
    """The SHA-256 (hex) of the bytes `report.write_json` writes, or None when they are not
    made here (see the module docstring)."""
    frame = _frame(report) if _plain() else None
    if frame is None:
        return None
    before, between, after = frame
    with (
        tempfile.TemporaryDirectory(prefix="unhardcoded-listing-") as tmp,
        connect(report.export) as con,
    ):
        # The list goes through a Parquet file in position order: DuckDB sorts it under its
        # memory limit, spilling to disk, whatever the number of decisions; the lines are
        # then made a batch at a time in Arrow.
        listed = Path(tmp) / "listing.parquet"
        _bind(con, *report._bounds)
        con.execute("SET preserve_insertion_order = true")  # the file keeps the sort order
        query = _EXTRA.replace("LISTING", _LISTING)
        con.execute(f"COPY ({query}) TO '{listed}' (FORMAT parquet, {_GROUPS})", [_LATEST_US])
        con.read_parquet(str(listed)).create_view("listing")
        ((total,),) = con.execute("SELECT count(*) FROM listing").fetchall()
        if not total:
            return None  # the writer frames an empty list differently
        texts = _Texts(con)
        digest = hashlib.sha256(before.encode("utf-8"))
        separator = between.encode("utf-8")
        first = True
        for batch in pq.ParquetFile(listed).iter_batches(_FETCH, columns=_READ):
            lines = texts.lines(batch)
            if lines is None:
                return None
            if not len(lines):
                continue
            # The batch's lines joined in Arrow, hashed from its buffer (no Python string).
            whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
            joined = pc.binary_join(whole, between)[0]
            if not first:
                digest.update(separator)
            digest.update(joined.as_buffer())
            first = False
        digest.update(after.encode("utf-8"))
        return digest.hexdigest()
