"""`unhardcoded catalog …`: import public catalogs (with overlays), publish versions to the
ledger, sync a live source, list versions, and diff catalogs (files or published versions)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from unhardcoded.cli._common import EXIT_BAD_INPUT, reports_errors
from unhardcoded.cli._options import INSTANT
from unhardcoded.cli._records import db_option, home_option, with_service

if TYPE_CHECKING:
    from router.core import Catalog
    from router.services.catalogs import ImportResult
    from router.services.decisions import DecisionService


@click.group("catalog")
def catalog() -> None:
    """Catalogs: import LiteLLM's price map or OpenRouter's model list, publish versions to the
    ledger, list them, diff two catalogs.

    \b
    Example:
        unhardcoded catalog diff router/data/catalog.json router/data/catalog.json
    """


@catalog.group("import")
def import_() -> None:
    """Import a public catalog as routable endpoints (USD per million tokens), plus overlays.

    The catalog JSON goes to --out, or to stdout (the summary then goes to stderr).

    \b
    Example:
        unhardcoded catalog import litellm tests/catalogs/data/litellm.json --out /tmp/catalog.json
    """


def _overlay_option(func: Any) -> Any:
    return click.option(
        "--overlay",
        "overlays",
        multiple=True,
        metavar="FILE",
        help="Overlay file (YAML, or JSON by .json); repeat to apply several, in order.",
    )(func)


def _out_option(func: Any) -> Any:
    return click.option(
        "--out", "-o", metavar="FILE", help="Write the catalog here instead of stdout."
    )(func)


def _json_option(func: Any) -> Any:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the import summary and health report as JSON instead of text.",
    )(func)


def _emit(result: ImportResult, out: str | None, notes: list[str], as_json: bool = False) -> None:
    from router.services.catalogs import catalog_health

    text = json.dumps(result.catalog.to_json(), indent=1, ensure_ascii=False) + "\n"
    health = catalog_health(result.catalog, result.summary)
    if as_json:
        report = json.dumps(
            {"summary": result.summary.to_json(), "health": health.to_json(), "notes": notes},
            indent=1,
            ensure_ascii=False,
        )
    else:
        report = "\n".join([result.summary.render(), health.render(), *notes])
    if out is None or out == "-":
        click.echo(text, nl=False)
        click.echo(report, err=True)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(report)
    if not as_json:
        click.echo(f"wrote {out}")


def _as_of_option(func: Any) -> Any:
    return click.option(
        "--as-of",
        type=INSTANT,
        help="Entries whose deprecation or expiration date is on or before this date get "
        "status deprecated (default: today, UTC).",
    )(func)


def _cutoff(as_of: dt.datetime | None) -> tuple[dt.date, str]:
    cutoff = as_of.date() if as_of else dt.datetime.now(dt.UTC).date()
    source = "--as-of" if as_of else "today, UTC; change with --as-of"
    return cutoff, f"deprecation cut-off {cutoff.isoformat()} ({source})"


@import_.command("litellm")
@click.argument("file")
@_overlay_option
@_out_option
@click.option("--name", default="litellm", show_default=True, help="Catalog name.")
@_as_of_option
@_json_option
@reports_errors
def litellm(
    file: str,
    overlays: tuple[str, ...],
    out: str | None,
    name: str,
    as_of: dt.datetime | None,
    as_json: bool,
) -> None:
    """Import LiteLLM's model_prices_and_context_window.json (FILE, or - for stdin).

    Only chat-mode entries become endpoints; skipped entries are counted by reason. The health
    report lists what to look at: unpriced entries, variants, aliases, duplicates, entries
    without region.

    \b
    Example:
        unhardcoded catalog import litellm tests/catalogs/data/litellm.json \\
            --overlay docs/examples/overlay.yaml --as-of 2026-01-01 --out /tmp/catalog.json
    """
    from router.services.catalogs import import_litellm_file

    cutoff, note = _cutoff(as_of)
    result = import_litellm_file(file, as_of=cutoff, overlays=overlays, name=name)
    _emit(result, out, [note], as_json)


@import_.command("openrouter")
@click.argument("file")
@_overlay_option
@click.option(
    "--zdr",
    "zdr",
    metavar="FILE",
    help="A saved response of GET /api/v1/endpoints/zdr: sets no_log on standard entries "
    "(true with zdr_providers when the model has a zero-data-retention endpoint, else false).",
)
@click.option(
    "--eu",
    "eu",
    metavar="FILE",
    help="A saved response of GET /api/v1/models?region=eu: adds an entry in region eu per "
    "model (routed through OpenRouter's EU host).",
)
@_out_option
@click.option("--name", default="openrouter", show_default=True, help="Catalog name.")
@_as_of_option
@_json_option
@reports_errors
def openrouter(
    file: str,
    overlays: tuple[str, ...],
    zdr: str | None,
    eu: str | None,
    out: str | None,
    name: str,
    as_of: dt.datetime | None,
    as_json: bool,
) -> None:
    """Import a saved response of OpenRouter's GET /api/v1/models (FILE, or - for stdin).

    \b
    Example:
        unhardcoded catalog import openrouter tests/catalogs/data/openrouter.json --out /tmp/or.json
        unhardcoded catalog import openrouter tests/catalogs/data/openrouter.json \\
            --zdr tests/catalogs/data/openrouter-zdr.json \\
            --eu tests/catalogs/data/openrouter-eu.json --out /tmp/or-facts.json
    """
    from router.services.catalogs import import_openrouter_file

    cutoff, note = _cutoff(as_of)
    result = import_openrouter_file(
        file, as_of=cutoff, overlays=overlays, name=name, zdr=zdr, eu=eu
    )
    _emit(result, out, [note], as_json)


@catalog.command("sync")
@click.argument("kind", type=click.Choice(["litellm", "openrouter"]))
@click.option(
    "--url",
    "source_url",
    metavar="URL",
    help="Fetch from here instead of the source's public URL (e.g. an internal mirror).",
)
@click.option(
    "--zdr-url",
    metavar="URL",
    help="openrouter: where to fetch the ZDR endpoint list (default: beside --url, "
    "…/api/v1/endpoints/zdr for …/api/v1/models); off: sync without no_log facts.",
)
@click.option(
    "--eu-url",
    metavar="URL",
    help="openrouter: where to fetch the EU listing (default: --url with ?region=eu); off: "
    "sync without @eu entries.",
)
@_overlay_option
@click.option("--name", help="Catalog name (default: the source kind).")
@_as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@db_option
@home_option
@reports_errors
def sync(
    kind: str,
    source_url: str | None,
    zdr_url: str | None,
    eu_url: str | None,
    overlays: tuple[str, ...],
    name: str | None,
    as_of: dt.datetime | None,
    as_json: bool,
    url: str | None,
    home: Path | None,
) -> None:
    """Fetch a source (LiteLLM's price map or OpenRouter's model list), import it with the
    overlays and publish it; an unchanged source publishes nothing new.

    An openrouter sync also fetches OpenRouter's ZDR endpoint list and EU listing, as
    `catalog import openrouter --zdr --eu` reads them; a failed fetch of any of them publishes
    nothing.

    \b
    Example:
        unhardcoded catalog sync litellm --url http://mirror.internal/prices.json
        unhardcoded catalog sync openrouter --url http://mirror.internal/api/v1/models
    """
    from router.services.catalogs import Published, load_overlay, sync_catalog, sync_sources

    cutoff, _ = _cutoff(as_of)
    sync_sources(kind, source_url, zdr_url=zdr_url, eu_url=eu_url)  # bad options: before any I/O
    loaded = [load_overlay(p) for p in overlays]

    async def run(service: DecisionService) -> Any:
        async def publish(catalog: Catalog) -> Published:
            done = await service.publish_catalog(catalog)
            return Published(done.version, done.created)

        return await sync_catalog(
            kind,
            publish,
            as_of=cutoff,
            url=source_url,
            zdr_url=zdr_url,
            eu_url=eu_url,
            overlays=loaded,
            name=name,
        )

    outcome = with_service(url, home, run)
    if as_json:
        click.echo(json.dumps(outcome.to_json(), indent=1, ensure_ascii=False))
    else:
        click.echo(outcome.render())


@catalog.command("publish")
@click.argument("file")
@db_option
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_errors
def publish(file: str, url: str | None, home: Path | None, as_json: bool) -> None:
    """Publish a catalog file (or - for stdin) as a content-addressed version in the ledger.

    Publishing the same content again is a no-op. The latest published version becomes the
    default catalog of `rank` and `serve`.

    \b
    Example:
        unhardcoded catalog publish router/data/catalog.json
    """
    from router.services.catalogs import load_catalog

    catalog = load_catalog(file)
    result = with_service(url, home, lambda service: service.publish_catalog(catalog))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "version": result.version,
                    "name": result.name,
                    "entries": result.entries,
                    "created": result.created,
                },
                indent=1,
            )
        )
        return
    state = "published" if result.created else "already published"
    click.echo(f"{state}: {result.name} {result.version} ({result.entries} entries)")


@catalog.command("list")
@db_option
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@reports_errors
def list_(url: str | None, home: Path | None, as_json: bool) -> None:
    """List the published catalog versions, oldest first (the last one is `latest`).

    \b
    Example:
        unhardcoded catalog list
    """
    versions = with_service(url, home, lambda service: service.catalogs())
    if as_json:
        click.echo(json.dumps([v.to_json() for v in versions], indent=1))
        return
    if not versions:
        click.echo("no catalog version is published")
    for info in versions:
        published = info.to_json()["published_at"]
        click.echo(f"{info.version}  {published}  {info.name} ({info.entries} entries)")


def _is_file(ref: str) -> bool:
    return ref == "-" or Path(ref).is_file()


async def _load_both(service: DecisionService, a: str, b: str) -> tuple[Catalog, Catalog]:
    from router.services.catalogs import load_catalog

    first = load_catalog(a) if _is_file(a) else await service.catalog(a)
    second = load_catalog(b) if _is_file(b) else await service.catalog(b)
    return first, second


@catalog.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@db_option
@home_option
@reports_errors
def diff(a: str, b: str, as_json: bool, url: str | None, home: Path | None) -> None:
    """Entries added, removed and changed (per field, old → new) from catalog A to B.

    A and B are catalog files, or published versions: `latest`, a full version digest or a
    unique prefix of one (a path that exists is read as a file).

    \b
    Example:
        unhardcoded catalog diff router/data/catalog.json router/data/catalog.json --json
    """
    from router.services.catalogs import diff_catalogs, load_catalog

    if _is_file(a) and _is_file(b):
        first, second = load_catalog(a), load_catalog(b)
    else:
        first, second = with_service(url, home, lambda service: _load_both(service, a, b))
    result = diff_catalogs(first, second)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1, ensure_ascii=False))
    else:
        click.echo(result.render())
