"""A process that appends under load and prints each acknowledged event id (flushed) on stdout.

Used by the crash test (SIGKILLed at random moments) and the multi-process test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger import NewEvent, open_ledger


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--search-path", default="")
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--events", type=int, default=0, help="per producer; 0 = until killed")
    parser.add_argument("--tag", default="p")
    args = parser.parse_args()
    out = sys.stdout

    async with open_ledger(args.url, home=args.home, search_path=args.search_path or None) as led:
        print("ready", flush=True)

        async def produce(n: int) -> None:
            i = 0
            while args.events == 0 or i < args.events:
                payload = {"producer": n, "i": i, "tag": args.tag, "pad": "x" * 300}
                (env,) = await led.append(NewEvent("Load", f"{args.tag}-{n}", payload))
                out.write(f"{env.event_id}\n")
                out.flush()
                i += 1

        await asyncio.gather(*(produce(n) for n in range(args.producers)))


asyncio.run(main())
