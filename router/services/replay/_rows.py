"""The rows of a replay: per group its result (what DuckDB joins to the decisions), per decision
its row (what a `RowSink` receives and `replay --parquet` writes), and the examples a report
keeps. One place for their columns: the per-decision columns are the decision's own followed by
its group's result."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from router.services.replay._compare import Change, Mismatch, Recorded

__all__ = [
    "AGAINST_RESULTS",
    "AGAINST_ROWS",
    "NEW_KEYS",
    "ORIGINAL_RESULTS",
    "ORIGINAL_ROWS",
    "against_example",
    "against_result",
    "against_row",
    "change_of",
    "original_example",
    "original_result",
]

_DECISION = [
    ("decision_id", pa.string()),
    ("position", pa.int64()),
    ("recorded_at_us", pa.int64()),
    ("tenant", pa.string()),
    ("fingerprint", pa.string()),
    ("catalog_version", pa.string()),
]
_MISMATCH = [("field", pa.string()), ("recorded", pa.string()), ("replayed", pa.string())]
_CHANGE = [
    ("previous", pa.string()),
    ("selected", pa.string()),
    ("changed", pa.bool_()),
    ("previous_cost", pa.float64()),
    ("cost", pa.float64()),
    ("cost_delta", pa.float64()),
    ("previous_status", pa.string()),
    ("removed_by", pa.list_(pa.string())),
    ("no_entry_passes", pa.bool_()),
]
_GID = ("gid", pa.int64())
_CATALOG = ("catalog_version", pa.string())
_ERROR = ("error", pa.string())

ORIGINAL_RESULTS = pa.schema([_GID, _CATALOG, *_MISMATCH])
"""The result of one group of `--mode original` (field None: reproduced)."""

AGAINST_RESULTS = pa.schema([_GID, _CATALOG, _ERROR, *_CHANGE])
"""The result of one group of `--against` (error set: it could not be re-evaluated)."""

ORIGINAL_ROWS = pa.schema([*_DECISION, ("ok", pa.bool_()), *_MISMATCH])
"""One replayed decision of `--mode original` (docs/replay.md)."""

AGAINST_ROWS = pa.schema([*_DECISION, ("target_version", pa.string()), *_CHANGE, _ERROR])
"""One replayed decision of `--against` (docs/replay.md)."""

NEW_KEYS = pa.schema([("key", pa.string()), ("gid", pa.int64())])
"""Group keys and the ids of their results."""

_MISMATCH_NAMES = tuple(name for name, _ in _MISMATCH)


def original_result(gid: int, record: Recorded | None, mismatch: Mismatch | None) -> dict[str, Any]:
    """The `ORIGINAL_RESULTS` row of one group (or of one decision read on its own)."""
    return {
        "gid": gid,
        "catalog_version": None if record is None else record.catalog_version,
        **dict.fromkeys(_MISMATCH_NAMES),
        **({} if mismatch is None else mismatch.to_json()),
    }


def original_example(row: dict[str, Any]) -> dict[str, Any]:
    """A mismatch as a report's example keeps it."""
    return {k: row[k] for k in ("decision_id", "position", *_MISMATCH_NAMES)}


def against_result(
    gid: int, record: Recorded | None, change: Change | None, error: str | None
) -> dict[str, Any]:
    """The `AGAINST_RESULTS` row of one group (or of one decision read on its own)."""
    return {
        "gid": gid,
        "catalog_version": None if record is None else record.catalog_version,
        "error": error,
        "previous": None if change is None else change.previous,
        "selected": None if change is None else change.selected,
        "changed": None if change is None else change.changed,
        "previous_cost": None if change is None else change.previous_cost,
        "cost": None if change is None else change.cost,
        "cost_delta": None if change is None else change.cost_delta,
        "previous_status": None if change is None else change.previous_status,
        "removed_by": [] if change is None else list(change.removed_by),
        "no_entry_passes": None if change is None else change.no_entry_passes,
    }


def change_of(row: dict[str, Any]) -> Change:
    """The `Change` an `AGAINST_RESULTS` row holds."""
    return Change(
        previous=row["previous"],
        selected=row["selected"],
        previous_cost=row["previous_cost"],
        cost=row["cost"],
        previous_status=row["previous_status"],
        removed_by=tuple(row["removed_by"]),
        no_entry_passes=row["no_entry_passes"],
    )


def against_example(row: dict[str, Any]) -> dict[str, Any]:
    """A change or an error as a report's example keeps it."""
    if row["error"] is not None:
        return {
            "decision_id": row["decision_id"],
            "position": row["position"],
            "error": row["error"],
        }
    return {
        "decision_id": row["decision_id"],
        "position": row["position"],
        "tenant": row["tenant"],
        "fingerprint": row["fingerprint"],
        "previous": row["previous"],
        "selected": row["selected"],
        "previous_cost": row["previous_cost"],
        "cost": row["cost"],
        "previous_status": row["previous_status"],
        "removed_by": list(row["removed_by"]),
    }


def against_row(row: dict[str, Any], target_version: str) -> dict[str, Any]:
    """The `AGAINST_ROWS` row of one decision joined to its group's result."""
    out = {name: row.get(name) for name in AGAINST_ROWS.names}
    out["target_version"] = target_version
    out["removed_by"] = list(row["removed_by"])
    return out
