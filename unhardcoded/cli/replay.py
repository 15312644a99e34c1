"""`unhardcoded replay`: re-evaluate recorded decisions (proof or impact analysis)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import period_options, progress_option, show_progress, writable_file
from unhardcoded.cli._records import db_option, home_option, with_service

if TYPE_CHECKING:
    from router.core import Catalog
    from router.services.decisions import DecisionService
    from router.services.replay import ReplayReport, RowSink
    from unhardcoded.cli._replay_parquet import ParquetSink

EXIT_MISMATCH = 1
SHOWN = 10


def _ids(
    _: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[uuid.UUID, ...]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a decision id (a UUID)") from None
    return tuple(out)


class _Progress:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        share = f" ({100 * done / total:.0f} %)" if total else ""
        click.echo(f"\rreplayed {done:,}/{total:,}{share}, {rate:,.0f}/s", err=True, nl=False)

    def close(self) -> None:
        click.echo("", err=True)


def _usd(value: float) -> str:
    return f"${value:,.6f}"


def _aggregate_lines(title: str, table: dict[str, Any]) -> list[str]:
    rows = sorted(table.items(), key=lambda item: (-item[1]["changed"], item[0]))
    lines = [f"by {title} (top {min(SHOWN, len(rows))} of {len(rows)} by changed):"]
    for name, agg in rows[:SHOWN]:
        lines.append(
            f"  {name}: {agg['changed']:,}/{agg['decisions']:,} change, "
            f"{agg['no_entry_passes']:,} no entry passes, "
            f"{agg['previous_winner_ineligible']:,} previous winner ineligible, cost "
            f"{_usd(agg['cost_before_usd'])} -> {_usd(agg['cost_after_usd'])}"
        )
    return lines


def render_report(doc: dict[str, Any]) -> str:
    """The readable summary of a replay report (`ReplayReport.to_json()`)."""
    lines = [
        f"replay {doc['mode']}: {doc['decisions']:,} decisions, {doc['groups']:,} groups, "
        f"{doc['evaluations']:,} evaluations (up to position "
        f"{doc['parameters']['up_to_position']})"
    ]
    if doc["mode"] == "original":
        lines.append(f"mismatches: {doc['mismatches']:,}")
        for field, count in doc["mismatch_fields"].items():
            lines.append(f"  {field}: {count:,}")
        for ex in doc["examples"][:SHOWN]:
            lines.append(
                f"  decision {ex['decision_id']} (position {ex['position']}): {ex['field']} "
                f"recorded {ex['recorded']}, replayed {ex['replayed']}"
            )
    else:
        params = doc["parameters"]
        policy = params["policy"]
        lines.append(
            f"target catalog {params['target_catalog'][:12]}"
            + ("" if policy is None else f", policy {policy[:12]}")
        )
        total = max(doc["decisions"], 1)
        lines.append(
            f"changed selection: {doc['changed']:,} ({100 * doc['changed'] / total:.1f} %), "
            f"no entry passes: {doc['no_entry_passes']:,}, previous winner ineligible: "
            f"{doc['previous_winner_ineligible']:,}, errors: {doc['errors']:,}"
        )
        before = sum(a["cost_before_usd"] for a in doc["by_tenant"].values())
        after = sum(a["cost_after_usd"] for a in doc["by_tenant"].values())
        costed = sum(a["costed"] for a in doc["by_tenant"].values())
        lines.append(
            f"cost per run summed over {costed:,} decisions with token counts: "
            f"{_usd(before)} -> {_usd(after)}"
        )
        lines += _aggregate_lines("tenant", doc["by_tenant"])
        lines += _aggregate_lines("policy", doc["by_policy"])
        lines.append("by rule:" + ("" if doc["by_rule"] else " no rule removes anything new"))
        for rule, impact in doc["by_rule"].items():
            example = ", ".join(impact["newly_removed"][:3])
            lines.append(
                f"  {rule}: removes the previous winner of "
                f"{impact['decisions_previous_winner_removed']:,} decisions; newly removes "
                f"{impact['newly_removed_count']:,} entries"
                + (f" (e.g. {example})" if example else "")
                + f", no longer removes {impact['no_longer_removed_count']:,}"
            )
        if doc["examples"]:
            lines.append(f"first changes (of {doc['changed'] + doc['errors']:,}):")
        for ex in doc["examples"][:SHOWN]:
            if "error" in ex:
                lines.append(f"  decision {ex['decision_id']}: error {ex['error']}")
            else:
                lines.append(
                    f"  decision {ex['decision_id']} ({ex['tenant']}): {ex['previous']} -> "
                    f"{ex['selected']} (previous winner {ex['previous_status']}"
                    + (f" by {', '.join(ex['removed_by'])}" if ex["removed_by"] else "")
                    + ")"
                )
    if doc["replay_run_position"] is not None:
        lines.append(
            f"ReplayRun {doc['run_id']} recorded at position {doc['replay_run_position']} "
            f"(summary digest {doc['summary_digest'][:16]})"
        )
    return "\n".join(lines)


@click.command("replay")
@click.option(
    "--mode",
    type=click.Choice(["original", "against"]),
    default=None,
    help="original: re-evaluate with the recorded catalog version and check every recorded "
    "field; against: re-evaluate with --against (implied by --against).",
)
@click.option(
    "--against",
    "against_ref",
    metavar="CATALOG",
    default=None,
    help="Catalog to re-evaluate against: a published version (digest or unique prefix), "
    "'latest', or a catalog JSON file ('-' for stdin).",
)
@click.option(
    "--policy",
    "policy_file",
    metavar="FILE",
    default=None,
    help="With --against: re-evaluate with this policy instead of the recorded ones.",
)
@period_options
@click.option("--tenant", metavar="NAME", default=None, help="Only this tenant's decisions.")
@click.option(
    "--fingerprint", metavar="FP", default=None, help="Only decisions of this policy fingerprint."
)
@click.option(
    "--decision",
    "decision_ids",
    metavar="ID",
    multiple=True,
    callback=_ids,
    help="Only this decision (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--parquet",
    "parquet_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one row per replayed decision to this Parquet file.",
)
@progress_option
@click.option("--no-record", is_flag=True, help="Do not record the run as a ReplayRun event.")
@db_option
@home_option
@reports_errors
def replay(
    mode: str | None,
    against_ref: str | None,
    policy_file: str | None,
    since: datetime | None,
    until: datetime | None,
    tenant: str | None,
    fingerprint: str | None,
    decision_ids: tuple[uuid.UUID, ...],
    as_json: bool,
    parquet_out: Path | None,
    progress: bool | None,
    no_record: bool,
    url: str | None,
    home: Path | None,
) -> None:
    """Re-evaluate recorded decisions: prove them, or see what a change would do.

    --mode original re-evaluates every selected decision with the policy and catalog version it
    recorded and checks the recorded filter outcome, rank, selection and plan are reproduced
    exactly; each difference is reported with the decision id and the first differing field.
    Exit code 1 on any mismatch.

    --against CATALOG re-evaluates them against another catalog (and --policy FILE instead of
    the recorded policies): per decision the selected entry, its cost per run, whether the
    previous winner is still eligible and whether no entry passes; aggregated per tenant, per
    policy fingerprint and per rule. Exit code 1 when some decision cannot be re-evaluated.

    Each run is recorded as a ReplayRun event (unless --no-record). Exit code 2 on bad input.

    \b
    Example:
        unhardcoded rank --policy router/data/policies/vip.json --record --tenant acme
        unhardcoded replay --mode original
        unhardcoded replay --against latest --tenant acme --json
        unhardcoded replay --against router/data/catalog.json --parquet diffs.parquet
    """
    if mode is None:
        if against_ref is None:
            raise click.UsageError("give --mode original, or --against CATALOG")
        mode = "against"
    if mode == "original" and (against_ref is not None or policy_file is not None):
        raise click.UsageError("--against and --policy do not apply to --mode original")
    if mode == "against" and against_ref is None:
        raise click.UsageError("--mode against needs --against CATALOG")
    from router.services.catalogs import load_catalog, load_policy
    from router.services.replay import DecisionFilter, ReplayService

    flt = DecisionFilter(
        since=since,
        until=until,
        tenant=tenant,
        fingerprint=fingerprint,
        decision_ids=decision_ids,
    )
    from_file: Catalog | None = None
    if against_ref is not None and (against_ref == "-" or Path(against_ref).exists()):
        from_file = load_catalog(against_ref)
    if parquet_out is not None:
        writable_file(parquet_out)
    meter = _Progress() if show_progress(progress) else None

    async def run(service: DecisionService) -> ReplayReport:
        replayer = ReplayService(service)
        if mode == "original":
            sink = _parquet_sink(parquet_out, "original")
            try:
                return await replayer.original(
                    flt, sink=_as_sink(sink), progress=meter, record=not no_record
                )
            finally:
                if sink is not None:
                    sink.close()
        assert against_ref is not None
        target = from_file or await service.catalog(against_ref)
        policy = None if policy_file is None else load_policy(policy_file, target)
        sink = _parquet_sink(parquet_out, "against")
        try:
            return await replayer.against(
                target,
                flt,
                policy=policy,
                sink=_as_sink(sink),
                progress=meter,
                record=not no_record,
            )
        finally:
            if sink is not None:
                sink.close()

    report = with_service(url, home, run)
    if meter is not None:
        meter.close()
    doc = report.to_json()
    click.echo(json.dumps(doc, indent=2) if as_json else render_report(doc))
    if not report.ok:
        raise SystemExit(EXIT_MISMATCH)


def _parquet_sink(path: Path | None, mode: str) -> ParquetSink | None:
    if path is None:
        return None
    from router.services.replay import AGAINST_ROWS, ORIGINAL_ROWS
    from unhardcoded.cli._replay_parquet import ParquetSink

    return ParquetSink(path, ORIGINAL_ROWS if mode == "original" else AGAINST_ROWS)


def _as_sink(sink: ParquetSink | None) -> RowSink | None:
    return sink
