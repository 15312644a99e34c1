"""Gateway overhead: direct to a fast loopback upstream vs through `unhardcoded serve` (every
decision and attempt recorded and fsync'd to a SQLite ledger) vs through the LiteLLM proxy.

Everything runs in one go on this machine, so the ratios are same-run:
1. the fast OpenAI-compatible upstream of `bench/fast_upstream.py` (one fixed answer) in a process;
2. the gateway as a user runs it (`python -m unhardcoded serve`, log level warning), one key;
3. the ledger floor: the gateway's two durable appends per request (DecisionService.decide and
   record_attempt) in-process, with no HTTP at all — what recording alone costs;
4. optionally the LiteLLM proxy from a separate venv (`--litellm /tmp/litellm-venv/bin/litellm`,
   run with `LITELLM_LOCAL_MODEL_COST_MAP=True`) pointed at the same upstream.

The load generator is a lean asyncio client over raw keep-alive sockets (one per concurrent
caller), so it costs little CPU next to the servers. For each target and concurrency (1 and 32):
requests/s, p50/p99 latency, the added p50/p99 against the direct figure, and server CPU
milliseconds per request read from /proc/<pid>/stat before and after the run; for the gateway,
where its time went (server-side means of its decide / upstream / request histograms).
Then the tail phase (bench/gateway_tail.py): one caller alternating a direct and a gateway call
for `--duration` seconds, long enough for several checkpoints; p50, p99, p99.9 and max of both.

Run from the repository root:

    python bench/bench_gateway.py                       # gateway vs direct
    python bench/bench_gateway.py --litellm /tmp/litellm-venv/bin/litellm
    python bench/bench_gateway.py --profile profile.txt # pyinstrument text report of the gateway
    python bench/bench_gateway.py --tail-only --duration 60   # only the tail phase
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway_floor import ledger_floor  # noqa: E402 - after the path
from bench.gateway_tail import TailRun, percentile, tail_probe  # noqa: E402 - after the path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

CATALOG = {
    "name": "bench",
    "entries": [
        {
            "id": "bench/bench-model@eu",
            "model": "bench-model",
            "provider": "bench",
            "region": "eu",
            "price_in": 0.1,
            "price_out": 0.4,
            "status": "active",
        },
        {
            "id": "bench/bench-model@us",
            "model": "bench-model",
            "provider": "bench",
            "region": "us",
            "price_in": 0.2,
            "price_out": 0.8,
            "status": "active",
        },
    ],
}
POLICY = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "residency.eu", "when": ["eq", "region", "eu"]}],
    "rank": [["asc", "cost_per_run"]],
    "fallback": {"max_attempts": 2},
}
LITELLM_KEY = "sk-bench-master-4f2a9c1e7b3d5a60"
MESSAGES = [{"role": "user", "content": "Say ok."}]


# -- the load generator --------------------------------------------------------------------------


@dataclass
class Run:
    target: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    cpu_ms: float | None
    split_ms: dict[str, float] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    match = re.search(rb"content-length:\s*(\d+)", lower)
    if match:
        return status, await reader.readexactly(int(match.group(1)))
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    raise RuntimeError("response without length")


async def _caller(
    port: int, request: bytes, count: int, latencies: list[float], failures: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"{status}: {body[:200]!r}")
    finally:
        writer.close()


def _request(port: int, path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"content-length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _tree(pid: int) -> list[int]:
    """A process and its live descendants (the server processes of --workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except FileNotFoundError:
            continue
        found.append(current)
        for task in tasks:
            pending.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    total = 0.0
    for current in _tree(pid):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its live descendants, summed, in MB."""
    total = 0
    for current in _tree(pid):
        with contextlib.suppress(FileNotFoundError):
            status = Path(f"/proc/{current}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            total += int(match.group(1)) if match else 0
    return total / 1024


#: The gateway's own latency histograms (name in /metrics, label filter), summed over a run.
_SPLIT = {
    "request": ("unhardcoded_http_request_seconds", 'route="/v1/chat/completions"'),
    "decide": ("unhardcoded_decide_seconds", ""),
    "upstream": ("unhardcoded_upstream_attempt_seconds", ""),
}


def _histograms(port: int) -> dict[str, tuple[float, float]]:
    """(sum, count) of each `_SPLIT` histogram, read from the gateway's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out = {}
    for key, (name, label) in _SPLIT.items():
        total = count = 0.0
        for line in text.splitlines():
            if label in line and line.startswith((f"{name}_sum", f"{name}_count")):
                value = float(line.rsplit(" ", 1)[1])
                if line.startswith(f"{name}_sum"):
                    total += value
                else:
                    count += value
        out[key] = (total, count)
    return out


async def _load(
    target: str, port: int, request: bytes, concurrency: int, total: int, pid: int | None
) -> Run:
    per_caller = max(1, total // concurrency)
    warm: list[float] = []
    failures: list[str] = []
    await asyncio.gather(*(_caller(port, request, 20, warm, failures) for _ in range(concurrency)))
    latencies: list[float] = []
    cpu_before = _cpu_seconds(pid) if pid else None
    started = time.perf_counter()
    await asyncio.gather(
        *(_caller(port, request, per_caller, latencies, failures) for _ in range(concurrency))
    )
    seconds = time.perf_counter() - started
    cpu = None
    if pid and cpu_before is not None:
        cpu = (_cpu_seconds(pid) - cpu_before) * 1000 / len(latencies)
    if failures:
        raise RuntimeError(f"{target}: {len(failures)} failed requests, first: {failures[0]}")
    return Run(target, concurrency, len(latencies), seconds, latencies, cpu)


# -- processes -----------------------------------------------------------------------------------


def _start(
    cmd: list[str], env: dict[str, str], cwd: Path, ready: str
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(ready, line):
            return proc, line
    raise RuntimeError(f"{cmd[0]} exited before it was ready:\n{''.join(seen[-30:])}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(
    cmd: list[str], env: dict[str, str], cwd: Path, port: int, path: str
) -> subprocess.Popen[str]:
    """Start a server and poll `path` on `port` until it answers (a benchmark may poll)."""
    import urllib.error
    import urllib.request

    log = open(cwd / f"{Path(cmd[0]).name}-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: see {log.name}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
            return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"{cmd} did not become ready: see {log.name}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per run at concurrency 32")
    parser.add_argument("--litellm", default=None, help="path of the `litellm` executable")
    parser.add_argument("--profile", default=None, help="write a pyinstrument report here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes of the gateway (serve --workers) and of LiteLLM (--num_workers)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="seconds of the sequential tail phase (direct and gateway alternated at c=1, "
        "several checkpoints long; 0 skips it)",
    )
    parser.add_argument(
        "--tail-only",
        action="store_true",
        help="run only the tail phase (no c=1/c=32 throughput runs, no ledger floor)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=5.0,
        help="the gateway's UNHARDCODED_CHECKPOINT_INTERVAL_S (default 5, as served)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    procs: list[subprocess.Popen[str]] = []
    runs: list[Run] = []
    tail: TailRun | None = None
    peak_rss: dict[str, float] = {}
    try:
        upstream, line = _start(
            [sys.executable, str(REPO / "bench" / "fast_upstream.py"), "--uvloop"],
            _env(),
            REPO,
            r"^http://127\.0\.0\.1:\d+/v1$",
        )
        procs.append(upstream)
        up_port = int(line.strip().rsplit(":", 1)[1].split("/")[0])
        direct = _request(
            up_port,
            "/v1/chat/completions",
            {"model": "bench-model", "messages": MESSAGES},
            {"authorization": "Bearer sk-bench"},
        )

        (tmp / "catalog.json").write_text(json.dumps(CATALOG))
        db = f"sqlite+aiosqlite:///{tmp / 'gateway.db'}"
        env = _env(
            UNHARDCODED_HOME=str(tmp / "home"),
            UNHARDCODED_PROVIDER_BENCH_BASE_URL=f"http://127.0.0.1:{up_port}/v1",
            UNHARDCODED_PROVIDER_BENCH_REGION="eu",
            UNHARDCODED_PROVIDER_BENCH_API_KEY="sk-bench",
            UNHARDCODED_CHECKPOINT_INTERVAL_S=str(args.checkpoint_interval),
        )
        key = subprocess.run(
            [
                sys.executable,
                "-m",
                "unhardcoded",
                "keys",
                "create",
                "--tenant",
                "bench",
                "--scope",
                "route",
                "--db",
                db,
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        gw_port = _free_port()
        serve = [
            sys.executable,
            "-m",
            "unhardcoded",
            "serve",
            "--port",
            str(gw_port),
            "--db",
            db,
            "--catalog",
            str(tmp / "catalog.json"),
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
        ]
        if args.profile:
            serve = [
                sys.executable,
                "-m",
                "pyinstrument",
                "-r",
                "text",
                "-o",
                str(Path(args.profile).resolve()),
                *serve[1:],
            ]
        gateway = _spawn(serve, env, tmp, gw_port, "/healthz")
        procs.append(gateway)
        through = _request(
            gw_port,
            "/v1/chat/completions",
            {"model": "auto", "messages": MESSAGES, "policy": POLICY},
            {"authorization": f"Bearer {key}"},
        )
        targets = [
            ("direct", up_port, direct, upstream.pid),
            ("gateway", gw_port, through, gateway.pid),
        ]

        if args.litellm:
            config = tmp / "litellm.yaml"
            config.write_text(
                "model_list:\n  - model_name: bench\n    litellm_params:\n"
                f"      model: openai/bench-model\n      api_base: http://127.0.0.1:{up_port}/v1\n"
                "      api_key: sk-bench\n"
            )
            lite_port = _free_port()
            litellm = _spawn(
                [
                    args.litellm,
                    "--config",
                    str(config),
                    "--port",
                    str(lite_port),
                    "--num_workers",
                    str(args.workers),
                ],
                _env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_MASTER_KEY=LITELLM_KEY),
                tmp,
                lite_port,
                "/health/liveliness",
            )
            procs.append(litellm)
            lite = _request(
                lite_port,
                "/v1/chat/completions",
                {"model": "bench", "messages": MESSAGES},
                {"authorization": f"Bearer {LITELLM_KEY}"},
            )
            targets.append(("litellm", lite_port, lite, litellm.pid))

        loads = () if args.tail_only else ((1, max(500, args.requests // 4)), (32, args.requests))
        for concurrency, total in loads:
            for name, port, request, pid in targets:
                print(f"running {name} at concurrency {concurrency}…", file=sys.stderr, flush=True)
                before = _histograms(port) if name == "gateway" else None
                run = asyncio.run(_load(name, port, request, concurrency, total, pid))
                if before is not None:
                    after = _histograms(port)
                    run.split_ms = {
                        key: (after[key][0] - before[key][0])
                        * 1000
                        / max(1.0, after[key][1] - before[key][1])
                        for key in _SPLIT
                    }
                runs.append(run)
        peak_rss = {name: round(_peak_rss_mb(pid), 1) for name, _, _, pid in targets}
        if args.duration > 0:
            print(f"running the {args.duration:.0f} s tail phase…", file=sys.stderr, flush=True)
            tail = asyncio.run(
                tail_probe(
                    _read_response,
                    (up_port, direct),
                    (gw_port, through),
                    args.duration,
                    tmp / "gateway.db",
                )
            )
    finally:
        for proc in reversed(procs):
            if proc is procs[0]:  # the stateless upstream: no graceful stop to wait for
                proc.kill()
                proc.wait()
            else:
                _stop(proc)

    floors = {}
    floor_loads = () if args.tail_only else ((1, max(200, args.requests // 8)), (32, args.requests))
    for concurrency, total in floor_loads:
        print(f"running the ledger floor at concurrency {concurrency}…", file=sys.stderr)
        floors[concurrency] = asyncio.run(
            ledger_floor(tmp, concurrency, total, CATALOG, POLICY, MESSAGES)
        )

    base = {r.concurrency: r for r in runs if r.target == "direct"}
    rows = []
    for run in runs:
        ref = base[run.concurrency]
        rows.append(
            {
                "target": run.target,
                "concurrency": run.concurrency,
                "requests": run.requests,
                "rps": round(run.rps, 1),
                "p50_ms": round(run.pct(0.5), 3),
                "p99_ms": round(run.pct(0.99), 3),
                "p99.9_ms": round(run.pct(0.999), 3),
                "max_ms": round(run.pct(1.0), 3),
                "added_p50_ms": round(run.pct(0.5) - ref.pct(0.5), 3),
                "added_p99_ms": round(run.pct(0.99) - ref.pct(0.99), 3),
                "added_p99.9_ms": round(run.pct(0.999) - ref.pct(0.999), 3),
                "added_max_ms": round(run.pct(1.0) - ref.pct(1.0), 3),
                "cpu_ms_per_request": None if run.cpu_ms is None else round(run.cpu_ms, 3),
                "rps_vs_direct": round(run.rps / ref.rps, 3),
                "server_ms": None
                if run.split_ms is None
                else {key: round(value, 3) for key, value in run.split_ms.items()},
            }
        )
    floor_rows = [
        {
            "concurrency": c,
            "rps": round(f[0], 1),
            "p50_ms": round(f[1], 3),
            "cpu_ms": round(f[2], 3),
        }
        for c, f in floors.items()
    ]
    if args.json:
        out = {"runs": rows, "ledger_floor": floor_rows, "peak_rss_mb": peak_rss}
        out["tail"] = None if tail is None else tail.to_json()
        print(json.dumps(out, indent=2))
        return
    columns = [
        ("target", "target", 8),
        ("concurrency", "c", 3),
        ("rps", "req/s", 9),
        ("p50_ms", "p50 ms", 8),
        ("p99_ms", "p99 ms", 8),
        ("p99.9_ms", "p99.9 ms", 8),
        ("max_ms", "max ms", 8),
        ("added_p50_ms", "+p50", 8),
        ("added_p99_ms", "+p99", 8),
        ("added_p99.9_ms", "+p99.9", 8),
        ("added_max_ms", "+max", 8),
        ("cpu_ms_per_request", "cpu ms/req", 10),
        ("rps_vs_direct", "vs direct", 9),
    ]
    if rows:
        print(" ".join(title.rjust(width) for _, title, width in columns))
    for r in rows:
        print(" ".join(str(r[key]).rjust(width) for key, _, width in columns))
    print("peak RSS (MB): " + ", ".join(f"{name} {mb}" for name, mb in peak_rss.items()))
    if tail is not None:
        print(tail.report())
    if not rows:
        return
    print(
        "\ngateway, server-side means from its /metrics (ms): request = decide (evaluate and "
        "commit DecisionMade: mostly the fsync wait) + upstream attempt + the rest (HTTP, auth, "
        "body, answer):"
    )
    for run in runs:
        split = run.split_ms
        if split is not None:
            rest = split["request"] - split["decide"] - split["upstream"]
            print(
                f"  c={run.concurrency:<3} request {split['request']:.3f}  "
                f"decide {split['decide']:.3f}  upstream {split['upstream']:.3f}  rest {rest:.3f}"
            )
    print("\nledger floor (decide + record_attempt in-process, both durable, no HTTP):")
    for f in floor_rows:
        print(
            f"  c={f['concurrency']:<3} {f['rps']:>9} req/s  p50 {f['p50_ms']} ms  "
            f"cpu {f['cpu_ms']} ms/req"
        )


if __name__ == "__main__":
    main()
