"""What a scheduled catalog sync costs the requests of its process: event-loop lag during a sync.

`serve` runs the sync (`UNHARDCODED_CATALOG_SYNC`) in the same process as the requests: the fetch
is asynchronous, the import runs in a worker thread, the publish on the event loop. This measures
how late a 2 ms timer on the loop fires (the delay any request waiting for the loop would see)
while `CatalogSyncer.run_once` syncs the real LiteLLM price map from a loopback HTTP server into
a SQLite ledger: first a new version (import + publish), then the same bytes (no import), against
the same-run baseline of the idle loop for the same duration.

`--source openrouter` syncs the real OpenRouter listing of 2026-01-05 instead, with the test ZDR
list and EU listing beside it as OpenRouter lays them out (three fetches per run); `--facts off`
syncs the listing alone (`zdr=off eu=off`), for a same-window pair.

    .venv/bin/python bench/bench_catalog_sync.py [--release 1.110.2] [--json]
    .venv/bin/python bench/bench_catalog_sync.py --source openrouter [--facts off]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import os
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from router.core import Catalog
from router.services.catalogs import CatalogSyncer, Published, parse_sync_setting
from router.services.decisions import DecisionService
from unhardcoded.db import migrated_ledger

DATA = Path(__file__).resolve().parents[1] / "tests" / "catalogs" / "data"
REAL = DATA / "real"
TICK_S = 0.002
LITELLM_PATH = "/model_prices_and_context_window.json"


def _serve(files: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    """A loopback server of `files` (path with query → body); its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path)
            self.send_response(404 if data is None else 200)
            body = data or b""
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _schedule(source: str, release: str, facts: bool) -> tuple[dict[str, bytes], list[str], str]:
    """What the server serves, the paths a run fetches, and the schedule setting (`{base}` is
    the server's URL)."""
    if source == "litellm":
        data = gzip.decompress((REAL / f"litellm-{release}.json.gz").read_bytes())
        return {LITELLM_PATH: data}, [LITELLM_PATH], f"litellm url={{base}}{LITELLM_PATH}"
    listing = gzip.decompress((REAL / "openrouter-models-2026-01-05.json.gz").read_bytes())
    files = {
        "/api/v1/models": listing,
        "/api/v1/endpoints/zdr": (DATA / "openrouter-zdr.json").read_bytes(),
        "/api/v1/models?region=eu": (DATA / "openrouter-eu.json").read_bytes(),
    }
    fetched = list(files) if facts else ["/api/v1/models"]
    setting = "openrouter url={base}/api/v1/models" + ("" if facts else " zdr=off eu=off")
    return files, fetched, setting


async def _lags_during(work: Any) -> tuple[list[float], float]:
    """Lags (s) of a TICK_S timer while `work` runs, and the work's wall time."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - start - TICK_S)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await work()
    wall = time.perf_counter() - started
    done.set()
    await task
    return lags, wall


def _figures(lags: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(lags)
    return {
        "seconds": round(wall, 3),
        "ticks": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1e3, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1e3, 2),
        "max_ms": round(ordered[-1] * 1e3, 1),
    }


async def _run(source: str, release: str, facts: bool) -> dict[str, Any]:
    files, fetched, setting = _schedule(source, release, facts)
    httpd, base = _serve(files)
    schedule = parse_sync_setting(setting.format(base=base))
    assert schedule is not None
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        async with migrated_ledger(
            f"sqlite+aiosqlite:///{folder}/ledger.db", home=folder / "home"
        ) as ledger:
            service = DecisionService(ledger)

            async def publish(catalog: Catalog) -> Published:
                done = await service.publish_catalog(catalog)
                return Published(done.version, done.created)

            syncer = CatalogSyncer(schedule, publish, today=lambda: dt.date(2026, 12, 7))

            async def new_version() -> None:
                outcome = await syncer.run_once()
                assert outcome is not None
                assert outcome.created

            async def same_bytes() -> None:
                outcome = await syncer.run_once()
                assert outcome is not None
                assert not outcome.created

            sync_lags, sync_wall = await _lags_during(new_version)
            same_lags, same_wall = await _lags_during(same_bytes)
            idle_lags, idle_wall = await _lags_during(lambda: asyncio.sleep(sync_wall))
    finally:
        httpd.shutdown()
        httpd.server_close()
    return {
        "source": source
        if source == "litellm"
        else f"openrouter ({'with' if facts else 'no'} facts)",
        "release": release if source == "litellm" else "2026-01-05",
        "documents": len(fetched),
        "bytes": sum(len(files[path]) for path in fetched),
        "new_version": _figures(sync_lags, sync_wall),
        "same_bytes": _figures(same_lags, same_wall),
        "idle_baseline": _figures(idle_lags, idle_wall),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="litellm", choices=["litellm", "openrouter"])
    parser.add_argument("--release", default="1.110.2", choices=["1.80.0", "1.110.2"])
    parser.add_argument(
        "--facts", default="on", choices=["on", "off"], help="openrouter: the ZDR and EU lists"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(_run(args.source, args.release, args.facts == "on"))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{result['source']} {result['release']} ({result['documents']} documents, "
        f"{result['bytes']:,} bytes), load {result['load_average']}"
    )
    for name in ("new_version", "same_bytes", "idle_baseline"):
        f = result[name]
        print(
            f"  {name:<14} {f['seconds']:6.2f} s: loop lag p50 {f['p50_ms']} ms, "
            f"p99 {f['p99_ms']} ms, max {f['max_ms']} ms ({f['ticks']} ticks)"
        )


if __name__ == "__main__":
    main()
