"""`unhardcoded rank`: evaluate a policy over a catalog and show the decision and its trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import published_catalog_option
from unhardcoded.cli._records import (
    db_option,
    default_catalog,
    home_option,
    resolve_catalog,
    with_service,
)

if TYPE_CHECKING:
    from router.core import NoEntryPasses, RequestFeatures, Trace
    from router.services.decisions import Decision, DecisionService

EXIT_NO_ENTRY = 3


def render_table(trace: Trace) -> str:
    """The readable form of a trace: passing entries in rank order, removals and why."""
    from router.core import show_value

    catalog = trace.catalog
    lines = [
        f"policy   {trace.policy.fingerprint}",
        f"catalog  {catalog.name} {catalog.version[:12]} ({len(catalog.entries)} entries)",
    ]
    if trace.tokens is not None:
        lines.append(f"tokens   in {trace.tokens.tokens_in}, out {trace.tokens.tokens_out}")
    keys = [f"{k.attr} {k.direction}" for k in trace.policy.rank]
    rows = [("#", "entry", *keys, "plan")]
    plan = set(trace.plan)
    for position, index in enumerate(trace.ranked, start=1):
        values = ["missing" if v is None else show_value(v) for v in trace.sort_keys(index)]
        marker = "selected" if index == trace.selected else ("fallback" if index in plan else "")
        rows.append((str(position), trace.entry(index).id, *values, marker))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    lines.append(f"passed ({len(trace.ranked)})")
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(("  " + "  ".join(cells)).rstrip())
    removed = trace.removed()
    lines.append("")
    lines.append(f"removed ({len(removed)})")
    for index in removed:
        lines.append(f"  {trace.entry(index).id}: {trace.explain_removal(index)}")
    lines.append("")
    lines.append(trace.why_selected())
    return "\n".join(lines)


@click.command("rank")
@click.option(
    "--policy",
    "policy_file",
    metavar="FILE",
    required=True,
    help="Policy JSON file ('-' for stdin).",
)
@published_catalog_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the full trace as JSON (fingerprint, catalog_version, selected, ranked, "
    "removed, plan, …).",
)
@click.option(
    "--tokens-in",
    type=click.IntRange(min=0),
    default=None,
    help="Request input tokens (used when the policy has no tokens).",
)
@click.option(
    "--tokens-out",
    type=click.IntRange(min=0),
    default=None,
    help="Request output tokens (used when the policy has no tokens).",
)
@click.option(
    "--record",
    is_flag=True,
    help="Record the decision in the ledger, marked as a preview, and print its id.",
)
@click.option(
    "--tenant",
    metavar="NAME",
    default=None,
    help="Tenant of the recorded decision (with --record; default: cli).",
)
@db_option
@home_option
@reports_errors
def rank(
    policy_file: str,
    catalog_file: str | None,
    as_json: bool,
    tokens_in: int | None,
    tokens_out: int | None,
    record: bool,
    tenant: str | None,
    url: str | None,
    home: Path | None,
) -> None:
    """Evaluate a policy over a catalog: filter, rank, select, fallback plan — and say why.

    Prints the passing entries in rank order (the plan marked), every removed entry with each
    rule it failed and the observed value, and why the winner won. Exit code 2 for invalid input,
    3 when no entry passes (the trace is still printed).

    The catalog is --catalog FILE, else the latest published version in the database, else the
    bundled one. With --record the decision is recorded in the ledger as a preview (no upstream
    call), whether or not an entry passes, and its id is printed (`decision_id` in --json).

    \b
    Example:
        unhardcoded rank --policy router/data/policies/enterprise-eu.json
        unhardcoded rank --policy router/data/policies/vip.json --json
        unhardcoded rank --policy router/data/policies/vip.json --record --tenant acme
    """
    # The services are imported here, not at the top: `unhardcoded --help` imports this module.
    from router.core import NoEntryPasses, RequestFeatures, evaluate
    from router.services.catalogs import load_policy

    if (tokens_in is None) != (tokens_out is None):
        raise click.UsageError("give both --tokens-in and --tokens-out, or neither")
    if tenant is not None and not record:
        raise click.UsageError("--tenant only applies with --record")
    if catalog_file == "-" and policy_file == "-":
        raise click.UsageError("stdin ('-') can feed the policy or the catalog, not both")
    features = None
    if tokens_in is not None and tokens_out is not None:
        features = RequestFeatures(tokens_in, tokens_out)
    failure: NoEntryPasses | None = None
    if record:
        decision, failure = with_service(
            url, home, lambda service: _record(service, policy_file, catalog_file, features, tenant)
        )
        trace = decision.trace
        document: dict[str, Any] = decision.to_json()
    else:
        catalog = resolve_catalog(catalog_file, url, home)
        policy = load_policy(policy_file, catalog)
        try:
            trace = evaluate(policy, catalog, features)
        except NoEntryPasses as exc:
            trace, failure = exc.trace, exc
        document = trace.to_json()
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(render_table(trace))
        if record:
            click.echo(f"recorded preview decision {document['decision_id']}")
    if failure is not None:
        click.echo(f"error: {failure}", err=True)
        raise SystemExit(EXIT_NO_ENTRY)


async def _record(
    service: DecisionService,
    policy_file: str,
    catalog_file: str | None,
    features: RequestFeatures | None,
    tenant: str | None,
) -> tuple[Decision, NoEntryPasses | None]:
    from router.services.catalogs import load_catalog, load_policy
    from router.services.decisions import NoEntryPassesRecorded

    catalog = load_catalog(catalog_file) if catalog_file else await default_catalog(service)
    policy = load_policy(policy_file, catalog)
    try:
        decision = await service.decide(
            tenant or "cli", policy, catalog, features=features, preview=True
        )
    except NoEntryPassesRecorded as exc:
        return exc.decision, exc
    return decision, None
