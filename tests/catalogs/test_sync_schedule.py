"""`UNHARDCODED_CATALOG_SYNC`: the schedule's setting, the syncer against a loopback HTTP server
serving the real LiteLLM price maps (a change between two fetches; a 500, a refused connection
and invalid JSON keep the current version and count as failures), concurrent routers publishing
the same content, and `serve` picking a synced version up without a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from router.core import Catalog
from router.services.catalogs import (
    CatalogSyncer,
    Published,
    SyncSchedule,
    SyncSettingError,
    parse_sync_setting,
)
from router.services.decisions import DecisionService, catalog_stream
from router.services.gateway import Metrics
from tests.catalogs.test_real_litellm import real_bytes
from tests.catalogs.test_sync import Files, server
from tests.support.service_backends import Backend, backend
from unhardcoded.cli import main

__all__ = ["backend", "server"]

AS_OF = dt.date(2026, 12, 7)
PATH = "/mirror/model_prices_and_context_window.json"
CLI = [sys.executable, "-m", "unhardcoded"]


def test_the_setting_names_a_source_and_its_options() -> None:
    assert parse_sync_setting("") is None
    assert parse_sync_setting("  \n ") is None
    default = parse_sync_setting("litellm")
    assert default == SyncSchedule(
        "litellm",
        "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json",
        3600.0,
    )
    full = parse_sync_setting(
        "openrouter every=15m url=http://mirror.internal/api/v1/models overlay=a.yaml "
        "overlay=b.json name=live"
    )
    assert full == SyncSchedule(
        "openrouter",
        "http://mirror.internal/api/v1/models",
        900.0,
        ("a.yaml", "b.json"),
        "live",
        "http://mirror.internal/api/v1/endpoints/zdr",
        "http://mirror.internal/api/v1/models?region=eu",
    )
    assert parse_sync_setting("litellm every=90")
    assert [parse_sync_setting(f"litellm every={d}").interval_s for d in ("90", "1.5s", "2h")] == [  # type: ignore[union-attr]
        90.0,
        1.5,
        7200.0,
    ]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("litelm", "unknown source 'litelm' (expected litellm or openrouter first)"),
        ("litellm openrouter", "'openrouter': expected key=value (every=, url=, zdr=, eu=, "
         "overlay=, name=); one source per ledger"),
        ("litellm every=0.5s", "'every=0.5s': the interval must be at least 1 s"),
        ("litellm every=1d", "'every=1d': expected a duration such as 30s, 15m, 1h"),
        ("litellm url=ftp://x/p.json", "'url=ftp://x/p.json': expected an http:// or https:// URL"),
        ("litellm when=1h", "'when=1h': unknown option (expected every=, url=, zdr=, eu=, "
         "overlay=, name=)"),
        ("litellm every=1h every=2h", "'every=2h': every= is given twice"),
        ("litellm url=", "'url=': the value is empty"),
    ],
)  # fmt: skip
def test_an_invalid_setting_is_refused_with_what_and_why(setting: str, message: str) -> None:
    with pytest.raises(SyncSettingError) as raised:
        parse_sync_setting(setting)
    assert str(raised.value).startswith(f"UNHARDCODED_CATALOG_SYNC: {message}")


@pytest.mark.parametrize(
    ("setting", "extra", "message"),
    [
        ("litellm every=5x", [], "UNHARDCODED_CATALOG_SYNC: 'every=5x': expected a duration"),
        ("litellm overlay=missing.yaml", [], "UNHARDCODED_CATALOG_SYNC: 'overlay=missing.yaml': "),
        ("litellm", ["--catalog", "router/data/catalog.json"], "cannot be used with a catalog"),
    ],
)  # fmt: skip
def test_serve_refuses_an_invalid_schedule_before_it_starts(
    setting: str, extra: list[str], message: str, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    result = CliRunner().invoke(
        main,
        ["serve", "--db", db, "--home", str(tmp_path / "home"), *extra],
        env={"UNHARDCODED_CATALOG_SYNC": setting},
    )
    assert result.exit_code == 2, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        next(line for line in result.stderr.splitlines() if message in line)
    ]
    assert "Traceback" not in result.output
    assert not (tmp_path / "ledger.db").exists(), "checked before the database is touched"


def _sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return value


class Recorder:
    """The syncer's outcome listener: the real metrics, and every outcome in order."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.outcomes: list[tuple[str, str | None]] = []

    def __call__(self, source: str, outcome: str, version: str | None) -> None:
        self.metrics.catalog_sync_outcome(source, outcome, version)
        self.outcomes.append((outcome, version))

    def count(self, outcome: str) -> float | None:
        return _sample(
            self.metrics, "unhardcoded_catalog_syncs_total", source="litellm", outcome=outcome
        )


def _syncer(service: DecisionService, url: str, recorder: Recorder) -> CatalogSyncer:
    async def publish(catalog: Catalog) -> Published:
        done = await service.publish_catalog(catalog)
        return Published(done.version, done.created)

    return CatalogSyncer(
        SyncSchedule("litellm", url, 1.0), publish, on_outcome=recorder, today=lambda: AS_OF
    )


async def test_failed_runs_keep_the_version_and_count_and_a_change_publishes(
    server: tuple[str, Files], backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    base, files = server
    recorder = Recorder()
    caplog.set_level(logging.WARNING, logger="router.services.catalogs.sync")
    async with backend.service() as service:
        syncer = _syncer(service, f"{base}{PATH}", recorder)
        refused = _syncer(service, "http://127.0.0.1:9/prices.json", recorder)

        async def latest() -> str | None:
            found = await service.latest_catalog()
            return found.version if found else None

        files.served[PATH] = (200, real_bytes("1.80.0"))
        first = await syncer.run_once()
        assert first is not None
        assert first.created
        again = await syncer.run_once()
        assert again == Published(first.version, False)

        for failure in [(500, b'{"error": "internal"}'), (200, b'{"gpt-4o": {"mode": ')]:
            files.served[PATH] = failure
            assert await syncer.run_once() is None
            assert await latest() == first.version
        assert await refused.run_once() is None
        assert await latest() == first.version
        assert recorder.count("failed") == 3
        success_before = _sample(
            recorder.metrics,
            "unhardcoded_catalog_sync_last_success_timestamp_seconds",
            source="litellm",
        )

        files.served[PATH] = (200, real_bytes("1.110.2"))
        changed = await syncer.run_once()
        assert changed is not None
        assert changed.created
        assert changed.version != first.version
        assert await latest() == changed.version
        assert [v.version for v in await service.catalogs()] == [first.version, changed.version]

    assert recorder.outcomes == [
        ("published", first.version),
        ("unchanged", first.version),
        ("failed", None),
        ("failed", None),
        ("failed", None),
        ("published", changed.version),
    ]
    assert (recorder.count("published"), recorder.count("unchanged")) == (2, 1)
    success_after = _sample(
        recorder.metrics,
        "unhardcoded_catalog_sync_last_success_timestamp_seconds",
        source="litellm",
    )
    assert success_before is not None
    assert success_after is not None
    assert success_after >= success_before
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert f"from {base}{PATH} failed: cannot fetch {base}{PATH}: HTTP 500" in warnings[0]
    assert "model_prices_and_context_window.json" in warnings[1]
    assert "JSON" in warnings[1]
    assert "Cannot connect" in warnings[2]
    assert all(r.exc_info is None for r in caplog.records), "a known failure has no traceback"


async def test_routers_syncing_the_same_content_at_once_publish_it_once(
    server: tuple[str, Files], backend: Backend
) -> None:
    """Every process of every router runs the schedule: the same content fetched by several at
    once is one version, recorded once (content addressing across connections)."""
    base, files = server
    files.served[PATH] = (200, real_bytes("1.80.0"))
    recorder = Recorder()
    async with (
        backend.service() as one,
        backend.service() as two,
        backend.service() as three,
    ):
        syncers = [_syncer(s, f"{base}{PATH}", recorder) for s in (one, two, three)]
        results = await asyncio.gather(*(s.run_once() for s in syncers))
        assert all(r is not None for r in results)
        assert len({r.version for r in results if r}) == 1
        assert [r.created for r in results if r].count(True) == 1
        for service in (one, two, three):
            assert len(await service.catalogs()) == 1
        events = await one.ledger.stream(catalog_stream(results[0].version), 1, 10)  # type: ignore[union-attr]
        assert len(events) == 1
    assert recorder.count("published") == 1
    assert recorder.count("unchanged") == 2


# ---- serve, as an operator runs it -------------------------------------------------------


class Served:
    """`unhardcoded serve` in a child process, its JSON log lines collected as they come."""

    def __init__(self, args: list[str], environ: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [*CLI, *args, "--port", "0"], env=environ, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.url = ""
        started = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                if "Uvicorn running on" in line:
                    self.url = line.split("running on ")[1].split()[0]
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(120) or not self.url:
            self.stop()
            raise AssertionError("serve did not start:\n" + "".join(self.lines))

    def logged(self, level: str) -> list[dict[str, object]]:
        found = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") == level:
                found.append(record)
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture
def serve_with_sync(server: tuple[str, Files], tmp_path: Path) -> Iterator[tuple[Served, Files]]:
    base, files = server
    files.served[PATH] = (200, real_bytes("1.80.0"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    environ |= {
        "UNHARDCODED_HOME": str(tmp_path / "home"),
        "UNHARDCODED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ledger.db",
        "UNHARDCODED_CATALOG_SYNC": f"litellm every=1s url={base}{PATH}",
    }
    served = Served(["serve", "--echo"], environ)
    try:
        yield served, files
    finally:
        served.stop()


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match[1].split(","))) == wanted:
            return float(match[2])
    return 0.0


def _wait(condition: object, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def test_serve_syncs_on_schedule_and_routes_on_the_new_version_without_restart(
    serve_with_sync: tuple[Served, Files],
) -> None:
    served, files = serve_with_sync
    client = httpx.Client(base_url=served.url, timeout=30)

    def syncs(outcome: str) -> float:
        text = client.get("/metrics").text
        return _metric(text, "unhardcoded_catalog_syncs_total", outcome=outcome, source="litellm")

    def serving() -> str:
        return str(client.get("/readyz").json().get("catalog_version"))

    _wait(lambda: syncs("published") == 1, "the first sync")
    first = serving()
    assert (
        _metric(client.get("/metrics").text, "unhardcoded_catalog_version_info", version=first) == 1
    )

    files.served[PATH] = (500, b"upstream broke")
    _wait(lambda: syncs("failed") >= 2, "two failed runs")
    assert serving() == first
    warnings = [str(r["msg"]) for r in served.logged("warning")]
    assert any("catalog sync of litellm" in w and "HTTP 500" in w for w in warnings), warnings

    files.served[PATH] = (200, real_bytes("1.110.2"))
    _wait(lambda: syncs("published") == 2, "the changed source to be published")
    second = serving()
    assert second != first
    metrics = client.get("/metrics").text
    assert _metric(metrics, "unhardcoded_catalog_version_info", version=second) == 1
    assert _metric(metrics, "unhardcoded_catalog_version_info", version=first) == 0
    assert (
        _metric(
            metrics, "unhardcoded_catalog_sync_last_success_timestamp_seconds", source="litellm"
        )
        > 0
    )
    assert not served.logged("error")
    client.close()


@pytest.mark.postgres
def test_two_routers_on_postgresql_publish_each_content_once_and_both_route_on_it(
    server: tuple[str, Files], pg_database: str, tmp_path: Path
) -> None:
    base, files = server
    files.served[PATH] = (200, real_bytes("1.80.0"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    environ |= {
        "UNHARDCODED_HOME": str(tmp_path / "home"),
        "UNHARDCODED_DATABASE_URL": pg_database,
        "UNHARDCODED_CATALOG_SYNC": f"litellm every=1s url={base}{PATH}",
    }
    subprocess.run([*CLI, "db", "upgrade"], env=environ, check=True, capture_output=True)
    routers = [Served(["serve", "--echo"], environ), Served(["serve", "--echo"], environ)]
    clients = [httpx.Client(base_url=r.url, timeout=30) for r in routers]
    try:

        def total(outcome: str) -> float:
            return sum(
                _metric(
                    c.get("/metrics").text,
                    "unhardcoded_catalog_syncs_total",
                    outcome=outcome,
                    source="litellm",
                )
                for c in clients
            )

        def versions() -> list[str]:
            listed = subprocess.run(
                [*CLI, "catalog", "list", "--json"], env=environ, capture_output=True, check=True
            )
            return [v["version"] for v in json.loads(listed.stdout)]

        _wait(lambda: total("published") + total("unchanged") >= 6, "both routers to sync")
        assert total("published") == 1
        [first] = versions()

        files.served[PATH] = (200, real_bytes("1.110.2"))
        _wait(lambda: total("published") == 2, "the changed source to be published")
        _wait(lambda: total("unchanged") >= 8, "both routers to sync the change")
        assert total("published") == 2, "the same content was published twice"
        second = versions()[-1]
        assert versions() == [first, second]
        _wait(
            lambda: {str(c.get("/readyz").json()["catalog_version"]) for c in clients} == {second},
            "both routers to route on the new version",
        )
        assert not any(r.logged("error") for r in routers)
    finally:
        for client in clients:
            client.close()
        for router in routers:
            router.stop()
