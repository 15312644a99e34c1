"""What a replay run reports: counts, per-field mismatches, per-tenant / per-policy / per-rule
aggregates of what changes, the first examples, and the digest the `ReplayRun` event records."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ledger import canonical_json
from router.services.replay._compare import Change

__all__ = ["EXAMPLES", "Aggregate", "ReplayReport", "RuleImpact", "summary_digest"]

EXAMPLES = 100
"""Mismatches or changed decisions kept as examples in the report (all go to the row sink)."""

LISTED_ENTRIES = 50
"""Entry ids listed per rule (the counts are always complete)."""


@dataclass(slots=True)
class Aggregate:
    """What changes for one tenant or one policy fingerprint (`--against`)."""

    decisions: int = 0
    changed: int = 0
    no_entry_passes: int = 0
    previous_ineligible: int = 0
    cost_before: float = 0.0
    cost_after: float = 0.0
    costed: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-able (costs: sums in USD over the decisions where both are known)."""
        return {
            "decisions": self.decisions,
            "changed": self.changed,
            "no_entry_passes": self.no_entry_passes,
            "previous_winner_ineligible": self.previous_ineligible,
            "costed": self.costed,
            "cost_before_usd": round(self.cost_before, 9),
            "cost_after_usd": round(self.cost_after, 9),
        }


@dataclass(slots=True)
class RuleImpact:
    """Per rule: decisions whose previous winner it now removes, and the entries it newly
    removes (or no longer removes) in some re-evaluated group."""

    decisions: int = 0
    newly_removed: set[str] = field(default_factory=set)
    no_longer_removed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        """JSON-able (the first `LISTED_ENTRIES` ids of each set, sorted, and the counts)."""
        return {
            "decisions_previous_winner_removed": self.decisions,
            "newly_removed_count": len(self.newly_removed),
            "newly_removed": sorted(self.newly_removed)[:LISTED_ENTRIES],
            "no_longer_removed_count": len(self.no_longer_removed),
            "no_longer_removed": sorted(self.no_longer_removed)[:LISTED_ENTRIES],
        }


@dataclass(slots=True)
class ReplayReport:
    """The outcome of one replay run (`to_json` is the `--json` output)."""

    run_id: str
    mode: str
    parameters: dict[str, Any]
    decisions: int = 0
    groups: int = 0
    evaluations: int = 0
    mismatches: int = 0
    mismatch_fields: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    changed: int = 0
    no_entry_passes: int = 0
    previous_ineligible: int = 0
    by_tenant: dict[str, Aggregate] = field(default_factory=dict)
    by_policy: dict[str, Aggregate] = field(default_factory=dict)
    by_rule: dict[str, RuleImpact] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    summary_digest: str = ""
    position: int | None = None

    @property
    def ok(self) -> bool:
        """`original`: no mismatch; `against`: every decision could be re-evaluated."""
        return self.mismatches == 0 and self.errors == 0

    def add_change(self, tenant: str, fingerprint: str, change: Change, count: int) -> None:
        """Count `count` decisions of `tenant` under policy `fingerprint` whose group
        re-evaluates to `change` (`--against`)."""
        ineligible = change.previous_status in ("removed", "absent")
        for key, table in ((tenant, self.by_tenant), (fingerprint, self.by_policy)):
            agg = table.get(key)
            if agg is None:
                agg = table[key] = Aggregate()
            agg.decisions += count
            agg.changed += count * change.changed
            agg.no_entry_passes += count * change.no_entry_passes
            agg.previous_ineligible += count * ineligible
            if change.cost_delta is not None:
                agg.costed += count
                agg.cost_before += count * (change.previous_cost or 0.0)
                agg.cost_after += count * (change.cost or 0.0)
        self.changed += count * change.changed
        self.no_entry_passes += count * change.no_entry_passes
        self.previous_ineligible += count * ineligible
        for rule in change.removed_by:
            impact = self.by_rule.get(rule)
            if impact is None:
                impact = self.by_rule[rule] = RuleImpact()
            impact.decisions += count

    def summary(self) -> dict[str, Any]:
        """Everything but the run id, the examples and the digest (what the digest covers)."""
        doc: dict[str, Any] = {
            "mode": self.mode,
            "parameters": self.parameters,
            "decisions": self.decisions,
            "groups": self.groups,
            "evaluations": self.evaluations,
        }
        if self.mode == "original":
            doc["mismatches"] = self.mismatches
            doc["mismatch_fields"] = dict(sorted(self.mismatch_fields.items()))
        else:
            doc.update(
                {
                    "errors": self.errors,
                    "changed": self.changed,
                    "no_entry_passes": self.no_entry_passes,
                    "previous_winner_ineligible": self.previous_ineligible,
                    "by_tenant": {k: v.to_json() for k, v in sorted(self.by_tenant.items())},
                    "by_policy": {k: v.to_json() for k, v in sorted(self.by_policy.items())},
                    "by_rule": {k: v.to_json() for k, v in sorted(self.by_rule.items())},
                }
            )
        return doc

    def to_json(self) -> dict[str, Any]:
        """The summary plus run id, `ReplayRun` position, digest and examples."""
        return {
            "run_id": self.run_id,
            **self.summary(),
            "summary_digest": self.summary_digest,
            "replay_run_position": self.position,
            "examples": self.examples,
        }


def summary_digest(report: ReplayReport) -> str:
    """SHA-256 hex of the RFC 8785 bytes of `report.summary()`."""
    return hashlib.sha256(canonical_json(report.summary())).hexdigest()
