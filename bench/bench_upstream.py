"""How much the upstream adapter layer costs, next to a bare `aiohttp.ClientSession.post`.

Both paths send the same chat request to the same loopback OpenAI-compatible upstream (started in
its own process, so it does not share this process's GIL: `bench/fast_upstream.py`, a minimal
canned-answer server), through one pooled client,
at concurrency 1 and 32. Many short rounds alternate bare/adapter so machine noise hits both alike;
each figure is the median over rounds. Reported per mode: requests/s, p50/p99 latency, client and
server CPU ms per request, and the adapter/bare ratios; and, for the choice of library, the same
bare POST through `httpx.AsyncClient` (its own transport, httpcore).

    python bench/bench_upstream.py [--requests 300] [--rounds 10] [--uvloop]
                                   [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.services.upstream import (  # noqa: E402
    AiohttpTransport,
    MockTransport,
    ProviderRegistry,
    Request,
    Response,
    Upstream,
)

KEY = "sk-bench-0000000000000000"
BODY: dict[str, Any] = {
    "model": "bench",
    "messages": [
        {"role": "system", "content": "You are a benchmark."},
        {"role": "user", "content": "Say something short about latency."},
    ],
    "max_tokens": 32,
}


def start_fake() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fast_upstream.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the fake server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    call: Callable[[], Awaitable[None]], requests: int, concurrency: int, server_pid: int
) -> dict[str, float]:
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    cpu, wall, server = time.process_time(), time.perf_counter(), server_cpu(server_pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = server_cpu(server_pid) - server
    latencies.sort()
    return {
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "cpu_ms_per_request": cpu / len(latencies) * 1000,
        "server_cpu_ms_per_request": server / len(latencies) * 1000,
    }


def merge(samples: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of each figure."""
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


async def bench(base_url: str, pid: int, requests: int, rounds: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        AiohttpTransport(max_connections=64) as transport,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as client,
        httpx.AsyncClient(limits=limits, timeout=30) as other,
    ):
        registry = ProviderRegistry.from_env(
            {
                "UNHARDCODED_PROVIDER_FAKE_BASE_URL": base_url,
                "UNHARDCODED_PROVIDER_FAKE_API_KEY": KEY,
            }
        )
        upstream = Upstream(transport, registry)
        url = f"{base_url}/chat/completions"
        payload = json.dumps(BODY).encode()
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}

        async def bare() -> None:
            async with client.post(url, data=payload, headers=headers) as response:
                await response.read()
                response.raise_for_status()

        async def adapter() -> None:
            await upstream.complete(BODY, "fake", "bench-model")

        async def bare_httpx() -> None:
            response = await other.post(url, content=payload, headers=headers)
            response.raise_for_status()

        results: dict[str, Any] = {}
        for concurrency in (1, 32):
            await run(bare, 200, concurrency, pid)  # warm the pool and both code paths
            await run(adapter, 200, concurrency, pid)
            await run(bare_httpx, 200, concurrency, pid)
            samples: dict[str, list[dict[str, float]]] = {"bare": [], "adapter": [], "httpx": []}
            for _ in range(rounds):
                samples["bare"].append(await run(bare, requests, concurrency, pid))
                samples["adapter"].append(await run(adapter, requests, concurrency, pid))
                samples["httpx"].append(await run(bare_httpx, requests, concurrency, pid))
            b, a = merge(samples["bare"]), merge(samples["adapter"])
            results[f"c{concurrency}"] = {
                "bare": b,
                "adapter": a,
                "httpx": merge(samples["httpx"]),
                "ratio_rps": a["rps"] / b["rps"],
                "ratio_p50": a["p50_ms"] / b["p50_ms"],
                "added_p50_ms": a["p50_ms"] - b["p50_ms"],
                "added_cpu_ms_per_request": a["cpu_ms_per_request"] - b["cpu_ms_per_request"],
            }
        return results


async def in_process(requests: int, rounds: int) -> dict[str, Any]:
    """The adapter layer's own CPU cost: the adapter against an in-process `MockTransport`
    answering a canned completion, next to calling the transport directly, so no socket and no
    server noise is in the figure."""
    canned = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Latency is short."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        }
    ).encode()

    def handler(request: Request) -> Response:
        return Response(200, content=canned, headers={"content-type": "application/json"})

    async with MockTransport(handler) as client:
        registry = ProviderRegistry.from_env(
            {
                "UNHARDCODED_PROVIDER_FAKE_BASE_URL": "http://mock.invalid/v1",
                "UNHARDCODED_PROVIDER_FAKE_API_KEY": KEY,
            }
        )
        upstream = Upstream(client, registry)
        payload = json.dumps(BODY).encode()
        headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}

        async def bare() -> None:
            request = Request("http://mock.invalid/v1/chat/completions", payload, headers)
            response = await client.send(request)
            await response.read()
            await response.aclose()

        async def adapter() -> None:
            await upstream.complete(BODY, "fake", "bench-model")

        def per_call_us(samples: list[float]) -> float:
            return statistics.median(samples) * 1e6 / requests

        times: dict[str, list[float]] = {"bare": [], "adapter": []}
        for _ in range(rounds + 1):  # the first round warms up and is dropped
            for mode, call in (("bare", bare), ("adapter", adapter)):
                started = time.process_time()
                for _ in range(requests):
                    await call()
                times[mode].append(time.process_time() - started)
        bare_us = per_call_us(times["bare"][1:])
        adapter_us = per_call_us(times["adapter"][1:])
        return {
            "bare_cpu_us_per_call": bare_us,
            "adapter_cpu_us_per_call": adapter_us,
            "added_cpu_us_per_call": adapter_us - bare_us,
            "ratio": adapter_us / bare_us,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per mode per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--uvloop", action="store_true", help="run the client on uvloop (as uvicorn[standard] does)"
    )
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    process, base_url = start_fake()
    try:
        results = asyncio.run(bench(base_url, process.pid, args.requests, args.rounds))
    finally:
        process.terminate()
        process.wait()
    print(
        f"{'conc':>4} {'mode':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} "
        f"{'server cpu':>10}"
    )
    for name, row in results.items():
        for mode in ("bare", "adapter", "httpx"):
            r = row[mode]
            print(
                f"{name[1:]:>4} {mode:>8} {r['rps']:8.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
                f"{r['cpu_ms_per_request']:10.3f} {r['server_cpu_ms_per_request']:10.3f}"
            )
        print(
            f"{name[1:]:>4} {'ratio':>8} {row['ratio_rps']:8.2f} {row['ratio_p50']:8.2f} "
            f"{'':>8} added p50 {row['added_p50_ms']:.3f} ms, "
            f"added cpu {row['added_cpu_ms_per_request']:.3f} ms/req"
        )
    local = asyncio.run(in_process(args.requests, args.rounds))
    results["in_process"] = local
    print(
        f"in-process (MockTransport, CPU per call): bare {local['bare_cpu_us_per_call']:.0f} µs, "
        f"adapter {local['adapter_cpu_us_per_call']:.0f} µs, added "
        f"{local['added_cpu_us_per_call']:.0f} µs, ratio {local['ratio']:.2f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
