"""The compliance report's figures, aggregated in DuckDB from an export (docs/reports.md).

Every figure is a list of small rows `{key, value…}`; the per-decision list (`decisions`, in
position order) carries what each figure counts — the decision's attempts with their provider,
region and no_log, and the rules that removed entries — so any number traces back to the
decisions (and their ledger proofs). The figures are aggregated by the columnar engine and the
list is streamed out of it, so memory does not grow with the number of decisions."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow.parquet as pq

from ledger import LedgerError, open_checkpoint
from reports._engine import connect
from reports._errors import ReportsError

__all__ = ["REPORT_SCHEMA", "ComplianceReport", "build_report", "iso_us", "ledger_context"]

REPORT_SCHEMA = "unhardcoded.compliance-report/2"

_ROUND = 9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FETCH = 4096


def _money(value: float | None) -> float:
    return round(float(value or 0.0), _ROUND)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_us(micros: int) -> str:
    """A ledger timestamp (Unix microseconds) as ISO 8601 UTC with a `Z`."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat().replace("+00:00", "Z")


def _micros(at: datetime | None) -> int | None:
    if at is None:
        return None
    if at.tzinfo is None:
        raise ReportsError(f"time {at.isoformat()} has no time zone: give one (e.g. Z)")
    return int((at - _EPOCH) / timedelta(microseconds=1))


# The tenant's decisions in the period, and their attempts. `getvariable` carries the bounds so
# the views stay plain SQL (no values spliced into the text).
_VIEWS = """
CREATE TEMP VIEW d AS
SELECT * FROM decisions
WHERE tenant = getvariable('report_tenant')
  AND (getvariable('report_since') IS NULL OR epoch_us(recorded_at) >= getvariable('report_since'))
  AND (getvariable('report_until') IS NULL OR epoch_us(recorded_at) < getvariable('report_until'));
CREATE TEMP VIEW a AS
SELECT * FROM attempts
WHERE tenant = getvariable('report_tenant') AND decision_id IN (SELECT decision_id FROM d);
CREATE TEMP VIEW per_decision AS
SELECT decision_id,
       bool_and(coalesce(no_log, false)) AS under_no_log,
       max(attempt) AS tries,
       bool_or(status = 'ok') AS succeeded
FROM a GROUP BY decision_id;
CREATE TEMP VIEW outcome_rules AS
SELECT outcome_digest, rule, min(rule_index) AS rule_index, max(removed) AS removed
FROM eliminations
WHERE outcome_digest IN (SELECT DISTINCT outcome_digest FROM d)
GROUP BY outcome_digest, rule;
"""

_SUMMARY = """
SELECT count(*), count(*) FILTER (WHERE NOT preview), count(*) FILTER (WHERE preview),
       count(*) FILTER (WHERE selected_id IS NULL), sum(coalesce(selected_cost_usd, 0)),
       count(*) FILTER (WHERE selected_cost_usd IS NOT NULL),
       epoch_us(min(recorded_at)), epoch_us(max(recorded_at)), min(position), max(position)
FROM d
"""
_ATTEMPTS = """
SELECT count(*), sum(coalesce(cost_usd, 0)), count(DISTINCT decision_id) FILTER (
    WHERE cost_usd IS NOT NULL) FROM a
"""
_PER_DECISION = """
SELECT count(*), count(*) FILTER (WHERE under_no_log), count(*) FILTER (WHERE tries > 1),
       count(*) FILTER (WHERE NOT succeeded)
FROM per_decision
"""
_PER_DAY = "SELECT date, count(*) FROM d GROUP BY date ORDER BY date"
_PROVIDERS = """
SELECT coalesce(provider, '(none)') AS key, count(DISTINCT decision_id), count(*),
       sum(coalesce(cost_usd, 0))
FROM a GROUP BY key ORDER BY key
"""
_REGIONS = """
SELECT coalesce(region, '(none)') AS key, count(DISTINCT decision_id), count(*)
FROM a GROUP BY key ORDER BY key
"""
# Decisions share outcomes: a rule's hits are its per-outcome removals times the decisions with
# that outcome (outcomes × rules rows, never decisions × removed entries).
_RULES = """
WITH per_outcome AS (SELECT outcome_digest, count(*) AS decisions FROM d GROUP BY outcome_digest)
SELECT r.rule, sum(p.decisions), sum(p.decisions * r.removed)
FROM outcome_rules r JOIN per_outcome p USING (outcome_digest)
GROUP BY r.rule ORDER BY r.rule
"""
_LISTING = """
WITH tried AS (
    SELECT decision_id,
           list({'entry': entry_id, 'provider': provider, 'region': region, 'no_log': no_log,
                 'status': status, 'cost_usd': cost_usd} ORDER BY attempt) AS attempts
    FROM a GROUP BY decision_id
), why AS (
    SELECT * FROM explanations
    WHERE outcome_digest IN (SELECT DISTINCT outcome_digest FROM d)
)
SELECT d.decision_id, epoch_us(d.recorded_at) AS recorded_at_us, d.position, d.preview,
       d.policy_fingerprint || coalesce(' (' || d.policy_ir_version || ')', '')
           AS policy_fingerprint,
       d.catalog_version, d.selected_id, d.selected_cost_usd,
       tried.attempts, why.removals, why.why_selected
FROM d
LEFT JOIN tried USING (decision_id)
LEFT JOIN why ON why.outcome_digest = d.outcome_digest AND why.order_digest = d.order_digest
    AND why.policy_digest = d.policy_digest
    AND why.tokens_in IS NOT DISTINCT FROM d.tokens_in
    AND why.tokens_out IS NOT DISTINCT FROM d.tokens_out
ORDER BY d.position
"""
_POLICIES = """
SELECT p.fingerprint || coalesce(' (' || p.ir_version || ')', ''), p.digest, p.document,
       p.rules, count(*) AS decisions, epoch_us(min(d.recorded_at)), epoch_us(max(d.recorded_at))
FROM d JOIN policies p ON p.digest = d.policy_digest
GROUP BY p.fingerprint, p.ir_version, p.digest, p.document, p.rules ORDER BY min(d.position)
"""
_PER_DAY_MODEL = """
SELECT date, coalesce(selected_id, '(no entry passed)') AS model, count(*)
FROM d GROUP BY date, model ORDER BY date, model
"""
_COST_PER_DAY = """
WITH estimated AS (
    SELECT date, sum(coalesce(selected_cost_usd, 0)) AS usd FROM d GROUP BY date
), billed AS (SELECT date, sum(coalesce(cost_usd, 0)) AS usd FROM a GROUP BY date)
SELECT date, estimated.usd, coalesce(billed.usd, 0)
FROM estimated LEFT JOIN billed USING (date) ORDER BY date
"""


def _bind(
    con: duckdb.DuckDBPyConnection, tenant: str, since: int | None, until: int | None
) -> None:
    con.execute("SET VARIABLE report_tenant = ?", [tenant])
    con.execute("SET VARIABLE report_since = ?::BIGINT", [since])
    con.execute("SET VARIABLE report_until = ?::BIGINT", [until])
    con.execute(_VIEWS)


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    (row,) = con.execute(query).fetchall()  # an aggregate without GROUP BY: one row
    return tuple(row)


def _figures(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], dict[str, Any]]:
    (total, live, previews, no_entry, estimate, _, first_at, last_at, low, high) = _one(
        con, _SUMMARY
    )
    _, billed, _ = _one(con, _ATTEMPTS)
    sent, under, fell_back, failed = _one(con, _PER_DECISION)
    summary = [
        {"key": "decisions", "value": total},
        {"key": "live decisions", "value": live},
        {"key": "previews (not sent upstream)", "value": previews},
        {"key": "no entry passed", "value": no_entry},
        {"key": "decisions that sent data upstream", "value": sent},
        {"key": "share under no_log", "value": round(under / sent, 6) if sent else None},
        {"key": "cost billed (USD, attempts)", "value": _money(billed)},
        {"key": "cost estimated (USD, selected entries)", "value": _money(estimate)},
    ]
    figures = {
        "summary": summary,
        "requests_per_day": [
            {"key": day, "decisions": n} for day, n in con.execute(_PER_DAY).fetchall()
        ],
        "providers": [
            {"key": key, "decisions": n, "attempts": tries, "cost_usd": _money(cost)}
            for key, n, tries, cost in con.execute(_PROVIDERS).fetchall()
        ],
        "regions": [
            {"key": key, "decisions": n, "attempts": tries}
            for key, n, tries in con.execute(_REGIONS).fetchall()
        ],
        "no_log": [
            {"key": "no_log", "decisions": under},
            {"key": "logging allowed", "decisions": sent - under},
        ],
        "rules": [
            {"key": rule, "decisions": int(n), "eliminations": int(removed)}
            for rule, n, removed in con.execute(_RULES).fetchall()
        ],
        "fallbacks": [
            {"key": "fell back", "decisions": fell_back},
            {"key": "every attempt failed", "decisions": failed},
        ],
    }
    figures["decisions_per_day_by_model"] = [
        {"key": day, "model": model, "decisions": n}
        for day, model, n in con.execute(_PER_DAY_MODEL).fetchall()
    ]
    figures["cost_per_day"] = [
        {"key": day, "estimated_usd": _money(estimated), "billed_usd": _money(billed)}
        for day, estimated, billed in con.execute(_COST_PER_DAY).fetchall()
    ]
    covered = {
        "first_decision_at": None if first_at is None else iso_us(first_at),
        "last_decision_at": None if last_at is None else iso_us(last_at),
        "first_position": low,
        "last_position": high,
    }
    return figures, covered


def _policies(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [
        {
            "fingerprint": fingerprint,
            "digest": digest,
            "rules": list(rules),
            "normalized": json.dumps(json.loads(document), indent=2, sort_keys=True),
            "decisions": n,
            "first_used": iso_us(first),
            "last_used": iso_us(last),
        }
        for fingerprint, digest, document, rules, n, first, last in con.execute(
            _POLICIES
        ).fetchall()
    ]


def _listing_row(row: dict[str, Any]) -> dict[str, Any]:
    cost = row["selected_cost_usd"]
    return {
        "decision_id": row["decision_id"],
        "recorded_at": iso_us(row["recorded_at_us"]),
        "position": row["position"],
        "preview": bool(row["preview"]),
        "policy": row["policy_fingerprint"],
        "catalog_version": row["catalog_version"],
        "selected": row["selected_id"],
        "selected_cost_usd": None if cost is None else _money(cost),
        "why_selected": row["why_selected"],
        "removed": row["removals"] or [],
        "attempts": row["attempts"] or [],
    }


@dataclass(frozen=True)
class ComplianceReport:
    """The report: `document` (header and figures: small) and the per-decision list, streamed
    from the export folder it was built from (which must outlive the report's use)."""

    document: dict[str, Any]
    export: Path
    _bounds: tuple[str, int | None, int | None] = field(repr=False)

    def decisions(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The per-decision list, in ledger position order, or its first `limit` decisions
        (streamed: DuckDB sorts it into a scratch Parquet file, spilling to disk beyond its
        memory limit, and it is read back a batch at a time)."""
        query = _LISTING if limit is None else f"{_LISTING} LIMIT {int(limit)}"
        with tempfile.TemporaryDirectory(prefix="unhardcoded-listing-") as tmp:
            sorted_rows = Path(tmp) / "decisions.parquet"
            with connect(self.export) as con:
                _bind(con, *self._bounds)
                con.execute("SET preserve_insertion_order = true")
                con.execute(f"COPY ({query}) TO '{sorted_rows}' (FORMAT parquet)")
            for batch in pq.ParquetFile(sorted_rows).iter_batches(_FETCH):
                for row in batch.to_pylist():
                    yield _listing_row(row)

    def to_json(self) -> dict[str, Any]:
        """The whole machine-readable report in memory (fine for a small one; `write_json`
        streams a large one)."""
        return {**self.document, "decisions": list(self.decisions())}

    def write_json(self, out: IO[str]) -> None:
        """Write the JSON report: the document with sorted keys, then `decisions`, one per line
        (deterministic: the same report gives the same bytes)."""
        head = json.dumps(self.document, indent=2, sort_keys=True, ensure_ascii=False)
        out.write(head[: head.rindex("}")].rstrip() + ',\n  "decisions": [')
        first = True
        for row in self.decisions():
            out.write("\n    " if first else ",\n    ")
            out.write(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
            first = False
        out.write("\n  ]\n}\n" if not first else "]\n}\n")


def ledger_context(checkpoint_note: str, verifier_key: str, generated_at: str) -> dict[str, Any]:
    """What a report says of the ledger it was built from: its signed checkpoint (origin, tree
    size = events recorded, root, key) and how to check it; `generated_at` is ISO 8601 UTC."""
    try:
        checkpoint = open_checkpoint(checkpoint_note, verifier_key)
    except LedgerError as exc:
        raise ReportsError(f"the report's checkpoint does not open with its key: {exc}") from None
    name, key_hash = verifier_key.split("+")[:2]
    return {
        "generated_at": generated_at,
        "origin": checkpoint.origin,
        "events": checkpoint.size,
        "checkpoint": {
            "tree_size": checkpoint.size,
            "root_sha256": checkpoint.root.hex(),
            "key_id": f"{name}+{key_hash}",
            "verifier_key": verifier_key,
            "note": checkpoint_note,
        },
        "verify": [
            "unhardcoded ledger checkpoint --public-key   # must print the verifier_key above",
            "unhardcoded ledger verify                    # the whole ledger, against its roots",
            "unhardcoded ledger proof DECISION_ID         # one decision's inclusion proof",
            "unhardcoded bundle create --tenant TENANT bundle.zip && "
            "unhardcoded bundle verify bundle.zip --key VERIFIER_KEY   # offline",
        ],
    }


def build_report(
    export: Path | str,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    context: dict[str, Any] | None = None,
) -> ComplianceReport:
    """The compliance report of `tenant`'s decisions in [`since`, `until`) in an export folder.

    `context` adds what the export alone does not know (generation time, the ledger's size and
    signed checkpoint): it is stored under `ledger` in the document."""
    base = Path(export)
    bounds = (tenant, _micros(since), _micros(until))
    with connect(base) as con:
        _bind(con, *bounds)
        figures, covered = _figures(con)
        policies = _policies(con)
    document: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "tenant": tenant,
        "since": _iso(since),
        "until": _iso(until),
        "covered": covered,
        "figures": figures,
        "policies": policies,
    }
    if context is not None:
        document["ledger"] = context
    return ComplianceReport(document, base, bounds)
