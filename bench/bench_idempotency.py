"""What an `Idempotency-Key` costs: the same chat completion through `unhardcoded serve --echo`
(SQLite ledger, every decision fsync'd) without the header, with a new key each time (a claim
and a stored answer: two more transactions), and with one key sent again (a replay: one read,
no decision, no upstream call). Sequential requests on one keep-alive connection; for each
case the p50 and p99 latency and the server's CPU milliseconds per request, same run.

Run from the repository root:

    python bench/bench_idempotency.py --requests 300
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

POLICY = {"v": "sigma-pol/v1", "rules": [], "rank": [["asc", "cost_per_run"]]}
BODY = {"model": "x", "messages": [{"role": "user", "content": "hello"}], "policy": POLICY}


def _cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _run(client: httpx.Client, pid: int, requests: int, key: str | None) -> dict[str, float]:
    latencies = []
    cpu = _cpu_ms(pid)
    for _ in range(requests):
        headers = {} if key is None else {"idempotency-key": key or str(uuid.uuid4())}
        started = time.perf_counter()
        answer = client.post("/v1/chat/completions", json=BODY, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    cpu = _cpu_ms(pid) - cpu
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "cpu_ms_per_request": round(cpu / requests, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "UNHARDCODED_HOME": f"{tmp}/home"}
        db = f"sqlite+aiosqlite:///{tmp}/bench.db"
        cli = [sys.executable, "-m", "unhardcoded"]
        created = subprocess.run(
            [*cli, "keys", "create", "--tenant", "bench", "--scope", "route", "--db", db],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        secret = re.search(r"uhk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", created.stdout + created.stderr)
        assert secret is not None, created
        log = Path(tmp) / "serve.log"  # a file, not a pipe: one log line per request
        with log.open("w") as sink:
            server = subprocess.Popen(
                [*cli, "serve", "--echo", "--port", "0", "--db", db], env=env, stderr=sink
            )
        try:
            port = None
            while port is None:
                if server.poll() is not None:
                    raise SystemExit(f"serve exited before listening:\n{log.read_text()}")
                found = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text())
                if found is None:
                    time.sleep(0.1)
                else:
                    port = found.group(1)
            auth = {"authorization": f"Bearer {secret.group(0)}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
                _run(client, server.pid, 50, None)  # warm-up: catalog, policy, connections
                figures: dict[str, object] = {
                    "no_key": _run(client, server.pid, args.requests, None),
                    "new_key": _run(client, server.pid, args.requests, ""),
                    "replayed_key": _run(client, server.pid, args.requests, "same-key"),
                }
        finally:
            server.terminate()
            server.wait(60)
    figures["load_average"] = [round(load, 2) for load in os.getloadavg()]
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
