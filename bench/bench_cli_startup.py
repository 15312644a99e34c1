"""Benchmark: how long the command line takes to start, against a bare interpreter in the same run.

Times `python -c pass` (the interpreter's own floor), `unhardcoded --help` and
`unhardcoded rank --policy router/data/policies/regulated.json` (the bundled catalog: the runs
happen in an empty folder, so there is no ./unhardcoded.db to read a published catalog from),
each a fresh process, interleaved run by run so that a noisy moment of a shared machine hits every
case alike. Prints per case the median and the spread of the wall time, the ratio to
`python -c pass`, the median CPU time of the process (user + system: steadier than the wall time
when other jobs share the cores) and its peak RSS (ru_maxrss).

`--exe LABEL=PATH` adds another installation's `unhardcoded` script (e.g. a worktree of an older
commit with its own venv) to the same interleaved runs, for before/after comparisons.

Run from the repository root:
    .venv/bin/python bench/bench_cli_startup.py [--runs 21] [--exe before=/path/to/unhardcoded]
        [--json]
Target: `--help` and `rank` each ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "router" / "data" / "policies" / "regulated.json"
TARGET_MS = 300.0


@dataclass
class Case:
    """One command line, and what each run of it measured."""

    label: str
    argv: list[str]
    wall_ms: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def run_once(self, cwd: Path, env: dict[str, str]) -> None:
        start = time.perf_counter()
        child = subprocess.Popen(
            self.argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(child.pid, 0)
        self.wall_ms.append((time.perf_counter() - start) * 1000)
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read() if child.stderr else b""
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(self.argv)} failed: {stderr.decode(errors='replace')}")
        self.rss_kb.append(usage.ru_maxrss)  # KiB on Linux
        self.cpu_ms.append((usage.ru_utime + usage.ru_stime) * 1000)

    def summary(self, floor_ms: float) -> dict[str, float | str]:
        median = statistics.median(self.wall_ms)
        return {
            "case": self.label,
            "median_ms": round(median, 1),
            "min_ms": round(min(self.wall_ms), 1),
            "max_ms": round(max(self.wall_ms), 1),
            "ratio_to_python": round(median / floor_ms, 2),
            "cpu_median_ms": round(statistics.median(self.cpu_ms), 1),
            "peak_rss_mb": round(max(self.rss_kb) / 1024, 1),
        }


def cases(executables: dict[str, str]) -> list[Case]:
    """`python -c pass`, then `--help` and `rank` for each installation."""
    out = [Case("python -c pass", [sys.executable, "-c", "pass"])]
    for label, exe in executables.items():
        out.append(Case(f"{label}: unhardcoded --help", [exe, "--help"]))
        out.append(Case(f"{label}: unhardcoded rank", [exe, "rank", "--policy", str(POLICY)]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="Runs of each case (median).")
    parser.add_argument(
        "--exe",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="Another `unhardcoded` script to run in the same interleaved rounds.",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()

    executables = {"this": str(Path(sys.executable).with_name("unhardcoded"))}
    for item in args.exe:
        label, _, path = item.partition("=")
        if not path:
            parser.error(f"--exe {item!r}: expected LABEL=PATH")
        executables[label] = path
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    measured = cases(executables)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        cwd = Path(folder)
        for case in measured:  # one warm-up each: the OS page cache, .pyc files
            case.run_once(cwd, env)
            case.wall_ms.clear()
            case.rss_kb.clear()
            case.cpu_ms.clear()
        for _ in range(args.runs):
            for case in measured:
                case.run_once(cwd, env)

    floor = statistics.median(measured[0].wall_ms)
    rows = [case.summary(floor) for case in measured]
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"runs": args.runs, "load": load, "cases": rows}, indent=2))
        return
    print(f"{args.runs} interleaved runs per case; load average {load[0]:.1f} {load[1]:.1f}")
    print(f"{'case':<34} {'median':>9} {'min–max':>15} {'× python':>9} {'CPU':>9} {'peak RSS':>10}")
    for row in rows:
        spread = f"{row['min_ms']}–{row['max_ms']}"
        print(
            f"{row['case']:<34} {row['median_ms']:>7} ms {spread:>15} "
            f"{row['ratio_to_python']:>8}× {row['cpu_median_ms']:>6} ms {row['peak_rss_mb']:>7} MB"
        )
    print(f"target: --help and rank ≤ {TARGET_MS:.0f} ms each")


if __name__ == "__main__":
    main()
