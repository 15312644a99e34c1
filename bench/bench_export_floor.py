"""The floor under `export parquet`: reading every `DecisionMade` event of a ledger and parsing
its payload column-wise, nothing else, the way the export does both (`Ledger.scan_batches` in
batches of 5,000 events, `reports._columnar.parse_decisions` with Arrow's JSON reader).

No export can go faster than this on the same machine and database: it prints decisions/s of
wall time and per CPU-second (the process's user + system time, all threads) next to each
other, since on a shared machine the wall time mostly measures the wait for a core.

    python bench/bench_export_floor.py --db sqlite+aiosqlite:////tmp/audit1m.db \\
        --home /tmp/audit-home [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from ledger import open_ledger
from reports._columnar import parse_decisions
from router.services.decisions import DECISION_MADE

BATCH = 5_000
"""Events per read: the export's batch."""


async def measure(db: str, home: str) -> dict[str, Any]:
    """Read and parse every decision of the ledger at `db`: counts, wall and CPU seconds."""
    async with open_ledger(db, home=home) as ledger:
        total = await ledger.last_position() + 1
        decisions = 0
        wall, cpu = time.perf_counter(), time.process_time()
        async for batch in ledger.scan_batches(0, stop=total, types=(DECISION_MADE,), batch=BATCH):
            table = await asyncio.to_thread(parse_decisions, batch.column("payload"))
            decisions += table.num_rows
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "ledger_positions": total,
        "decisions": decisions,
        "seconds": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "decisions_per_s": round(decisions / wall),
        "decisions_per_cpu_s": round(decisions / cpu),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="The ledger's URL.")
    parser.add_argument("--home", required=True, help="The ledger's home folder.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.db, args.home))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"read + parse {figures['decisions']:,} decisions: {figures['seconds']} s wall "
        f"({figures['decisions_per_s']:,}/s), {figures['cpu_s']} s CPU "
        f"({figures['decisions_per_cpu_s']:,} per CPU-second), load {figures['load_average']}"
    )


if __name__ == "__main__":
    main()
