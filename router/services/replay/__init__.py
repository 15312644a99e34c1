"""Replay: re-evaluate recorded decisions against their own catalog version (proof: is every
recorded outcome reproduced exactly?) or against another catalog and/or policy (impact: what
would change?). docs/replay.md has the CLI and the output formats.

    async with open_ledger(url) as ledger:
        replay = ReplayService(DecisionService(ledger))

        report = await replay.original(DecisionFilter(tenant="acme"))
        report.mismatches, report.examples        # decision id, first differing field, values

        target = await replay.decisions.catalog("latest")    # or Catalog.from_json(document)
        report = await replay.against(target, DecisionFilter(since=...), policy=None,
                                      sink=rows.extend)      # per-decision rows, page by page
        report.changed, report.by_tenant, report.by_policy, report.by_rule

Over exported Parquet, on DuckDB or Spark SQL (`_sql`, docs/replay.md): `GROUP_KEYS_SQL`, then
`evaluate_groups` (each group once), then `MISMATCHES_SQL` over `decisions` and `replay_groups`.

Decisions are a pure function of (policy, catalog version, tokens): each distinct group is
evaluated once (`_groups`) and its result joined to the decisions in DuckDB (`_columnar`); the
per-decision rows have the columns `ORIGINAL_ROWS` / `AGAINST_ROWS` (`_rows`). Decisions are
streamed in pages by ledger position, so memory does not grow with the ledger. Each run is
recorded as a `ReplayRun` event (stream `replay/{run id}`) with its parameters and the SHA-256
of its summary.
"""

from router.services.replay._compare import (
    FIELDS,
    Change,
    Evaluated,
    Mismatch,
    Recorded,
    compare,
    evaluate_once,
    recorded_key,
    verify,
)
from router.services.replay._errors import ReplayError
from router.services.replay._report import Aggregate, ReplayReport, RuleImpact, summary_digest
from router.services.replay._rows import AGAINST_ROWS, ORIGINAL_ROWS
from router.services.replay._scan import DecisionFilter, Row
from router.services.replay._service import REPLAY_RUN, REPLAY_SCHEMA, ReplayService, RowSink
from router.services.replay._sql import (
    GROUP_KEYS_SQL,
    GROUPS_SCHEMA,
    MISMATCHES_SQL,
    evaluate_groups,
)

__all__ = [
    "AGAINST_ROWS",
    "FIELDS",
    "GROUPS_SCHEMA",
    "GROUP_KEYS_SQL",
    "MISMATCHES_SQL",
    "ORIGINAL_ROWS",
    "REPLAY_RUN",
    "REPLAY_SCHEMA",
    "Aggregate",
    "Change",
    "DecisionFilter",
    "Evaluated",
    "Mismatch",
    "Recorded",
    "ReplayError",
    "ReplayReport",
    "ReplayService",
    "Row",
    "RowSink",
    "RuleImpact",
    "compare",
    "evaluate_groups",
    "evaluate_once",
    "recorded_key",
    "summary_digest",
    "verify",
]
