"""The floor under `bundle verify`: what reading a bundle's events costs before any check.

`bundle verify` must at least read every line of `ledger/events.jsonl` out of the zip, parse it,
and hash each event (its payload digest, its leaf hash and its chain hash: three SHA-256s). This
measures those steps alone, cumulatively, on a real bundle, in one process on one core; then
every check of the event lines (`reports._verify_events`, a batch at a time: members, hashes,
order, chain links, inclusion proofs) in this process, the same in a pool of `--workers`
processes, and the whole `verify_bundle`, so the cost of the checks and of the rest
(decisions, data, report) are the differences:

    python bench/bench_verify_floor.py bundle.zip            # e.g. from bench/bench_audit.py

Prints events/s for each step: of the CPU time of this process (a loaded machine distorts it
less than wall time would; the pool's processes are not in it) and of the wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import cast

import orjson

# The reports are imported where they are used: the pool's processes import this module as
# their main one, and need only the ledger.

EVENTS = "ledger/events.jsonl"


def _lines(bundle: str) -> int:
    with zipfile.ZipFile(bundle) as archive, archive.open(EVENTS) as raw:
        return sum(1 for _ in io.BufferedReader(cast(io.RawIOBase, raw), 1 << 20))


def _parsed(bundle: str) -> int:
    count = 0
    with zipfile.ZipFile(bundle) as archive, archive.open(EVENTS) as raw:
        for line in io.BufferedReader(cast(io.RawIOBase, raw), 1 << 20):
            orjson.loads(line)
            count += 1
    return count


def _hashed(bundle: str) -> int:
    count = 0
    sha256 = hashlib.sha256
    with zipfile.ZipFile(bundle) as archive, archive.open(EVENTS) as raw:
        for line in io.BufferedReader(cast(io.RawIOBase, raw), 1 << 20):
            event = orjson.loads(line)
            payload = event["payload"].encode()
            # Leaf data is ~200 bytes of header around the payload digest: hash that much.
            data = sha256(payload).digest() + bytes.fromhex(event["prev_hash"]) + bytes(150)
            sha256(b"\x00" + data).digest()
            sha256(bytes.fromhex(event["prev_hash"]) + data).digest()
            count += 1
    return count


def _checked(bundle: str, executor: Executor | None = None) -> int:
    from ledger import parse_verifier_key
    from reports._verify_events import EventReader
    from reports._verify_zip import BundleZip

    problems: list[str] = []
    with zipfile.ZipFile(bundle) as archive:
        key = parse_verifier_key(archive.read("public_key.txt").decode().strip())
        checkpoint = BundleZip(archive, problems.append).checkpoint(key)
        reader = EventReader(EVENTS, checkpoint, problems.append, executor)
        with archive.open(EVENTS) as raw:
            blocks = iter(lambda: raw.read(1 << 20), b"")
            events = sum(map(len, reader.batches(blocks)))
    if problems:
        raise SystemExit(f"{bundle}: {problems[0]}")
    return events


def _pooled(bundle: str, workers: int) -> int:
    from reports._verify_events import check_pool

    with check_pool(workers) as pool:
        return _checked(bundle, pool)


def _timed(step: Callable[[], int]) -> tuple[int, float, float]:
    start, wall = time.process_time(), time.perf_counter()
    events = step()
    return events, time.process_time() - start, time.perf_counter() - wall


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="an audit bundle (bundle create)")
    parser.add_argument("--workers", type=int, default=2, help="processes of the pool step")
    args = parser.parse_args(argv)
    bundle, workers = args.bundle, args.workers
    from reports import verify_bundle

    steps: list[tuple[str, Callable[[], int]]] = [
        ("read lines from the zip", lambda: _lines(bundle)),
        ("+ parse each line (orjson)", lambda: _parsed(bundle)),
        ("+ three SHA-256 per event", lambda: _hashed(bundle)),
        ("every check of the lines", lambda: _checked(bundle)),
        (f"the same, {workers} processes", lambda: _pooled(bundle, workers)),
        ("bundle verify (everything)", lambda: verify_bundle(bundle, workers=workers).events),
    ]
    for name, step in steps:
        events, cpu, wall = _timed(step)
        print(
            f"{name:<28} {events:>9,} events {cpu:>7.1f} s CPU {events / cpu:>10,.0f}/s "
            f"{wall:>7.1f} s wall {events / wall:>10,.0f}/s"
        )


if __name__ == "__main__":
    main()
