"""Import speed of LiteLLM's real price map, and decision time of the example policies on it.

By default it reads the price map of litellm 1.110.2 shipped (gzip) in tests/catalogs/data/real
(about 3.5 MB, 4,878 keys); another release's file comes from its wheel, without installing it:

    pip download --no-deps -d /tmp/litellm litellm==VERSION
    cd /tmp/litellm && unzip -o litellm-*.whl litellm/model_prices_and_context_window_backup.json

Run from the repository root:

    python bench/bench_catalog_import.py [--file PATH] [--overlay OVERLAY]

(default overlay: router/data/overlays/public-facts.yaml)

Reports, from the same run (the machine is shared and noisy, so ratios matter more than absolutes):
- baseline: `json.loads` of the file's bytes (median of --repeat runs);
- import: read + strict parse + map + overlay + validate into a `Catalog` (median), as entries/s
  and as a ratio to the baseline;
- per example policy: the median time of one decision (`decide`, column index already built) on
  the imported catalog, against the policy-core target of 500 µs, with the entry count; and one
  cost-ranked decision for a 300,000-token request (price tiers apply) with 100,000 cached tokens.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.core import Catalog, Policy, RequestFeatures, decide  # noqa: E402
from router.services.catalogs import (  # noqa: E402
    BUNDLED_POLICIES,
    bundled_policy_document,
    import_litellm_file,
    parse_json_text,
)

DEFAULT_FILE = ROOT / "tests/catalogs/data/real/litellm-1.110.2.json.gz"
TARGET_US = 500.0


def median_seconds(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument(
        "--overlay", type=Path, default=ROOT / "router/data/overlays/public-facts.yaml"
    )
    parser.add_argument("--repeat", type=int, default=7, help="runs per import measurement")
    parser.add_argument("--decisions", type=int, default=300, help="decisions per policy")
    parser.add_argument("--as-of", default="2026-12-07", help="deprecation cut-off")
    args = parser.parse_args()
    if not args.file.is_file():
        print(f"{args.file} not found; see this script's docstring to fetch it", file=sys.stderr)
        return 2
    if args.file.suffix == ".gz":  # measure the import of the plain file, as a user has it
        plain = Path(tempfile.mkdtemp()) / args.file.name.removesuffix(".gz")
        plain.write_bytes(gzip.decompress(args.file.read_bytes()))
        args.file = plain
    as_of = dt.date.fromisoformat(args.as_of)
    data = args.file.read_bytes()

    baseline = median_seconds(lambda: json.loads(data), args.repeat)

    def run_import() -> object:
        return import_litellm_file(args.file, as_of=as_of, overlays=[args.overlay])

    imported = median_seconds(run_import, args.repeat)
    result = import_litellm_file(args.file, as_of=as_of, overlays=[args.overlay])
    catalog = result.catalog
    keys = len(json.loads(data))
    n = len(catalog.entries)
    print(f"file: {args.file.name} ({len(data) / 1e6:.1f} MB, {keys} keys) → {n} entries")
    print(f"catalog version {catalog.version[:16]}…, {len(result.summary.warnings)} warnings")
    print(f"baseline json.loads      : {baseline * 1e3:8.1f} ms")
    print(
        f"import (+overlay, valid.) : {imported * 1e3:8.1f} ms  "
        f"= {imported / baseline:.1f}× baseline, {n / imported:,.0f} entries/s, "
        f"{keys / imported:,.0f} source keys/s"
    )
    text = data.decode("utf-8")
    strict = median_seconds(lambda: parse_json_text(text, args.file.name), args.repeat)
    document = catalog.to_json()
    model = median_seconds(lambda: Catalog.from_json(document), args.repeat)
    print(f"  of which strict JSON parse (no NaN, no duplicate keys): {strict * 1e3:8.1f} ms")
    print(f"  of which Catalog.from_json (validate + version)       : {model * 1e3:8.1f} ms")
    print(f"decision time per example policy on {n} entries (target {TARGET_US:.0f} µs):")
    for name in BUNDLED_POLICIES:
        policy = Policy.from_json(bundled_policy_document(name), catalog.schema)
        trace = decide(policy, catalog)  # builds the column index once, as a server would
        per = median_seconds(lambda p=policy: decide(p, catalog), args.decisions)
        chosen = "none" if trace.selected is None else catalog.entries[trace.selected].id
        print(
            f"  {name:14s}: {per * 1e6:7.1f} µs = {per * 1e6 / TARGET_US:.2f}× target; "
            f"{len(trace.ranked)} pass, selected {chosen}"
        )
    cheapest = Policy.from_json({"v": "sigma-pol/v1", "rules": []}, catalog.schema)
    long_prompt = RequestFeatures(300_000, 2_000, tokens_cached=100_000)
    trace = decide(cheapest, catalog, long_prompt)
    per = median_seconds(lambda: decide(cheapest, catalog, long_prompt), args.decisions)
    print(
        f"  {'300k tokens':14s}: {per * 1e6:7.1f} µs = {per * 1e6 / TARGET_US:.2f}× target; "
        f"cost-ranked over {len(trace.ranked)} entries, tiers and cached input applied"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
