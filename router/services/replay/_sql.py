"""`--mode original` over exported Parquet, for engines beyond one machine: the distinct groups
of a `decisions` dataset (docs/reports.md) are evaluated once here, written as a small
`replay_groups` table, and joined to the decisions by SQL that runs unchanged on DuckDB and on
Spark SQL (plain joins, CASE, COALESCE and array equality; no engine-specific function).

    keys = engine.sql(GROUP_KEYS_SQL)                         # distinct groups, a few thousand
    groups = await evaluate_groups(decisions_service, keys)   # a pyarrow Table, one row per group
    engine.register("replay_groups", groups)
    mismatches = engine.sql(MISMATCHES_SQL)                    # one row per mismatching decision

The dataset carries the tokens each decision priced, not the request's token counts, so a group
is evaluated with those as the request's: every field `verify` checks is compared except the
decision id (the dataset's id is the event id) and the cached tokens (not exported).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from router.core import EVALUATOR_VERSION, MissingTokensError, RequestFeatures, decide
from router.services.decisions import (
    DecisionError,
    DecisionService,
    encode_outcome,
    order_digest,
    outcome_digest,
)

__all__ = ["GROUPS_SCHEMA", "GROUP_KEYS_SQL", "MISMATCHES_SQL", "evaluate_groups"]

_KEY = (
    "policy_fingerprint",
    "policy_ir_version",
    "policy_digest",
    "catalog_version",
    "tokens_in",
    "tokens_out",
)
# Null-safe equality that both engines read the same way (Spark has no IS NOT DISTINCT FROM
# before 3.x everywhere; DuckDB has no <=>): a value no key column holds stands for null.
_NULL = {"policy_ir_version": "''", "tokens_in": "-1", "tokens_out": "-1"}

GROUP_KEYS_SQL = f"SELECT DISTINCT {', '.join(_KEY)} FROM decisions"
"""The distinct groups of the `decisions` view."""

_TYPES: dict[str, pa.DataType] = {
    "policy_fingerprint": pa.string(),
    "policy_ir_version": pa.string(),
    "policy_digest": pa.string(),
    "catalog_version": pa.string(),
    "tokens_in": pa.int64(),
    "tokens_out": pa.int64(),
}

GROUPS_SCHEMA = pa.schema(
    [
        *((f"key_{name}", _TYPES[name]) for name in _KEY),
        ("error_field", pa.string()),
        ("error", pa.string()),
        ("evaluator_version", pa.string()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("outcome_digest", pa.string()),
        ("passing", pa.int32()),
        ("order_digest", pa.string()),
        ("selected_index", pa.int32()),
        ("selected_id", pa.string()),
        ("plan", pa.list_(pa.string())),
    ]
)
"""The schema of `replay_groups`: the group key (`key_*`), the error that kept the group from
being evaluated (field and text), else the evaluation's fields as the decisions dataset holds
them (`plan`: entry ids)."""

_SAME_KEY = " AND ".join(
    f"coalesce(d.{name}, {_NULL[name]}) = coalesce(g.key_{name}, {_NULL[name]})"
    if name in _NULL
    else f"d.{name} = g.key_{name}"
    for name in _KEY
)

MISMATCHES_SQL = f"""
SELECT decision_id, position, tenant, field FROM (
    SELECT d.decision_id, d.position, d.tenant,
        CASE
            WHEN g.error_field IS NOT NULL THEN g.error_field
            WHEN d.evaluator_version <> g.evaluator_version THEN 'evaluator_version'
            WHEN coalesce(d.tokens_in, -1) <> coalesce(g.tokens_in, -1)
                OR coalesce(d.tokens_out, -1) <> coalesce(g.tokens_out, -1) THEN 'tokens'
            WHEN d.outcome_digest <> g.outcome_digest THEN 'filter.outcome'
            WHEN d.passing <> g.passing THEN 'filter.passing'
            WHEN d.order_digest <> g.order_digest THEN 'rank.order_sha256'
            WHEN coalesce(d.selected_index, -1) <> coalesce(g.selected_index, -1)
                OR coalesce(d.selected_id, '') <> coalesce(g.selected_id, '') THEN 'selected'
            WHEN d.plan <> g.plan THEN 'plan'
        END AS field
    FROM decisions d JOIN replay_groups g ON {_SAME_KEY}
) AS checked
WHERE field IS NOT NULL
"""
"""One row per decision of the `decisions` view whose recorded outcome its group's evaluation
does not reproduce: the first differing field, in the order `--mode original` checks them."""


async def evaluate_groups(decisions: DecisionService, keys: Iterable[Sequence[Any]]) -> pa.Table:
    """Evaluate each group (a row of `GROUP_KEYS_SQL`) once: the `replay_groups` table."""
    out = []
    for key in keys:
        fingerprint, ir_version, digest, version, tokens_in, tokens_out = key
        row: dict[str, Any] = dict.fromkeys(GROUPS_SCHEMA.names)
        row.update(zip((f"key_{name}" for name in _KEY), key, strict=True))
        # The ledger's stream of a policy is its fingerprint with the IR version, as recorded.
        stream = str(fingerprint) if ir_version is None else f"{fingerprint} ({ir_version})"
        try:
            policy = await decisions.policy(stream, str(digest))
        except DecisionError as exc:
            row.update(error_field="policy", error=str(exc))
            out.append(row)
            continue
        try:
            catalog = await decisions.catalog_version(str(version))
        except DecisionError as exc:
            row.update(error_field="catalog_version", error=str(exc))
            out.append(row)
            continue
        features = (
            None if tokens_in is None else RequestFeatures(int(tokens_in), int(tokens_out or 0))
        )
        try:
            trace = decide(policy, catalog, features)
        except MissingTokensError as exc:
            row.update(error_field="tokens", error=str(exc))
            out.append(row)
            continue
        ids = [entry.id for entry in catalog.entries]
        row.update(
            evaluator_version=EVALUATOR_VERSION,
            tokens_in=None if trace.tokens is None else trace.tokens.tokens_in,
            tokens_out=None if trace.tokens is None else trace.tokens.tokens_out,
            outcome_digest=outcome_digest(encode_outcome(trace)),
            passing=len(trace.ranked),
            order_digest=order_digest(trace.ranked),
            selected_index=trace.selected,
            selected_id=None if trace.selected is None else ids[trace.selected],
            plan=[ids[i] for i in trace.plan],
        )
        out.append(row)
    return pa.Table.from_pylist(out, schema=GROUPS_SCHEMA)
