"""The compliance report's figures, computed with pandas from an export (docs/reports.md).

Every figure is a list of rows `{key, value…, decision_ids}`: the decision ids are what the figure
counts, so an auditor can trace any number back to the decisions (and their ledger proofs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from reports._writer import read_dataset

__all__ = ["REPORT_SCHEMA", "ComplianceReport", "build_report"]

REPORT_SCHEMA = "unhardcoded.compliance-report/1"

_ROUND = 9


def _frame(table: pa.Table) -> pd.DataFrame:
    """A data frame with dictionary columns decoded to plain strings (so groupby sees values)."""
    fields = [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    frame: pd.DataFrame = table.cast(pa.schema(fields)).to_pandas()
    return frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _ids(series: pd.Series) -> list[str]:
    return sorted(set(series.tolist()))


def _money(value: float) -> float:
    return round(float(value), _ROUND)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ComplianceReport:
    """The report's document (see `to_json`); render it with `render_html`."""

    document: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable report: `figures` name → rows with `decision_ids`."""
        return self.document


def _grouped(
    frame: pd.DataFrame, key: str, id_column: str, extra: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if frame.empty:
        return rows
    filled = frame.assign(**{key: frame[key].fillna("(none)")})
    for value, group in filled.groupby(key, sort=True):
        row: dict[str, Any] = {"key": str(value), "decisions": int(group[id_column].nunique())}
        for name, (column, how) in extra.items():
            if how == "count":
                row[name] = len(group)
            elif how == "sum":
                row[name] = _money(group[column].fillna(0.0).sum())
        row["decision_ids"] = _ids(group[id_column])
        rows.append(row)
    return rows


def build_report(
    export: Path | str,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ComplianceReport:
    """The compliance report of `tenant`'s decisions in [`since`, `until`) in an export folder."""
    base = Path(export)
    decisions = _frame(read_dataset(base, "decisions"))
    decisions = decisions[decisions["tenant"] == tenant]
    if since is not None:
        decisions = decisions[decisions["recorded_at"] >= pd.Timestamp(since)]
    if until is not None:
        decisions = decisions[decisions["recorded_at"] < pd.Timestamp(until)]
    decisions = decisions.sort_values("position")
    chosen = set(decisions["decision_id"])
    attempts = _frame(read_dataset(base, "attempts"))
    attempts = attempts[attempts["decision_id"].isin(chosen)].sort_values("position")
    eliminations = _frame(read_dataset(base, "eliminations"))
    eliminations = eliminations[eliminations["tenant"] == tenant]

    live = decisions[~decisions["preview"]]
    no_entry = decisions[decisions["selected_id"].isna()]
    per_day = [
        {"key": str(day), "decisions": len(group), "decision_ids": _ids(group["decision_id"])}
        for day, group in decisions.groupby("date", sort=True)
    ]

    sent = attempts.copy()
    providers = _grouped(
        sent,
        "provider",
        "decision_id",
        {"attempts": ("", "count"), "cost_usd": ("cost_usd", "sum")},
    )
    regions = _grouped(sent, "region", "decision_id", {"attempts": ("", "count")})

    by_decision = attempts.groupby("decision_id")
    all_no_log = by_decision["no_log"].agg(lambda s: bool(s.fillna(False).all()))
    under = sorted(all_no_log[all_no_log].index.tolist())
    not_under = sorted(all_no_log[~all_no_log].index.tolist())
    sent_count = len(all_no_log)
    no_log = [
        {"key": "no_log", "decisions": len(under), "decision_ids": under},
        {"key": "logging allowed", "decisions": len(not_under), "decision_ids": not_under},
    ]

    hits = decisions[["decision_id", "outcome_digest"]].merge(
        eliminations[["outcome_digest", "rule", "entry_index"]].drop_duplicates(),
        on="outcome_digest",
    )
    rules = []
    for rule, group in hits.groupby("rule", sort=True):
        per = group.groupby("decision_id")["entry_index"].nunique()
        rules.append(
            {
                "key": str(rule),
                "decisions": int(per.size),
                "eliminations": int(per.sum()),
                "decision_ids": sorted(per.index.tolist()),
            }
        )

    counts = by_decision["attempt"].max() if not attempts.empty else pd.Series(dtype="int64")
    fallback_ids = sorted(counts[counts > 1].index.tolist())
    succeeded = set(attempts.loc[attempts["status"] == "ok", "decision_id"])
    failed_ids = sorted(set(attempts["decision_id"]) - succeeded)
    fallbacks = [
        {"key": "fell back", "decisions": len(fallback_ids), "decision_ids": fallback_ids},
        {"key": "every attempt failed", "decisions": len(failed_ids), "decision_ids": failed_ids},
    ]

    cost_actual = _money(attempts["cost_usd"].fillna(0.0).sum())
    cost_estimate = _money(decisions["selected_cost_usd"].fillna(0.0).sum())
    summary = [
        {
            "key": "decisions",
            "value": len(decisions),
            "decision_ids": _ids(decisions["decision_id"]),
        },
        {"key": "live decisions", "value": len(live), "decision_ids": _ids(live["decision_id"])},
        {
            "key": "previews (not sent upstream)",
            "value": int(decisions["preview"].sum()),
            "decision_ids": _ids(decisions.loc[decisions["preview"], "decision_id"]),
        },
        {
            "key": "no entry passed",
            "value": len(no_entry),
            "decision_ids": _ids(no_entry["decision_id"]),
        },
        {
            "key": "decisions that sent data upstream",
            "value": sent_count,
            "decision_ids": sorted(all_no_log.index.tolist()),
        },
        {
            "key": "share under no_log",
            "value": round(len(under) / sent_count, 6) if sent_count else None,
            "decision_ids": under,
        },
        {
            "key": "cost billed (USD, attempts)",
            "value": cost_actual,
            "decision_ids": _ids(attempts.loc[attempts["cost_usd"].notna(), "decision_id"]),
        },
        {
            "key": "cost estimated (USD, selected entries)",
            "value": cost_estimate,
            "decision_ids": _ids(
                decisions.loc[decisions["selected_cost_usd"].notna(), "decision_id"]
            ),
        },
    ]
    tried: dict[str, list[str]] = {}
    for a in _records(attempts):
        tried.setdefault(a["decision_id"], []).append(f"{a['entry_id']}: {a['status']}")
    listing = [
        {
            "decision_id": row["decision_id"],
            "recorded_at": row["recorded_at"].isoformat().replace("+00:00", "Z"),
            "preview": bool(row["preview"]),
            "policy": row["policy_fingerprint"],
            "selected": None if pd.isna(row["selected_id"]) else row["selected_id"],
            "attempts": tried.get(row["decision_id"], []),
            "position": int(row["position"]),
        }
        for row in _records(decisions)
    ]
    document = {
        "schema": REPORT_SCHEMA,
        "tenant": tenant,
        "since": _iso(since),
        "until": _iso(until),
        "figures": {
            "summary": summary,
            "requests_per_day": per_day,
            "providers": providers,
            "regions": regions,
            "no_log": no_log,
            "rules": rules,
            "fallbacks": fallbacks,
        },
        "decisions": listing,
    }
    return ComplianceReport(document)
