"""The Arrow schemas of the exported datasets (docs/reports.md, "Datasets")."""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "DATASETS",
    "PARTITIONS",
    "SCHEMAS",
    "TIMESTAMP",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
"""Every timestamp: microseconds, time zone UTC (what the ledger records)."""

_DICT = pa.dictionary(pa.int32(), pa.string())

SCHEMAS: dict[str, pa.Schema] = {
    "decisions": pa.schema(
        [
            ("decision_id", pa.string()),
            ("position", pa.int64()),
            ("recorded_at", TIMESTAMP),
            ("preview", pa.bool_()),
            ("policy_fingerprint", _DICT),
            ("policy_digest", _DICT),
            ("catalog_version", _DICT),
            ("evaluator_version", _DICT),
            ("request_digest", pa.string()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("outcome_digest", _DICT),
            ("order_digest", _DICT),
            ("passing", pa.int32()),
            ("selected_index", pa.int32()),
            ("selected_id", _DICT),
            ("selected_provider", _DICT),
            ("selected_region", _DICT),
            ("selected_no_log", pa.bool_()),
            ("selected_cost_usd", pa.float64()),
            ("plan", pa.list_(pa.string())),
            ("date", pa.string()),
            ("tenant", pa.string()),
        ]
    ),
    "eliminations": pa.schema(
        [
            ("outcome_digest", _DICT),
            ("catalog_version", _DICT),
            ("rule", _DICT),
            ("rule_index", pa.int16()),
            ("entry_index", pa.int32()),
            ("entry_id", _DICT),
            ("provider", _DICT),
            ("region", _DICT),
            ("tenant", pa.string()),
        ]
    ),
    "rankings": pa.schema(
        [
            ("outcome_digest", _DICT),
            ("order_digest", _DICT),
            ("catalog_version", _DICT),
            ("rank", pa.int32()),
            ("entry_index", pa.int32()),
            ("entry_id", _DICT),
            ("provider", _DICT),
            ("region", _DICT),
            ("tenant", pa.string()),
        ]
    ),
    "explanations": pa.schema(
        [
            ("outcome_digest", _DICT),
            ("order_digest", _DICT),
            ("catalog_version", _DICT),
            ("policy_digest", _DICT),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("selected_id", _DICT),
            ("why_selected", pa.string()),
            (
                "removals",
                pa.list_(
                    pa.struct(
                        [
                            ("rule", pa.string()),
                            ("rule_index", pa.int16()),
                            ("removed", pa.int32()),
                            ("needs", pa.string()),
                            ("example_entry", pa.string()),
                            ("example", pa.string()),
                        ]
                    )
                ),
            ),
            ("tenant", pa.string()),
        ]
    ),
    "attempts": pa.schema(
        [
            ("decision_id", pa.string()),
            ("attempt", pa.int16()),
            ("position", pa.int64()),
            ("recorded_at", TIMESTAMP),
            ("entry_id", _DICT),
            ("provider", _DICT),
            ("region", _DICT),
            ("no_log", pa.bool_()),
            ("status", _DICT),
            ("error_class", _DICT),
            ("http_status", pa.int32()),
            ("latency_ms", pa.float64()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("cost_usd", pa.float64()),
            ("date", pa.string()),
            ("tenant", pa.string()),
        ]
    ),
    "catalogs": pa.schema(
        [
            ("catalog_version", _DICT),
            ("name", _DICT),
            ("published_at", TIMESTAMP),
            ("entry_index", pa.int32()),
            ("entry_id", pa.string()),
            ("model", _DICT),
            ("provider", _DICT),
            ("region", _DICT),
            ("status", _DICT),
            ("no_log", pa.bool_()),
            ("price_in", pa.float64()),
            ("price_out", pa.float64()),
            ("context_window", pa.int64()),
            ("bench_intelligence", pa.float64()),
            ("attributes", pa.string()),
        ]
    ),
    "policies": pa.schema(
        [
            ("fingerprint", pa.string()),
            ("digest", pa.string()),
            ("recorded_at", TIMESTAMP),
            ("rules", pa.list_(pa.string())),
            ("max_attempts", pa.int32()),
            ("document", pa.string()),
        ]
    ),
}
"""Dataset name → schema, partition columns included (they become folder names)."""

PARTITIONS: dict[str, tuple[str, ...]] = {
    "decisions": ("date", "tenant"),
    "attempts": ("date", "tenant"),
    "eliminations": ("tenant",),
    "rankings": ("tenant",),
    "explanations": ("tenant",),
    "catalogs": (),
    "policies": (),
}
"""Hive partition columns per dataset: decisions and attempts by the decision's UTC date and
tenant; the content-addressed eliminations and rankings by tenant only (each distinct outcome once
per tenant, so a tenant's folder is self-contained); catalogs and policies are not partitioned."""

DATASETS: tuple[str, ...] = tuple(SCHEMAS)
