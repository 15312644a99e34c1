"""Benchmark of the audit path at volume: wall time, decisions/s and peak RSS of each command.

Runs, each in a fresh `unhardcoded` process on a generated ledger (bench/gen_ledger.py; sequence
it first with `unhardcoded ledger checkpoint` so bundles need no sequencing of their own):

- `report compliance --tenant T` (HTML, then `--json`) for the largest tenant,
- `bundle create --tenant T` and `bundle verify` of that bundle (with the ledger's key),
- `export parquet` of everything,
- `replay --mode original` and `replay --against latest` (not recorded),

and prints per command the wall time, the decisions it covered per second and the peak resident
set of its process (ru_maxrss from wait4, so the figure is that command's own). Memory bounded
means the peak stays flat between a ledger of 200,000 and one of 1,000,000 decisions: run it on
both and compare (bench/RESULTS.md holds the figures).

Run from the repository root:

    python bench/gen_ledger.py --decisions 200000 --largest-share 0.3 \\
        --db sqlite+aiosqlite:////tmp/audit200k.db --home /tmp/audit-home
    unhardcoded ledger checkpoint --db sqlite+aiosqlite:////tmp/audit200k.db --home /tmp/audit-home
    python bench/bench_audit.py --db sqlite+aiosqlite:////tmp/audit200k.db --home /tmp/audit-home
    python bench/bench_audit.py ... --only report,bundle --json   # a subset, as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("unhardcoded"))
COMMANDS = ("report", "report-json", "bundle", "verify", "export", "original", "against")


def run(args: list[str]) -> dict[str, Any]:
    """Run `unhardcoded args…` in its own process: wall seconds, peak RSS (MB), stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen([EXE, *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"unhardcoded {' '.join(args)} failed ({child.returncode}):\n{stderr}")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def _largest_tenant(db: str, home: str) -> tuple[str, int, int]:
    """(largest tenant, its decisions, all decisions), from the decision listing projection."""
    script = (
        "import asyncio,sys\n"
        "from collections import Counter\n"
        "from ledger import open_ledger\n"
        "from router.services.decisions import DecisionService\n"
        "async def main():\n"
        "    async with open_ledger(sys.argv[1], home=sys.argv[2]) as led:\n"
        "        service = DecisionService(led)\n"
        "        counts = Counter(); after = None\n"
        "        while True:\n"
        "            page = await service.decisions(limit=10000, cursor=after)\n"
        "            counts.update(d.tenant for d in page.decisions)\n"
        "            if page.next_cursor is None: break\n"
        "            after = page.next_cursor\n"
        "        (name, n), = counts.most_common(1)\n"
        "        print(name, n, sum(counts.values()))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, db, home], capture_output=True, text=True, check=True
    )
    name, count, total = done.stdout.split()
    return name, int(count), int(total)


def measure(db: str, home: str, only: Sequence[str], work: Path) -> dict[str, Any]:
    """Run the selected commands; their figures by name."""
    common = ["--db", db, "--home", home]
    tenant, tenant_decisions, total = _largest_tenant(db, home)
    figures: dict[str, Any] = {
        "ledger_decisions": total,
        "tenant": tenant,
        "tenant_decisions": tenant_decisions,
    }
    bundle = work / "bundle.zip"
    key = run(["ledger", "checkpoint", "--public-key", *common])["stdout"].strip()
    plan: list[tuple[str, list[str], int]] = [
        (
            "report",
            ["report", "compliance", "--tenant", tenant, "--out", str(work / "r.html"), "--quiet"],
            tenant_decisions,
        ),
        (
            "report-json",
            [
                *("report", "compliance", "--tenant", tenant, "--json"),
                *("--out", str(work / "r.json"), "--quiet"),
            ],
            tenant_decisions,
        ),
        (
            "bundle",
            ["bundle", "create", "--tenant", tenant, str(bundle), "--quiet"],
            tenant_decisions,
        ),
        ("verify", ["bundle", "verify", str(bundle), "--key", key, "--json"], tenant_decisions),
        ("export", ["export", "parquet", str(work / "export"), "--quiet"], total),
        ("original", ["replay", "--mode", "original", "--no-record", "--json"], total),
        ("against", ["replay", "--against", "latest", "--no-record", "--json"], total),
    ]
    for name, args, decisions in plan:
        if name not in only:
            continue
        if name == "verify" and not bundle.exists():
            run(["bundle", "create", "--tenant", tenant, str(bundle), "--quiet", *common])
        result = run(args if name == "verify" else [*args, *common])
        figures[name] = {
            "decisions": decisions,
            "seconds": round(result["seconds"], 1),
            "decisions_per_s": round(decisions / result["seconds"]),
            "peak_rss_mb": round(result["peak_rss_mb"]),
        }
        if name == "verify":
            # CPU seconds beside wall time: on a loaded machine, wall time says more about the
            # other processes than about the verifier.
            cpu = result["cpu_seconds"]
            figures[name]["cpu_seconds"] = round(cpu, 1)
            figures[name]["decisions_per_cpu_s"] = round(decisions / cpu)
            figures[name]["ok"] = json.loads(result["stdout"])["ok"]
        if name == "export":
            shutil.rmtree(work / "export", ignore_errors=True)
        print(f"{name}: {figures[name]}", file=sys.stderr)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, metavar="URL", help="a generated ledger")
    parser.add_argument("--home", required=True, help="its signing key folder")
    parser.add_argument("--only", default=",".join(COMMANDS), help="comma-separated subset")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(COMMANDS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)} (choose from {', '.join(COMMANDS)})")
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        figures = measure(args.db, args.home, only, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{figures['ledger_decisions']:,} decisions; largest tenant {figures['tenant']} "
        f"({figures['tenant_decisions']:,})"
    )
    print(f"{'command':<12} {'decisions':>10} {'wall s':>8} {'decisions/s':>12} {'peak MB':>8}")
    for name in COMMANDS:
        if name in figures:
            f = figures[name]
            print(
                f"{name:<12} {f['decisions']:>10,} {f['seconds']:>8.1f} "
                f"{f['decisions_per_s']:>12,} {f['peak_rss_mb']:>8,}"
            )


if __name__ == "__main__":
    main()
