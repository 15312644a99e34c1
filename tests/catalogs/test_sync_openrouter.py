"""An OpenRouter sync fetches the model listing, the zero-data-retention endpoint list and the EU
listing from a loopback HTTP server (a mirror laid out as OpenRouter's API), so a synced catalog
has the `no_log` facts and `@eu` entries of `catalog import openrouter --zdr --eu`: a change of the
ZDR list alone publishes a new version, an unchanged set publishes nothing, and a failed fetch of
any of the three publishes nothing and counts in the metrics."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from router.core import Catalog
from router.services.catalogs import (
    CatalogFetchError,
    CatalogImportError,
    CatalogSyncer,
    Published,
    SyncSchedule,
    SyncSettingError,
    SyncSourceError,
    SyncSources,
    diff_catalogs,
    import_openrouter_file,
    parse_sync_setting,
    sync_catalog,
    sync_sources,
)
from router.services.decisions import DecisionService
from router.services.gateway import Metrics
from tests.catalogs.support import DATA, OPENROUTER
from tests.catalogs.test_sync import Files, server
from tests.support.service_backends import Backend, backend
from unhardcoded.cli import main

__all__ = ["backend", "server"]

AS_OF = dt.date(2026, 12, 7)
ZDR = DATA / "openrouter-zdr.json"
EU = DATA / "openrouter-eu.json"
MODELS_PATH = "/api/v1/models"
ZDR_PATH = "/api/v1/endpoints/zdr"
EU_PATH = "/api/v1/models?region=eu"


def serve_all(files: Files, zdr: bytes | None = None) -> None:
    files.served[MODELS_PATH] = (200, OPENROUTER.read_bytes())
    files.served[ZDR_PATH] = (200, ZDR.read_bytes() if zdr is None else zdr)
    files.served[EU_PATH] = (200, EU.read_bytes())


def zdr_without(tag: str) -> bytes:
    """The ZDR list with every endpoint of provider `tag` removed."""
    document = json.loads(ZDR.read_text(encoding="utf-8"))
    document["data"] = [e for e in document["data"] if e["tag"] != tag]
    return json.dumps(document).encode()


def entries(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {e.id: e.to_json() for e in catalog}


class Recorder:
    """The syncer's outcome listener: the real metrics, and every outcome in order."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.outcomes: list[str] = []

    def __call__(self, source: str, outcome: str, version: str | None) -> None:
        self.metrics.catalog_sync_outcome(source, outcome, version)
        self.outcomes.append(outcome)

    def count(self, outcome: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "unhardcoded_catalog_syncs_total", {"source": "openrouter", "outcome": outcome}
        )


def publisher(service: DecisionService) -> Any:
    async def publish(catalog: Catalog) -> Published:
        done = await service.publish_catalog(catalog)
        return Published(done.version, done.created)

    return publish


# ---- URLs ---------------------------------------------------------------------------------


def test_the_fact_urls_derive_from_the_listing_url_unless_given_or_off() -> None:
    public = sync_sources("openrouter")
    assert public == SyncSources(
        "openrouter",
        "https://openrouter.ai/api/v1/models",
        "https://openrouter.ai/api/v1/endpoints/zdr",
        "https://openrouter.ai/api/v1/models?region=eu",
    )
    mirror = sync_sources("openrouter", "http://mirror.internal/or/api/v1/models/")
    assert (mirror.zdr_url, mirror.eu_url) == (
        "http://mirror.internal/or/api/v1/endpoints/zdr",
        "http://mirror.internal/or/api/v1/models?region=eu",
    )
    assert (
        sync_sources("openrouter", "http://m/x/models?v=2").eu_url
        == "http://m/x/models?v=2&region=eu"
    )
    given = sync_sources(
        "openrouter", "http://m/models.json", zdr_url="http://m/zdr.json", eu_url="off"
    )
    assert (given.zdr_url, given.eu_url) == ("http://m/zdr.json", None)
    assert given.facts() == [("openrouter_zdr", "http://m/zdr.json")]
    assert sync_sources("litellm") == SyncSources(
        "litellm",
        "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json",
    )


@pytest.mark.parametrize(
    ("kind", "url", "zdr", "eu", "message"),
    [
        ("openrouter", "http://m/models.json", None, "off",
         "--url http://m/models.json: cannot derive the ZDR endpoint list's URL (the path does not "
         "end in /models); give --zdr-url URL, or --zdr-url off to sync without it"),
        ("openrouter", "http://m/models.json", "off", None,
         "--url http://m/models.json: cannot derive the EU listing's URL"),
        ("openrouter", None, "file:///zdr.json", None,
         "--zdr-url file:///zdr.json: expected an http:// or https:// URL, or off"),
        ("litellm", None, None, "off",
         "--eu-url off: the ZDR list and the EU listing are OpenRouter's; a litellm sync fetches "
         "its source only"),
    ],
)  # fmt: skip
def test_inconsistent_urls_are_refused_naming_the_option(
    kind: str, url: str | None, zdr: str | None, eu: str | None, message: str
) -> None:
    with pytest.raises(SyncSourceError) as raised:
        sync_sources(kind, url, zdr_url=zdr, eu_url=eu)
    assert str(raised.value).startswith(message)


def test_the_schedule_setting_takes_zdr_and_eu_options() -> None:
    derived = parse_sync_setting("openrouter url=http://mirror.internal/api/v1/models")
    assert derived == SyncSchedule(
        "openrouter",
        "http://mirror.internal/api/v1/models",
        zdr_url="http://mirror.internal/api/v1/endpoints/zdr",
        eu_url="http://mirror.internal/api/v1/models?region=eu",
    )
    given = parse_sync_setting(
        "openrouter url=http://m/or.json zdr=http://m/zdr.json eu=off every=15m"
    )
    assert given is not None
    assert given.sources == SyncSources("openrouter", "http://m/or.json", "http://m/zdr.json")
    for setting, message in [
        ("openrouter url=http://m/or.json eu=off",
         "'url=http://m/or.json': cannot derive the ZDR endpoint list's URL (the path does not "
         "end in /models); give 'zdr=URL', or 'zdr=off' to sync without it"),
        ("openrouter eu=ftp://m/eu.json", "'eu=ftp://m/eu.json': expected an http:// or https://"),
        ("litellm zdr=off", "'zdr=off': the ZDR list and the EU listing are OpenRouter's"),
        ("openrouter zdr=off zdr=off", "'zdr=off': zdr= is given twice"),
    ]:  # fmt: skip
        with pytest.raises(SyncSettingError) as raised:
            parse_sync_setting(setting)
        assert str(raised.value).startswith(f"UNHARDCODED_CATALOG_SYNC: {message}"), setting


# ---- sync against a loopback mirror ------------------------------------------------------


async def test_a_synced_catalog_has_the_facts_and_a_change_of_the_zdr_list_alone_publishes(
    server: tuple[str, Files], backend: Backend
) -> None:
    base, files = server
    serve_all(files)
    url = f"{base}{MODELS_PATH}"
    async with backend.service() as service:
        publish = publisher(service)
        first = await sync_catalog("openrouter", publish, as_of=AS_OF, url=url)
        again = await sync_catalog("openrouter", publish, as_of=AS_OF, url=url)
        files.served[ZDR_PATH] = (200, zdr_without("azure"))
        changed = await sync_catalog("openrouter", publish, as_of=AS_OF, url=url)
        versions = [v.version for v in await service.catalogs()]

    assert files.requests == [MODELS_PATH, ZDR_PATH, EU_PATH] * 3
    # the same catalog entries as `catalog import openrouter --zdr --eu` of the same files
    imported = import_openrouter_file(OPENROUTER, as_of=AS_OF, zdr=ZDR, eu=EU).catalog
    assert entries(first.result.catalog) == entries(imported)
    assert len(imported.entries) == 15
    kinds = {s["kind"] for s in first.result.catalog.to_json()["metadata"]["sources"].values()}
    assert kinds == {"openrouter", "openrouter_zdr", "openrouter_eu"}

    assert first.published.created
    assert again.published == Published(first.published.version, False)
    assert changed.published.created
    assert versions == [first.published.version, changed.published.version]
    # exactly the fact that changed at the source changed in the catalog
    diff = diff_catalogs(first.result.catalog, changed.result.catalog).to_json()
    assert (diff["added"], diff["removed"]) == ([], [])
    assert diff["changed"] == {
        "openrouter/openai/gpt-4o@unspecified": {
            "no_log": {"old": True, "new": False},
            "zdr_providers": {"old": ["azure"], "new": None},
        }
    }
    assert first.to_json()["zdr_url"] == f"{base}{ZDR_PATH}"
    assert first.to_json()["eu_url"] == f"{base}{EU_PATH}"
    assert f"(with ZDR list {base}{ZDR_PATH}, EU listing {base}{EU_PATH})" in first.render()


@pytest.mark.parametrize("failing", [ZDR_PATH, EU_PATH])
async def test_a_failed_fetch_of_a_fact_document_publishes_nothing(
    server: tuple[str, Files], failing: str
) -> None:
    base, files = server
    serve_all(files)
    files.served[failing] = (503, b"busy")
    published: list[Catalog] = []

    async def publish(catalog: Catalog) -> Published:
        published.append(catalog)
        return Published(catalog.version, True)

    with pytest.raises(
        CatalogFetchError, match=re.escape(f"cannot fetch {base}{failing}: HTTP 503")
    ):
        await sync_catalog("openrouter", publish, as_of=AS_OF, url=f"{base}{MODELS_PATH}")
    files.served[failing] = (200, b'{"data": 5}')
    with pytest.raises(CatalogImportError, match="/data: expected"):
        await sync_catalog("openrouter", publish, as_of=AS_OF, url=f"{base}{MODELS_PATH}")
    assert published == []


async def test_the_schedule_counts_a_failed_zdr_fetch_and_publishes_the_changed_list(
    server: tuple[str, Files], backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    base, files = server
    serve_all(files)
    recorder = Recorder()
    caplog.set_level(logging.WARNING, logger="router.services.catalogs.sync")
    schedule = parse_sync_setting(f"openrouter every=1s url={base}{MODELS_PATH}")
    assert schedule is not None
    async with backend.service() as service:
        syncer = CatalogSyncer(
            schedule, publisher(service), on_outcome=recorder, today=lambda: AS_OF
        )

        async def latest() -> str | None:
            found = await service.latest_catalog()
            return found.version if found else None

        first = await syncer.run_once()
        assert first is not None
        assert await syncer.run_once() == Published(first.version, False)

        files.served[ZDR_PATH] = (500, b'{"error": "internal"}')
        assert await syncer.run_once() is None
        assert await latest() == first.version

        files.served[ZDR_PATH] = (200, zdr_without("azure"))
        changed = await syncer.run_once()
        assert changed is not None
        assert changed.created
        assert await latest() == changed.version
        catalog = await service.catalog(changed.version)
        assert catalog["openrouter/openai/gpt-4o@unspecified"].attributes["no_log"] is False

    assert recorder.outcomes == ["published", "unchanged", "failed", "published"]
    assert (recorder.count("published"), recorder.count("unchanged"), recorder.count("failed")) == (
        2,
        1,
        1,
    )
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"cannot fetch {base}{ZDR_PATH}: HTTP 500" in warning


# ---- the command --------------------------------------------------------------------------


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_the_sync_command_fetches_the_facts_and_reports_their_urls(
    server: tuple[str, Files], tmp_path: Path
) -> None:
    base, files = server
    serve_all(files)
    db = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    args = ["catalog", "sync", "openrouter", "--url", f"{base}{MODELS_PATH}", "--db", db]
    args += ["--home", str(tmp_path / "home"), "--as-of", "2026-12-07"]
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert (outcome["created"], outcome["entries"]) == (True, 15)
    assert (outcome["zdr_url"], outcome["eu_url"]) == (f"{base}{ZDR_PATH}", f"{base}{EU_PATH}")

    without = cli(*args, "--zdr-url", "off", "--eu-url", "off", "--json")
    assert without.exit_code == 0, without.output
    assert json.loads(without.stdout)["entries"] == 11
    assert json.loads(without.stdout)["zdr_url"] is None


def test_the_sync_command_refuses_inconsistent_urls_before_any_io(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    result = cli(
        "catalog", "sync", "openrouter", "--url", "http://127.0.0.1:9/or.json", "--db", db,
        "--home", str(tmp_path / "home"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --url http://127.0.0.1:9/or.json: cannot derive the ZDR endpoint list's URL"
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "ledger.db").exists()
