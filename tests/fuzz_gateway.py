"""Fuzz the live gateway: no 5xx, no dropped connection, no ERROR log line from client input.

Starts `unhardcoded serve` (a real process, SQLite, a catalog whose providers are loopback fake
OpenAI- and Anthropic-compatible upstreams from tests/support/fake_providers.py), then sends:

1. **schemathesis** cases generated from the server's own `/openapi.json` for every operation:
   its coverage phase (boundary and invalid values, unexpected methods), then its positive and
   negative generation modes, with schemathesis's checks
   (not a server error, status code, content type and response schema conformance);
2. **a mutation fuzzer** against `POST /v1/chat/completions`: valid chat requests (some streamed,
   some routed to the Anthropic translation) mutated at the byte level (flips, cuts, insertions,
   duplicated spans) and at the JSON level (values of other types, huge and non-finite numbers,
   lone surrogates, duplicate keys, deep nesting, removed fields, bodies above the size limit,
   wrong content types).

Every request goes over keep-alive connections, so a server that closes a connection after an
error without saying so shows up as a dropped connection on the next request. It counts the
statuses, the 5xx, the dropped connections (any transport error), the schemathesis check
failures and the ERROR lines (and non-JSON lines) in the server's log, prints them, and exits 1
when any of 5xx, dropped, ERROR lines or check failures is not zero.

    .venv/bin/python -m tests.fuzz_gateway                      # ~11,000 requests, a few minutes
    .venv/bin/python -m tests.fuzz_gateway --mutations 20000 --examples 200 --json

Run from the repository root. It lives with the tests because it is one (a long, seeded one that
the suite does not run) and uses their loopback fakes; pytest does not collect it.
"""

from __future__ import annotations

import argparse
import collections
import copy
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.gateway._harness import EU_POLICY, TEST_CATALOG, provider_env
from tests.support.fake_providers import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FakeProvider

CLI = [sys.executable, "-m", "unhardcoded"]
MAX_BODY_BYTES = 64 * 1024


class Tally:
    """Statuses, 5xx, dropped connections and check failures of one phase."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.statuses: collections.Counter[int] = collections.Counter()
        self.dropped: list[str] = []
        self.server_errors: list[str] = []
        self.check_failures: list[str] = []
        self.not_generated: list[str] = []
        self.disconnects = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + len(self.dropped)

    def record(self, status: int, what: str) -> None:
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(f"{status} {what}"[:300])

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "5xx": len(self.server_errors),
            "dropped": len(self.dropped),
            "check_failures": len(self.check_failures),
            "not_generated": self.not_generated,
            "client_disconnects": self.disconnects,
            "examples": {
                "5xx": self.server_errors[:5],
                "dropped": self.dropped[:5],
                "check_failures": self.check_failures[:5],
            },
        }


# ---- the server under test ------------------------------------------------------------------


def _env(tmp: Path, providers: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    return {
        **base,
        **providers,
        "UNHARDCODED_HOME": str(tmp / "home"),
        "UNHARDCODED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/fuzz.db",
        "UNHARDCODED_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    }


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed: {done.stderr}")
    return done.stdout.strip()


def _serve(tmp: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(TEST_CATALOG), encoding="utf-8")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", "--catalog", str(catalog)], env=env, stderr=out
        )
    for _ in range(1200):
        text = log.read_text(encoding="utf-8", errors="replace")
        if "Uvicorn running on" in text:
            line = next(x for x in text.splitlines() if "Uvicorn running on" in x)
            return proc, json.loads(line)["msg"].split("running on ")[1].split()[0]
        if proc.poll() is not None:
            raise SystemExit("serve did not start:\n" + text)
        time.sleep(0.1)
    raise SystemExit("serve did not start in 120 s")


def _log_problems(log: Path) -> tuple[list[str], int]:
    """ERROR (or worse) lines and non-JSON lines of the server's log; and the line count."""
    problems = []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            problems.append(line[:300])
            continue
        if record.get("level") in ("error", "critical"):
            problems.append(line[:300])
    return problems, len(lines)


# ---- phase 1: schemathesis -------------------------------------------------------------------


def schemathesis_phase(root: str, headers: dict[str, str], examples: int, tally: Tally) -> None:
    """Every operation of the live /openapi.json, positive and negative cases."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from unhardcoded.app._openapi import policy_components

    document = httpx.get(f"{root}/openapi.json", timeout=30).json()
    # The recursive policy expression schema is bounded for the generator (it does not
    # terminate on it otherwise), as in tests/gateway/test_openapi_schemathesis.py.
    schemas = document["components"]["schemas"]
    for name in [n for n in schemas if n.startswith("sigma_pol_v1")]:
        del schemas[name]
    schemas.update(policy_components(max_depth=2))
    schema = schemathesis.openapi.from_dict(document)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    import requests

    def send(case: Any, label: str, session: requests.Session) -> None:
        try:
            response = case.call(base_url=root, headers=headers, session=session, timeout=30)
        except Exception as exc:  # any transport failure is a dropped connection
            tally.dropped.append(f"{label}: {type(exc).__name__}: {exc}"[:300])
            return
        tally.record(response.status_code, f"{label}: {response.text[:200]}")
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, FailureGroup) as exc:
            tally.check_failures.append(f"{label}: {exc}"[:300])

    with requests.Session() as session:  # keep-alive, as schemathesis sends by default
        for result in schema.get_all_operations():
            operation = result.ok()
            # The coverage phase: boundary and invalid values of every parameter and body field,
            # unexpected methods, missing required parts.
            for case in schema.iter_coverage_cases(
                operation,
                generation_modes=list(GenerationMode),
                generation_config=schema.config.generation_for(operation=operation),
            ):
                send(case, f"{operation.method.upper()} {operation.path} (coverage)", session)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                run = settings(
                    max_examples=examples,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )(
                    given(case=operation.as_strategy(generation_mode=mode))(
                        _bound(send, label, session)
                    )
                )
                try:
                    run()
                except Exception as exc:  # e.g. nothing to negate in an operation without input
                    tally.not_generated.append(f"{label}: {type(exc).__name__}")


def _bound(send: Callable[..., None], label: str, session: Any) -> Callable[[Any], None]:
    """`send` for one operation, as the one-argument function hypothesis's `given` wraps."""

    def run_case(case: Any) -> None:
        send(case, label, session)

    return run_case


# ---- phase 2: mutations of chat requests ------------------------------------------------------


def _seeds() -> list[dict[str, Any]]:
    user = {"role": "user", "content": "Say hi."}
    cheapest_us = {"v": "sigma-pol/v1", "rank": [["asc", "cost_per_run"]]}
    anthropic_only = {
        "v": "sigma-pol/v1",
        "rules": [{"id": "only.claude", "when": ["eq", "provider", "fakeant"]}],
        "rank": [["asc", "price_in"]],
    }
    return [
        {"model": "auto", "messages": [user], "policy": EU_POLICY},
        {"model": "auto", "messages": [user], "policy": EU_POLICY, "stream": True},
        {"model": "auto", "messages": [user], "policy": cheapest_us, "max_tokens": 16},
        {
            "model": "auto",
            "messages": [{"role": "system", "content": "Be brief."}, user],
            "policy": anthropic_only,
            "max_tokens": 32,
            "temperature": 0.2,
        },
        {
            "model": "auto",
            "messages": [user],
            "policy": anthropic_only,
            "stream": True,
            "max_tokens": 8,
        },
        {
            "model": "auto",
            "messages": [user],
            "policy": EU_POLICY,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "seed": 7,
            "n": 1,
            "user": "u1",
        },
    ]


ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**53 + 1,
    2**64,
    -(2**70),
    1e308,
    -0.0,
    "",
    "\ud800",
    "x" * 5000,
    "é\u0000\u202e",
    [],
    {},
    [[[[[]]]]],
    {"": None},
    "sigma-pol/v1",
]
RAW_VALUES = [b"1e999", b"-1e999", b"NaN", b"Infinity", b"1" * 400, b'"\\ud800"', b'"\\udfff x"']


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _set(document: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


def _json_mutation(rng: random.Random, seed: dict[str, Any]) -> tuple[bytes, str]:
    document = copy.deepcopy(seed)
    path = rng.choice(list(_paths(document)))
    roll = rng.random()
    if roll < 0.45:
        value = rng.choice(ODD_VALUES)
        document = _set(document, path, value)
        return json.dumps(document, ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        ), f"set {list(path)}"
    if roll < 0.6 and path:
        document = _set(document, path, None, delete=True)
        return json.dumps(document).encode(), f"delete {list(path)}"
    if roll < 0.75:  # a raw token JSON cannot express through json.dumps
        marker = "__RAW__"
        document = _set(document, path, marker)
        text = json.dumps(document).encode()
        return text.replace(b'"__RAW__"', rng.choice(RAW_VALUES), 1), f"raw {list(path)}"
    if roll < 0.85:  # a duplicate key
        text = json.dumps(document)
        key = rng.choice(["policy", "messages", "model", "stream", "v", "rules"])
        return text.replace(f'"{key}":', f'"{key}": null, "{key}":', 1).encode(), f"dup {key}"
    if roll < 0.93:  # deep nesting
        depth = rng.choice([50, 500, 5000, 100_000])
        text = json.dumps(_set(document, path, "__DEEP__")).encode()
        return text.replace(b'"__DEEP__"', b"[" * depth + b"]" * depth, 1), f"nest {depth}"
    value = "y" * (MAX_BODY_BYTES + rng.randint(0, 1000))
    return json.dumps(_set(document, path, value)).encode(), "oversize"


def _byte_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buf:
            break
        at = rng.randrange(len(buf))
        kind = rng.randrange(5)
        if kind == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del buf[at : at + rng.randint(1, 20)]
        elif kind == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 3:
            buf[at:at] = rng.choice([b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\xff"])
        else:
            end = min(len(buf), at + rng.randint(1, 40))
            buf[at:at] = buf[at:end]
    return bytes(buf), "bytes"


def _disconnect(
    host: str, port: int, headers: dict[str, str], rng: random.Random, seed: dict[str, Any]
) -> None:
    """A client that goes away: mid-body, right after the request, or mid-stream. The server must
    take it as the client's doing (an INFO line at most), not as an error of its own."""
    body = json.dumps({**seed, "stream": rng.random() < 0.5}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n{head}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        when = rng.randrange(3)
        if when == 0:
            sock.sendall(request + body[: len(body) // 2])
        else:
            sock.sendall(request + body)
            if when == 2:
                sock.recv(64)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST


def mutation_phase(root: str, headers: dict[str, str], count: int, seed: int, tally: Tally) -> None:
    """`count` mutated chat requests over keep-alive connections."""
    rng = random.Random(seed)
    seeds = _seeds()
    content_types = ["application/json"] * 8 + ["text/plain", "", "application/json; charset=x"]
    make: list[Callable[[], tuple[bytes, str]]] = [
        lambda: (json.dumps(rng.choice(seeds)).encode(), "valid"),
        lambda: _json_mutation(rng, rng.choice(seeds)),
        lambda: _json_mutation(rng, rng.choice(seeds)),
        lambda: _byte_mutation(rng, json.dumps(rng.choice(seeds)).encode()),
    ]
    host, port = root.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    for index in range(count):
        if index % 50 == 49:
            _disconnect(host, int(port), headers, rng, rng.choice(seeds))
            tally.disconnects += 1
        body, what = rng.choice(make)()
        request_headers = {**headers, "content-type": rng.choice(content_types)}
        try:
            connection.request("POST", "/v1/chat/completions", body=body, headers=request_headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # One connection, reused as long as the server keeps it (http.client reconnects by
            # itself only after a response that said `connection: close`): a server that closes
            # it silently fails the next request here.
            tally.dropped.append(f"{what}: {type(exc).__name__}: {exc}: {body[:120]!r}")
            connection.close()
            continue
        status = response.status
        tally.record(status, f"{what}: {body[:120]!r} -> {answer[:150]!r}")
        if status >= 400 and status != 413:
            try:
                error = json.loads(answer).get("error", {})
            except ValueError:
                error = {}
            if not {"message", "type", "param", "code"} <= set(error):
                tally.check_failures.append(f"{what}: not OpenAI's error shape: {answer[:150]!r}")
    connection.close()


# ---- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples",
        type=int,
        default=100,
        help="schemathesis cases per operation and mode (upper bound)",
    )
    parser.add_argument("--mutations", type=int, default=8000, help="mutated chat requests")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="unhardcoded-fuzz-") as folder,
        FakeProvider("openai", api_key=FAKE_OPENAI_KEY) as oai,
        FakeProvider("anthropic", api_key=FAKE_ANTHROPIC_KEY) as ant,
    ):
        tmp = Path(folder)
        env = _env(
            tmp, provider_env(oai.base_url, FAKE_OPENAI_KEY, ant.base_url, FAKE_ANTHROPIC_KEY)
        )
        _run(["db", "upgrade"], env)
        route = _run(
            ["keys", "create", "--tenant", "acme", "--scope", "route", "--scope", "read:own"], env
        )
        admin = _run(["keys", "create", "--tenant", "ops", "--scope", "admin"], env)
        log = tmp / "serve.log"
        proc, root = _serve(tmp, env, log)
        started = time.monotonic()
        try:
            schema_tally = Tally("schemathesis")
            schemathesis_phase(
                root, {"authorization": f"Bearer {admin}"}, args.examples, schema_tally
            )
            mutation_tally = Tally("mutations")
            mutation_phase(
                root,
                {"authorization": f"Bearer {route}"},
                args.mutations,
                args.seed,
                mutation_tally,
            )
            alive = httpx.get(f"{root}/healthz", timeout=10).status_code == 200
        finally:
            proc.terminate()
            code = proc.wait(timeout=60)
        problems, lines = _log_problems(log)
        elapsed = time.monotonic() - started

    figures = {
        "phases": {t.name: t.to_json() for t in (schema_tally, mutation_tally)},
        "requests": schema_tally.requests + mutation_tally.requests,
        "5xx": len(schema_tally.server_errors) + len(mutation_tally.server_errors),
        "dropped": len(schema_tally.dropped) + len(mutation_tally.dropped),
        "check_failures": len(schema_tally.check_failures) + len(mutation_tally.check_failures),
        "error_log_lines": len(problems),
        "error_log_examples": problems[:5],
        "log_lines": lines,
        "serve_alive_after": alive,
        "serve_exit_status": code,
        "seconds": round(elapsed, 1),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for tally in (schema_tally, mutation_tally):
            part = tally.to_json()
            print(
                f"{tally.name:>12}: {part['requests']:,} requests, statuses {part['statuses']}, "
                f"5xx {part['5xx']}, dropped {part['dropped']}, "
                f"check failures {part['check_failures']}"
            )
            for kind, examples in part["examples"].items():
                for example in examples:
                    print(f"{'':>14}{kind}: {example}")
        print(
            f"{'total':>12}: {figures['requests']:,} requests in {figures['seconds']} s, 5xx "
            f"{figures['5xx']}, dropped {figures['dropped']}, check failures "
            f"{figures['check_failures']}, ERROR log lines {figures['error_log_lines']} (of "
            f"{lines}), serve alive after: {alive}, exit status {code}, "
            f"load {figures['load_average']:.1f}"
        )
        for problem in problems[:5]:
            print(f"{'':>14}log: {problem}")
    bad = (
        figures["5xx"]
        or figures["dropped"]
        or figures["error_log_lines"]
        or figures["check_failures"]
    )
    sys.exit(1 if bad or not alive or code != 0 else 0)


if __name__ == "__main__":
    main()
