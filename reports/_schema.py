"""The Arrow schemas of the exported datasets, with a description of every column.

docs/reports.md's dataset tables are generated from here (`schema_markdown`, checked by the
tests), so the reference never drifts from what the exporter writes."""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "DATASETS",
    "DESCRIPTIONS",
    "PARTITIONS",
    "ROW",
    "SCHEMAS",
    "TIMESTAMP",
    "schema_markdown",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
"""Every timestamp: microseconds, time zone UTC (what the ledger records)."""

_DICT = pa.dictionary(pa.int32(), pa.string())

_GROUP = "(`outcome_digest`, `order_digest`, `policy_digest`, `tokens_in`, `tokens_out`)"

_COLUMNS: dict[str, list[tuple[str, pa.DataType, str]]] = {
    "decisions": [
        ("decision_id", pa.string(), "the decision's id (its `DecisionMade` event id)"),
        ("position", pa.int64(), "ledger position of the `DecisionMade` event"),
        (
            "sequence",
            pa.int64(),
            "its version in the tenant's decision sequence `decisions/<tenant>` (gapless per "
            "tenant, docs/bundles.md; null: recorded by release 0.1.0, without a sequence)",
        ),
        ("recorded_at", TIMESTAMP, "when the ledger recorded it"),
        ("preview", pa.bool_(), "a preview (`rank --record`): never sent upstream"),
        ("policy_fingerprint", _DICT, "the policy's fingerprint, e.g. `301140696-1054914287`"),
        ("policy_ir_version", _DICT, "the policy language version, e.g. `sigma-pol/v1`"),
        ("policy_digest", _DICT, "SHA-256 of the normalized policy (join `policies.digest`)"),
        ("catalog_version", _DICT, "the catalog version decided on (join `catalogs`)"),
        ("evaluator_version", _DICT, "the evaluator that decided"),
        ("request_digest", pa.string(), "SHA-256 of the request features"),
        ("tokens_in", pa.int64(), "input tokens the decision priced (null: none)"),
        ("tokens_out", pa.int64(), "output tokens the decision priced (null: none)"),
        ("outcome_digest", _DICT, "the filter outcome (join `eliminations`)"),
        ("order_digest", _DICT, "the rank order of the passing entries (join `rankings`)"),
        ("passing", pa.int32(), "entries that passed every rule"),
        ("selected_index", pa.int32(), "catalog index of the selected entry (null: none passed)"),
        ("selected_id", _DICT, "id of the selected entry"),
        ("selected_provider", _DICT, "its `provider` attribute"),
        ("selected_region", _DICT, "its `region` attribute"),
        ("selected_no_log", pa.bool_(), "its `no_log` attribute"),
        ("selected_cost_usd", pa.float64(), "its `cost_per_run` estimate in USD"),
        ("plan", pa.list_(pa.string()), "entry ids in fallback order"),
        ("date", pa.string(), "UTC date of `recorded_at` (partition)"),
        ("tenant", pa.string(), "the tenant (partition)"),
    ],
    "eliminations": [
        ("outcome_digest", _DICT, "the filter outcome"),
        ("policy_digest", _DICT, "the policy whose rule removed the entries"),
        ("catalog_version", _DICT, "the catalog the entry indexes refer to"),
        ("rule", _DICT, "the rule id (`catalog.status` is implicit in every policy)"),
        ("rule_index", pa.int16(), "the rule's position in the outcome (implicit rules first)"),
        ("needs", pa.string(), 'what the rule needs, e.g. `region = "eu"`'),
        ("removed", pa.int32(), "how many entries the rule removed"),
        ("entry_index", pa.list_(pa.int32()), "catalog indexes of the removed entries"),
        (
            "observed",
            pa.list_(pa.string()),
            'per removed entry, the values the rule saw, e.g. `region = "us"`',
        ),
    ],
    "rankings": [
        ("outcome_digest", _DICT, "the filter outcome"),
        ("order_digest", _DICT, "the rank order"),
        ("policy_digest", _DICT, "the policy whose rank keys ordered the entries"),
        ("tokens_in", pa.int64(), "input tokens the rank priced"),
        ("tokens_out", pa.int64(), "output tokens the rank priced"),
        ("catalog_version", _DICT, "the catalog the entry indexes refer to"),
        ("rank_keys", pa.list_(pa.string()), "the rank keys in order, e.g. `cost_per_run asc`"),
        ("entry_index", pa.list_(pa.int32()), "catalog indexes of the passing entries, by rank"),
        (
            "key_values",
            pa.list_(pa.list_(pa.float64())),
            "per ranked entry, its value for each rank key (null: missing, ranked last)",
        ),
    ],
    "explanations": [
        ("outcome_digest", _DICT, "the filter outcome"),
        ("order_digest", _DICT, "the rank order"),
        ("catalog_version", _DICT, "the catalog"),
        ("policy_digest", _DICT, "the policy"),
        ("tokens_in", pa.int64(), "input tokens"),
        ("tokens_out", pa.int64(), "output tokens"),
        ("selected_id", _DICT, "the selected entry"),
        ("why_selected", pa.string(), "why the winner won, as `ledger show` prints it"),
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
            "per rule that removed entries: how many, what it needs, one removed entry and "
            "its explanation",
        ),
    ],
    "attempts": [
        ("decision_id", pa.string(), "the decision"),
        ("attempt", pa.int16(), "1 for the first attempt, then 2, …"),
        ("position", pa.int64(), "ledger position of the `AttemptFinished` event"),
        ("recorded_at", TIMESTAMP, "when the ledger recorded it"),
        ("entry_id", _DICT, "the entry tried"),
        ("provider", _DICT, "its `provider`"),
        ("region", _DICT, "its `region`"),
        ("no_log", pa.bool_(), "its `no_log`"),
        ("status", _DICT, "`ok` or the failure kind"),
        ("error_class", _DICT, "the error class of a failure"),
        ("http_status", pa.int32(), "the upstream HTTP status"),
        ("latency_ms", pa.float64(), "upstream latency in milliseconds"),
        ("tokens_in", pa.int64(), "input tokens the provider reported"),
        ("tokens_out", pa.int64(), "output tokens the provider reported"),
        ("cost_usd", pa.float64(), "cost the gateway recorded, USD"),
        ("date", pa.string(), "UTC date of the decision (partition)"),
        ("tenant", pa.string(), "tenant of the decision (partition)"),
    ],
    "catalogs": [
        ("catalog_version", _DICT, "the catalog version"),
        ("name", _DICT, "the catalog's name"),
        ("published_at", TIMESTAMP, "when the ledger recorded it"),
        ("entry_index", pa.int32(), "the entry's index (what other datasets refer to)"),
        ("entry_id", pa.string(), "the entry's id"),
        ("model", _DICT, "its `model` attribute"),
        ("provider", _DICT, "its `provider` attribute"),
        ("region", _DICT, "its `region` attribute"),
        ("status", _DICT, "its `status` attribute"),
        ("no_log", pa.bool_(), "its `no_log` attribute"),
        ("price_in", pa.float64(), "USD per million input tokens"),
        ("price_out", pa.float64(), "USD per million output tokens"),
        ("context_window", pa.int64(), "its `context_window` attribute"),
        ("bench_intelligence", pa.float64(), "its `bench_intelligence` attribute"),
        ("attributes", pa.string(), "the whole entry as JSON"),
    ],
    "policies": [
        ("fingerprint", pa.string(), "the policy's fingerprint, e.g. `301140696-1054914287`"),
        ("ir_version", pa.string(), "the policy language version, e.g. `sigma-pol/v1`"),
        ("digest", pa.string(), "SHA-256 of the normalized policy"),
        ("recorded_at", TIMESTAMP, "when the ledger recorded it"),
        ("rules", pa.list_(pa.string()), "ids of the policy's own rules"),
        (
            "normalized_rules",
            pa.list_(
                pa.struct(
                    [
                        ("id", pa.string()),
                        ("implicit", pa.bool_()),
                        ("needs", pa.string()),
                        ("when", pa.string()),
                    ]
                )
            ),
            "every rule applied, in outcome order, implicit ones (`catalog.status`) first: id, "
            "whether implicit, the condition in words and as normalized JSON",
        ),
        ("rank", pa.list_(pa.string()), "the rank keys in order, e.g. `cost_per_run asc`"),
        ("max_attempts", pa.int32(), "the fallback plan's length"),
        ("document", pa.string(), "the normalized policy document (JSON)"),
    ],
}

SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema([(column, kind) for column, kind, _ in columns])
    for name, columns in _COLUMNS.items()
}
"""Dataset name → schema, partition columns included (they become folder names)."""

DESCRIPTIONS: dict[str, dict[str, str]] = {
    name: {column: text for column, _, text in columns} for name, columns in _COLUMNS.items()
}
"""Dataset name → column → what it holds."""

PARTITIONS: dict[str, tuple[str, ...]] = {
    "decisions": ("date", "tenant"),
    "attempts": ("date", "tenant"),
    "eliminations": (),
    "rankings": (),
    "explanations": (),
    "catalogs": (),
    "policies": (),
}
"""Hive partition columns per dataset: decisions and attempts by the decision's UTC date and
tenant; the others hold each distinct outcome, order, group, catalog and policy once."""

ROW: dict[str, str] = {
    "decisions": "decision",
    "eliminations": "distinct outcome × policy × rule that removed entries",
    "rankings": f"decision group {_GROUP}",
    "explanations": f"decision group {_GROUP}",
    "attempts": "upstream attempt",
    "catalogs": "catalog version × entry",
    "policies": "policy",
}
"""Dataset name → what one row is."""

DATASETS: tuple[str, ...] = tuple(SCHEMAS)


def _type(kind: pa.DataType) -> str:
    if pa.types.is_dictionary(kind):
        return f"{kind.value_type} (dictionary)"
    return str(kind).replace("timestamp[us, tz=UTC]", "timestamp[us, UTC]")


def schema_markdown() -> str:
    """The dataset reference of docs/reports.md: per dataset, what a row is and every column."""
    parts = []
    for name, columns in _COLUMNS.items():
        partitions = PARTITIONS[name]
        by = (
            "partitioned by " + ", ".join(f"`{c}`" for c in partitions)
            if partitions
            else "not partitioned"
        )
        lines = [
            f"### `{name}`",
            "",
            f"One row per {ROW[name]}; {by}.",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        lines += [f"| `{c}` | `{_type(k)}` | {text} |" for c, k, text in columns]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
