"""`unhardcoded demo`: the whole product on embedded defaults, end to end, in one folder.

It composes the real pieces — the HTTP gateway (`unhardcoded.app`) served by uvicorn, the decision
record, replay, the Parquet export, the compliance report and the audit bundle — on a SQLite file,
the bundled catalog and the local echo provider, and prints what each step produced. The printed
summary is deterministic: a line that holds something that differs per run (the folder, a key, a
root hash) says so with `(differs per run)` or `(differs per machine)`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports import build_report, create_bundle, export_parquet, render_html, verify_bundle
from router.core import Catalog
from router.services.catalogs import bundled_catalog, bundled_policy_document
from router.services.decisions import DecisionService
from router.services.replay import ReplayReport, ReplayService
from unhardcoded._demo_traffic import (
    QUESTIONS,
    DemoError,
    Reply,
    Sender,
    create_keys,
    pick_client,
    serving,
    write_json,
)
from unhardcoded.db import migrated_ledger
from unhardcoded.settings import Settings

__all__ = [
    "AUDITED_TENANT",
    "PRICE_CHANGE",
    "TENANTS",
    "VARIES",
    "DemoError",
    "DemoResult",
    "run_demo",
]

#: The four tenants, each served under the example policy of the same name.
TENANTS: tuple[str, ...] = ("free-tier", "vip", "enterprise-eu", "regulated")
#: The tenant the compliance report and the audit bundle are about.
AUDITED_TENANT = "regulated"
#: The catalog change the demo publishes: the model whose prices go up, and by how much.
PRICE_CHANGE = ("gemini-3.5-flash", 4.0)
#: The 2nd, 12th, 22nd, … request of each tenant streams (server-sent events).
STREAM_EVERY = 10
#: Requests in flight at once (the order of the replies is kept, so the summary is too).
CONCURRENCY = 8
#: Marks a printed line whose content differs between runs (the tests mask such lines).
VARIES = "(differs per run)"
DB_FILE = "unhardcoded.db"
RELATIVE_DB_URL = f"sqlite+aiosqlite:///{DB_FILE}"


@dataclass
class DemoResult:
    """Where the demo put things, and what it proved."""

    folder: Path
    lines: list[str] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)
    bundle_ok: bool = False
    ledger_intact: bool = False
    mismatches: int | None = None


def _prepare_folder(folder: Path | None) -> Path:
    if folder is None:
        return Path(tempfile.mkdtemp(prefix="unhardcoded-demo-")).resolve()
    folder = folder.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DemoError(
            f"{folder} exists and is not an empty folder: the demo starts a fresh ledger "
            "(give a new or empty folder, or no --dir for a temporary one)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _changed_catalog() -> dict[str, Any]:
    document = bundled_catalog().to_json()
    model, factor = PRICE_CHANGE
    document["name"] = f"{document['name']} ({model} price x{factor:g})"
    for entry in document["entries"]:
        if entry["model"] == model:
            entry["price_in"] = round(entry["price_in"] * factor, 6)
            entry["price_out"] = round(entry["price_out"] * factor, 6)
    return document


class _Demo:
    def __init__(self, folder: Path, requests: int, client: str, echo: Callable[[str], None]):
        self.folder = folder
        self.requests = requests
        self.client = client
        self.result = DemoResult(folder)
        self._echo = echo
        self.url = f"sqlite+aiosqlite:///{folder / DB_FILE}"
        self.home = folder / "home"
        self.policies = {t: bundled_policy_document(t) for t in TENANTS}

    def say(self, line: str = "") -> None:
        self.result.lines.append(line)
        self._echo(line)

    def keep(self, name: str, path: Path) -> Path:
        self.result.artifacts[name] = path
        return path

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.folder))

    # -- steps --------------------------------------------------------------------------------

    def setup(self) -> dict[str, str]:
        for tenant, policy in self.policies.items():
            self.keep(
                f"policy {tenant}", write_json(self.folder / "policies" / f"{tenant}.json", policy)
            )
        self.keep(
            "catalog v1", write_json(self.folder / "catalog-v1.json", bundled_catalog().to_json())
        )
        keys = create_keys(self.url, TENANTS)
        for tenant, secret in keys.items():
            path = self.folder / "keys" / f"{tenant}.key"
            path.parent.mkdir(exist_ok=True)
            path.write_text(secret + "\n", encoding="utf-8")
            path.chmod(0o600)
            self.keep(f"key {tenant}", path)
        sample = {
            "model": "auto",
            "messages": [{"role": "user", "content": QUESTIONS[0]}],
            "policy": self.policies["vip"],
        }
        self.keep("sample request", write_json(self.folder / "requests" / "vip.json", sample))
        catalog = bundled_catalog()
        self.say(f"1. ledger    {DB_FILE} (SQLite, migrated; signing key in home/)")
        self.say(
            f"   catalog   bundled {catalog.name!r}, version {catalog.version[:12]} "
            f"({len(catalog.entries)} entries, catalog-v1.json)"
        )
        self.say(
            f"   tenants   {', '.join(TENANTS)}: one API key each (keys/), "
            "each under the example policy of its name (policies/)"
        )
        return keys

    def traffic(self, keys: dict[str, str]) -> None:
        settings = Settings(
            database_url=self.url,
            home=self.home,
            catalog=None,
            echo_all=True,
            store_request_bodies=False,
            checkpoint_interval_s=3600.0,  # the demo signs its checkpoints itself
        )
        with serving(settings) as root:
            sender = Sender(root, keys, self.client)
            try:

                def one(i: int) -> Reply:
                    tenant = TENANTS[i % len(TENANTS)]
                    stream = (i // len(TENANTS)) % STREAM_EVERY == 1
                    question = QUESTIONS[i % len(QUESTIONS)]
                    return sender.send(tenant, self.policies[tenant], question, stream)

                with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="demo-client") as pool:
                    replies = list(pool.map(one, range(self.requests)))
                bad = {**self.policies["free-tier"]}
                bad["rules"] = [
                    {"id": "tier.free.floor", "when": ["cmp", "bench_intelligence", "ge", "high"]}
                ]
                status, error = sender.refused("free-tier", bad)
                first_vip = next(r for r in replies if r.tenant == "vip")
                decision = sender.read("vip", f"/x/decisions/{first_vip.decision_id}")
            finally:
                sender.close()
        self.say(
            "2. serve     the gateway on a free loopback port; every attempt goes to the local "
            "echo provider (not a real model, no keys needed)"
        )
        self.say(f"   client    {self.client} (differs per machine: openai when installed)")
        streamed = sum(r.streamed for r in replies)
        self.say(
            f"   sent      {len(replies)} chat completions ({streamed} streamed) through "
            "POST /v1/chat/completions, each with its tenant's policy"
        )
        self.say(f"   {'tenant':<15} {'requests':>8} {'streamed':>8}  routed to")
        for tenant in TENANTS:
            mine = [r for r in replies if r.tenant == tenant]
            routed = Counter(r.routed for r in mine)
            where = ", ".join(f"{entry} ({n})" for entry, n in sorted(routed.items()))
            self.say(f"   {tenant:<15} {len(mine):>8} {sum(r.streamed for r in mine):>8}  {where}")
        upstreams = Counter(r.upstream for r in replies)
        self.say(
            "   answered  by "
            + ", ".join(f"{name} ({n})" for name, n in sorted(upstreams.items()))
            + "; every reply echoes its question"
        )
        self.say(
            f"   refused   a malformed policy, before recording anything: HTTP {status} "
            f"{error.get('code')}: {error.get('message')}"
        )
        self._explain(decision)

    def _explain(self, decision: dict[str, Any]) -> None:
        try:
            selected = decision["selected"]["id"]
            removed = len(decision["removed"])
            attempts = [a["status"] for a in decision["attempts"]]
        except (KeyError, TypeError) as exc:
            raise DemoError(f"GET /x/decisions/{{id}} answered without {exc}") from None
        self.say(
            f"   read back a vip decision (GET /x/decisions/{{id}}): selected {selected}, "
            f"{removed} entries removed by the policy's rules, attempts: {', '.join(attempts)}"
        )

    async def after(self) -> None:
        changed = _changed_catalog()
        self.keep("catalog v2", write_json(self.folder / "catalog-v2.json", changed))
        async with migrated_ledger(self.url, home=self.home) as ledger:
            service = DecisionService(ledger)
            await ledger.sequence()
            published = await service.publish_catalog(Catalog.from_json(changed))
            model, factor = PRICE_CHANGE
            self.say(
                f"3. catalog   published version {published.version[:12]}: {model} prices "
                f"x{factor:g} (catalog-v2.json); it is now the latest"
            )
            replayer = ReplayService(service)
            original = await replayer.original()
            self.result.mismatches = original.mismatches
            self._say_original(original)
            latest = await service.catalog("latest")
            self._say_against(await replayer.against(latest))

            exports = self.keep("exports", self.folder / "exports")
            summary = await export_parquet(ledger, exports)
            rows = ", ".join(f"{name} {n}" for name, n in summary.rows.items())
            self.say(f"5. export    exports/ (Parquet, hive-partitioned): {rows} rows")

            report = build_report(exports, tenant=AUDITED_TENANT)
            html = self.keep("report", self.folder / "reports" / f"{AUDITED_TENANT}.html")
            html.parent.mkdir(exist_ok=True)
            html.write_text(render_html(report), encoding="utf-8")
            count = report.to_json()["figures"]["summary"][0]["value"]
            self.say(
                f"6. report    {self.rel(html)}: compliance report of tenant {AUDITED_TENANT} "
                f"({count} decisions; every figure links to its decision ids)"
            )

            zip_path = self.keep("bundle", self.folder / "bundles" / f"{AUDITED_TENANT}.zip")
            zip_path.parent.mkdir(exist_ok=True)
            bundle = await create_bundle(ledger, zip_path, tenant=AUDITED_TENANT)
            public_key = ledger.public_key()
            pub = self.keep("verifier key", self.folder / "ledger.pub")
            pub.write_text(public_key + "\n", encoding="utf-8")

            verified = await ledger.verify()
            self.result.ledger_intact = verified.problem is None
        check = verify_bundle(zip_path, key=public_key)
        self.result.bundle_ok = check.ok
        self.say(
            f"7. bundle    {self.rel(zip_path)}: {bundle.decisions} decisions, {bundle.events} "
            f"events, {bundle.files} files"
        )
        if not check.ok:
            raise DemoError("the audit bundle does not verify: " + "; ".join(check.problems))
        self.say(
            f"   verified  offline with the ledger's public key (ledger.pub): every event's "
            f"inclusion proof against the signed checkpoint at tree size {check.tree_size}"
        )
        if verified.problem is not None:
            raise DemoError(f"the ledger does not verify: {verified.problem}")
        self.say(
            f"8. ledger    verified intact: {verified.events} events, {verified.checkpoints} "
            "signed checkpoints, hash chain and Merkle tree recomputed"
        )
        root = verified.root_hash.hex() if verified.root_hash else "(empty)"
        self.say(f"   root hash {root} {VARIES}")
        self.say(f"   key       {public_key} {VARIES}")

    def _say_original(self, report: ReplayReport) -> None:
        if report.mismatches:
            raise DemoError(
                f"replay --mode original found {report.mismatches} mismatches: "
                f"{dict(report.mismatch_fields)}"
            )
        self.say(
            f"4. replay    --mode original: {report.decisions} decisions re-evaluated with the "
            f"policy and catalog version each recorded ({report.evaluations} evaluations): "
            "0 mismatches, every decision proven"
        )

    def _say_against(self, report: ReplayReport) -> None:
        doc = report.to_json()
        self.say(
            f"   replay    --against latest: {doc['changed']} of {doc['decisions']} decisions "
            "would go elsewhere under the new prices"
        )
        examples: dict[str, str] = {}
        for example in doc["examples"]:
            if "error" not in example:
                moved = f"{example['previous']} -> {example['selected']}"
                examples.setdefault(example["tenant"], moved)
        for tenant in TENANTS:
            agg = doc["by_tenant"].get(tenant)
            if agg is None:
                continue
            self.say(
                f"     {tenant:<15} {agg['changed']:>4}/{agg['decisions']:<4} change, cost "
                f"${agg['cost_before_usd']:.6f} -> ${agg['cost_after_usd']:.6f}"
                + (f" ({examples[tenant]})" if tenant in examples else "")
            )

    def next_steps(self) -> None:
        db = f"--db {RELATIVE_DB_URL}"
        zip_name = f"bundles/{AUDITED_TENANT}.zip"
        self.say()
        self.say("Everything is in one folder; run these from it:")
        self.say(f"  cd {self.folder}   {VARIES}")
        steps = [
            (
                "check the bundle as an auditor would (offline)",
                f'unhardcoded bundle verify {zip_name} --key "$(cat ledger.pub)"',
            ),
            ("recompute the whole ledger", f"unhardcoded ledger verify {db} --home home"),
            ("prove every decision again", f"unhardcoded replay --mode original {db} --home home"),
            (
                "what the price change does to one tenant",
                f"unhardcoded replay --against latest --tenant free-tier {db} --home home",
            ),
            (
                "the two catalog versions side by side",
                "unhardcoded catalog diff catalog-v1.json catalog-v2.json",
            ),
            (
                "why a policy picks what it picks (no server, nothing recorded)",
                "unhardcoded rank --policy policies/enterprise-eu.json --catalog catalog-v2.json",
            ),
            (
                "another tenant's compliance report",
                "unhardcoded report compliance --tenant vip --out reports/vip.html --quiet "
                f"{db} --home home",
            ),
        ]
        for why, command in steps:
            self.say(f"  # {why}")
            self.say(f"  {command}")
        self.say(
            f"  # open {self.rel(self.result.artifacts['report'])} in a browser; "
            "read exports/ with DuckDB, pandas or Spark"
        )
        self.say("  # serve it yourself, then send the sample request:")
        self.say(f"  UNHARDCODED_HOME=home unhardcoded serve --echo {db} --port 8000 &")
        self.say("  until curl -s localhost:8000/healthz > /dev/null; do sleep 0.5; done")
        self.say(
            '  curl -s localhost:8000/v1/chat/completions -H "authorization: Bearer '
            '$(cat keys/vip.key)" -H "content-type: application/json" -d @requests/vip.json'
        )


def run_demo(
    folder: Path | None = None,
    requests: int = 200,
    *,
    client: str = "auto",
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo in `folder` (new or empty; default: a new temporary folder) with `requests`
    chat completions over HTTP; `client` is `auto`, `openai` or `httpx`. Prints through `echo`."""
    if requests < len(TENANTS):
        raise DemoError(f"--requests {requests}: at least {len(TENANTS)} (one per tenant)")
    target = _prepare_folder(folder)
    demo = _Demo(target, requests, pick_client(client), echo)
    demo.say("unhardcoded demo: four tenants, one gateway, one tamper-evident ledger")
    demo.say(f"folder      {target} {VARIES}")
    keys = demo.setup()
    demo.traffic(keys)
    asyncio.run(demo.after())
    demo.next_steps()
    return demo.result
