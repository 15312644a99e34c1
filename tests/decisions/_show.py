"""Run as a separate process: print a recorded decision's JSON trace, read from the ledger alone.

python tests/decisions/_show.py URL HOME SEARCH_PATH DECISION_ID
"""

from __future__ import annotations

import asyncio
import json
import sys

from router.services.decisions import DecisionService
from unhardcoded.db import migrated_ledger


async def main(url: str, home: str, search_path: str, decision_id: str) -> None:
    async with migrated_ledger(url, home=home, search_path=search_path or None) as led:
        decision = await DecisionService(led).decision(decision_id)
        print(json.dumps(decision.to_json(), sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
