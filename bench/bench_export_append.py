"""Benchmark of `export parquet --append`: the cost of bringing an export folder up to date.

Exports the first 99 % of a generated ledger's positions (bench/gen_ledger.py) through the
library, then runs `unhardcoded export parquet --append` in its own process for the last 1 %, and
prints its wall and CPU time, decisions/s and peak RSS (from wait4) next to the first export's
wall and CPU time: an append should cost in proportion to what it adds, plus a fixed start-up,
which a second append with nothing left to add measures on its own.

The first export runs in a child process of its own too: the peak RSS Linux reports for a child
includes what its parent held when it started it (the memory `exec` replaces), so a parent that
had just exported 99 % of the ledger made the append look as large as the whole export.

    python bench/bench_export_append.py --db sqlite+aiosqlite:////tmp/audit200k.db \\
        --home /tmp/audit-home [--share 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("unhardcoded"))


class _Prefix:
    """The ledger as it was at an earlier size: `last_position` says `size - 1`, the rest is
    the ledger."""

    def __init__(self, ledger: Any, size: int) -> None:
        self._ledger, self._size = ledger, size

    async def last_position(self) -> int:
        return self._size - 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


async def _head(db: str, home: str, out: Path, share: float) -> tuple[int, float, int]:
    from ledger import open_ledger
    from reports import export_parquet

    async with open_ledger(db, home=home) as ledger:
        total = await ledger.count()
        size = int(total * (1 - share))
        start = time.perf_counter()
        summary = await export_parquet(_Prefix(ledger, size), out)  # type: ignore[arg-type]
        return summary.decisions, time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--share", type=float, default=0.01, help="share of positions appended")
    parser.add_argument("--first-export", type=Path, help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    if args.first_export is not None:
        print(json.dumps(asyncio.run(_head(args.db, args.home, args.first_export, args.share))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-append-") as tmp:
        out = Path(tmp) / "lake"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        first = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--first-export", str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        head, head_s, total = json.loads(first.stdout)
        head_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        append = _append(out, args.db, args.home)
        # Nothing is left to add: what this costs is the fixed part of every append (the
        # process, its imports, the ledger and the folder opened).
        empty = _append(out, args.db, args.home)
    figures = {
        "ledger_positions": total,
        "first_export": {
            "decisions": head,
            "seconds": round(head_s, 1),
            "cpu_s": round(head_cpu, 1),
        },
        "append": append,
        "empty_append": empty,
        "append_cpu_share_of_first": round(append["cpu_s"] / head_cpu, 4),
    }
    print(json.dumps(figures, indent=2))


def _append(out: Path, db: str, home: str) -> dict[str, Any]:
    """`export parquet --append` of `out` in a process of its own: its wall and CPU time and
    peak RSS (from wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [
            *(EXE, "export", "parquet", str(out), "--append", "--no-progress"),
            *("--db", db, "--home", home),
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the append failed")
    added = json.loads(stdout)["rows"]["decisions"]
    return {
        "decisions": added,
        "seconds": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "decisions_per_s": round(added / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }


if __name__ == "__main__":
    main()
