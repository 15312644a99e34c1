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
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

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


def _table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    con.register(f"{name}_arrow", table)
    con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def _pieces(con: duckdb.DuckDBPyConnection, name: str, column: str, key: str) -> None:
    """Table `name` (value, text): each distinct value of the listing's `column` and its JSON
    text."""
    values = con.sql(f"SELECT DISTINCT {column} AS value FROM listing").to_arrow_table()
    render = _rendered(column, key)
    texts = [render(v) for v in values.column("value").to_pylist()]
    _table(con, name, values.append_column("text", pa.array(texts, pa.string())))


_PIECES = (
    ("catalog_texts", "catalog_version", "catalog_version"),
    ("policy_texts", "policy_fingerprint", "policy"),
    ("removed_texts", "removals", "removed"),
    ("selected_texts", "selected_id", "selected"),
    ("cost_texts", "selected_cost_usd", "selected_cost_usd"),
    ("why_texts", "why_selected", "why_selected"),
)
"""Values rendered once per distinct value: (table, listing column, row key)."""

_LINE = """
SELECT l.position,
       '{"attempts":' || coalesce(att.text, $3)
    || ',"catalog_version":' || cv.text
    || ',"decision_id":' || CASE WHEN regexp_matches(l.decision_id, $1)
                                 THEN '"' || l.decision_id || '"' END
    || ',"policy":' || pol.text
    || ',"position":' || CAST(l.position AS VARCHAR)
    || ',"preview":' || CASE WHEN l.preview THEN 'true' ELSE 'false' END
    || ',"recorded_at":"' || CASE WHEN l.recorded_at_us BETWEEN 0 AND $2 - 1 THEN
           strftime(make_timestamp(l.recorded_at_us), '%Y-%m-%dT%H:%M:%S')
           || CASE WHEN l.recorded_at_us % 1000000 = 0 THEN ''
                   ELSE '.' || lpad(CAST(l.recorded_at_us % 1000000 AS VARCHAR), 6, '0') END
           END || 'Z"'
    || ',"removed":' || rem.text
    || ',"selected":' || sel.text
    || ',"selected_cost_usd":' || cost.text
    || ',"why_selected":' || why.text
    || '}' AS line
FROM listing l
LEFT JOIN attempted att ON att.decision_id = l.decision_id
JOIN catalog_texts cv ON cv.value IS NOT DISTINCT FROM l.catalog_version
JOIN policy_texts pol ON pol.value IS NOT DISTINCT FROM l.policy_fingerprint
JOIN removed_texts rem ON rem.value IS NOT DISTINCT FROM l.removals
JOIN selected_texts sel ON sel.value IS NOT DISTINCT FROM l.selected_id
JOIN cost_texts cost ON cost.value IS NOT DISTINCT FROM l.selected_cost_usd
JOIN why_texts why ON why.value IS NOT DISTINCT FROM l.why_selected
"""


def _plain(report: ComplianceReport) -> bool:
    """Whether `_listing_row` has the layout rendered here: these keys, and the identifiers,
    position and preview flag as they are (the time as `iso_us`: compared by the tests)."""
    row = _listing_row(dict(_SAMPLE))
    return (
        sorted(row) == list(_KEYS)
        and row["decision_id"] == _SAMPLE["decision_id"]
        and row["position"] == _SAMPLE["position"]
        and row["preview"] is False
    )


def listing_digest(report: ComplianceReport) -> str | None:
    """The SHA-256 (hex) of the bytes `report.write_json` writes, or None when they are not
    made here (see the module docstring)."""
    frame = _frame(report) if _plain(report) else None
    if frame is None:
        return None
    before, between, after = frame
    with connect(report.export) as con:
        _bind(con, *report._bounds)
        con.execute(f"CREATE TEMP TABLE listing AS {_LISTING}")
        ((total,),) = con.execute("SELECT count(*) FROM listing").fetchall()
        if not total:
            return None  # the writer frames an empty list differently
        attempted = con.sql(
            "SELECT decision_id, attempts FROM listing WHERE len(attempts) > 0"
        ).to_arrow_table()
        render = _rendered("attempts", "attempts")
        texts = [render(a) for a in attempted.column("attempts").to_pylist()]
        _table(
            con,
            "attempted",
            pa.table({"decision_id": attempted.column("decision_id"), "text": texts}),
        )
        for name, column, key in _PIECES:
            _pieces(con, name, column, key)
        no_attempt = _rendered("attempts", "attempts")(None)
        lines = con.sql(_LINE, params=[_NO_ESCAPE, _LATEST_US, no_attempt])
        lines.create("lines")
        ((counted, complete),) = con.execute("SELECT count(*), count(line) FROM lines").fetchall()
        if counted != total or complete != total:
            return None
        digest = hashlib.sha256(before.encode("utf-8"))
        reader = con.sql("SELECT line FROM lines ORDER BY position").to_arrow_reader(_FETCH)
        separator = between.encode("utf-8")
        first = True
        for batch in reader:
            found = batch.column(0)
            if not len(found):
                continue
            # The batch's lines joined in Arrow, hashed from its buffer (no Python string).
            whole = pa.ListArray.from_arrays(pa.array([0, len(found)], pa.int32()), found)
            joined = pc.binary_join(whole, between)[0]
            if not first:
                digest.update(separator)
            digest.update(joined.as_buffer())
            first = False
        digest.update(after.encode("utf-8"))
        return digest.hexdigest()
