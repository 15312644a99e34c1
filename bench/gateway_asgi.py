"""The gateway's CPU per request without a socket between caller and gateway: `create_app`'s app
driven in process through ASGI (its whole stack: middleware, FastAPI's routing, the chat route,
the ledger's two durable appends, aiohttp to the upstream) by `--concurrency` callers, against
the fast upstream of `bench/fast_upstream.py` in a process of its own.

It reads the process's CPU (all threads) and the event loop thread's CPU per request, so that a
change to the gateway's code shows without the load generator, uvicorn or HTTP parsing in the
figure. Best of `--rounds` rounds of `--requests` requests each.

    python bench/gateway_asgi.py [--requests 3000] [--rounds 3] [--concurrency 32]
    python bench/gateway_asgi.py --profile out.prof   # cProfile of the event loop thread

It imports the packages next to its own folder, so a copy of `bench/` beside another checkout's
packages measures that checkout (bench/RESULTS.md, the gateway entries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_gateway import CATALOG, MESSAGES, POLICY  # noqa: E402 - after the path

__all__ = ["main"]


def _upstream() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "fast_upstream.py"), "--uvloop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"^http://127\.0\.0\.1:(\d+)/v1$", line.strip())
        if found:
            return proc, int(found.group(1))
    raise RuntimeError("the fast upstream exited before it was ready")


def _key(db: str, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "unhardcoded", "keys", "create", "--tenant", "bench"]
    command += ["--scope", "route", "--db", db]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class _Probe:
    """What watches the measured rounds only: `--callgrind` switches the instrumentation of
    `valgrind --tool=callgrind --instr-atstart=no` on and off, `--strace` runs `strace -c -f`
    attached to every thread of this process."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._callgrind = bool(args.callgrind)
        self._tracer: subprocess.Popen[bytes] | None = None
        if self._callgrind:
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
        if args.strace:
            command = ["strace", "-c", "-f", "-o", args.strace, "-p", str(os.getpid())]
            self._tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._callgrind:
            subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)
        if self._tracer is not None:
            self._tracer.send_signal(signal.SIGINT)
            self._tracer.wait()


class _Call:
    """One ASGI HTTP request: the body in one message, the answer collected."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = False
        self.status = 0
        self.answer: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the answer is being made
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.answer.append(message.get("body", b""))


async def _drive(app: Any, key: str, args: argparse.Namespace) -> list[tuple[float, float, float]]:
    body = json.dumps({"model": "auto", "messages": MESSAGES, "policy": POLICY}).encode()
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        call = _Call(body)
        if args.count_suspensions:
            await _counted(app(scope, call.receive, call.send), suspensions)
        else:
            await app(scope, call.receive, call.send)
        if call.status != 200:
            raise RuntimeError(f"HTTP {call.status}: {b''.join(call.answer)[:300]!r}")

    suspensions = [0]

    async def caller(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(caller(10) for _ in range(args.concurrency)))  # warm-up
    results = []
    for _ in range(args.rounds):
        probe = _Probe(args)
        if args.strace:
            await asyncio.sleep(1.0)  # strace attaches to every thread
        times = os.times()
        loop_cpu = time.thread_time()
        share = args.requests // args.concurrency
        await asyncio.gather(*(caller(share) for _ in range(args.concurrency)))
        done = share * args.concurrency
        after = os.times()
        process = (after.user + after.system - times.user - times.system) * 1e6 / done
        system = (after.system - times.system) * 1e6 / done
        results.append((process, (time.thread_time() - loop_cpu) * 1e6 / done, system))
        probe.stop()
    if args.count_suspensions:
        share = args.requests // args.concurrency
        total = (10 + args.rounds * share) * args.concurrency
        print(f"suspensions per request: {suspensions[0] / total:.2f}")
    return results


@types.coroutine
def _counted(coro: Any, counter: list[int]) -> Any:
    """Await `coro`, counting how often it suspends (each suspension is one resumption of the
    whole chain of awaiting frames)."""
    step = coro.__await__()
    value: Any = None
    while True:
        try:
            yielded = step.send(value)
        except StopIteration as done:
            return done.value
        counter[0] += 1
        value = yield yielded


async def _run(args: argparse.Namespace, env: dict[str, str], key: str) -> None:
    os.environ.update(env)
    from unhardcoded.app import create_app

    app = create_app()
    async with app.router.lifespan_context(app):
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            results = await _drive(app, key, args)
            profiler.disable()
            profiler.dump_stats(args.profile)
        else:
            results = await _drive(app, key, args)
    for process, loop, system in results:
        print(
            f"CPU µs/request: process {process:.0f} (system {system:.0f}), "
            f"event loop thread {loop:.0f}"
        )
    best = min(results)
    print(
        json.dumps(
            {
                "process_us": round(best[0], 1),
                "loop_us": round(best[1], 1),
                "system_us": round(best[2], 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--checkpoint-interval", type=float, default=3600.0)
    parser.add_argument("--count-suspensions", action="store_true")
    parser.add_argument("--strace", default=None, help="write `strace -c -f` of the rounds here")
    parser.add_argument("--callgrind", action="store_true", help="under callgrind: see above")
    parser.add_argument("--profile", default=None, help="write a cProfile of the loop thread")
    args = parser.parse_args()
    upstream, port = _upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-asgi-") as tmp:
            (Path(tmp) / "catalog.json").write_text(json.dumps(CATALOG))
            db = f"sqlite+aiosqlite:///{tmp}/gateway.db"
            env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
            env["PYTHONPATH"] = str(REPO)
            env.update(
                UNHARDCODED_HOME=f"{tmp}/home",
                UNHARDCODED_DATABASE_URL=db,
                UNHARDCODED_CATALOG=f"{tmp}/catalog.json",
                UNHARDCODED_PROVIDER_BENCH_BASE_URL=f"http://127.0.0.1:{port}/v1",
                UNHARDCODED_PROVIDER_BENCH_REGION="eu",
                UNHARDCODED_PROVIDER_BENCH_API_KEY="sk-bench",
                # No checkpoint within a run: its work grows with the run's wall time (much
                # longer under callgrind or strace), not with the requests.
                UNHARDCODED_CHECKPOINT_INTERVAL_S=str(args.checkpoint_interval),
            )
            key = _key(db, env)
            import uvloop

            uvloop.run(_run(args, env, key))
    finally:
        upstream.kill()
        upstream.wait()


if __name__ == "__main__":
    main()
