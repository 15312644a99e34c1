"""Exports: what DuckDB, pyarrow and pandas read back equals what the ledger recorded."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from reports import DATASETS, ReportsError, export_parquet, read_dataset
from tests.reports.support import TENANTS, populate, populate_sqlite
from tests.support.service_backends import Backend
from unhardcoded.cli import main


def _glob(out: Path, name: str) -> str:
    return f"read_parquet('{out / name}/**/*.parquet', hive_partitioning = true)"


async def test_duckdb_reads_what_the_ledger_recorded(backend: Backend, tmp_path: Path) -> None:
    out = tmp_path / "export"
    async with backend.service() as service:
        done = await populate(service)
        summary = await export_parquet(service.ledger, out)
    assert summary.rows["decisions"] == len(done.decisions)
    assert summary.rows["attempts"] == done.attempts
    db = duckdb.connect()
    rows = db.execute(
        f"SELECT decision_id, tenant, selected_id, plan, passing FROM {_glob(out, 'decisions')}"
    ).fetchall()
    expected = {
        str(d.decision_id): (d.tenant, d.selected, list(d.plan), len(d.trace.ranked))
        for d in done.decisions
    }
    assert {r[0]: (r[1], r[2], r[3], r[4]) for r in rows} == expected

    eliminated = db.execute(
        f"""WITH e AS (
                SELECT outcome_digest, policy_digest, catalog_version, rule, needs,
                       unnest(entry_index) AS entry_index, unnest(observed) AS observed
                FROM {_glob(out, "eliminations")}
            )
            SELECT d.decision_id, e.rule, c.entry_id, e.needs, e.observed
            FROM {_glob(out, "decisions")} d JOIN e
              ON e.outcome_digest = d.outcome_digest AND e.policy_digest = d.policy_digest
            JOIN {_glob(out, "catalogs")} c
              ON c.catalog_version = e.catalog_version AND c.entry_index = e.entry_index"""
    ).fetchall()
    want = {
        (
            str(d.decision_id),
            rule,
            d.trace.catalog.entries[i].id,
            d.trace.failure(i, rule).needs,
            d.trace.failure(i, rule).seen(),
        )
        for d in done.decisions
        for rule in d.trace.rule_ids
        for i in d.trace.failed_entries(rule)
    }
    assert set(eliminated) == want
    assert len(eliminated) == len(want)

    ranked = db.execute(
        f"""SELECT d.decision_id, r.entry_index, r.key_values, r.rank_keys
            FROM {_glob(out, "decisions")} d JOIN {_glob(out, "rankings")} r
              ON r.outcome_digest = d.outcome_digest AND r.order_digest = d.order_digest
             AND r.policy_digest = d.policy_digest
             AND r.tokens_in IS NOT DISTINCT FROM d.tokens_in
             AND r.tokens_out IS NOT DISTINCT FROM d.tokens_out"""
    ).fetchall()
    want_ranked = {
        str(d.decision_id): (
            list(d.trace.ranked),
            [list(d.trace.sort_keys(i)) for i in d.trace.ranked],
            [f"{k.attr} {k.direction}" for k in d.trace.policy.rank],
        )
        for d in done.decisions
    }
    assert {r[0]: (r[1], r[2], r[3]) for r in ranked} == want_ranked

    # Each distinct outcome is written once (per policy), not once per decision or tenant.
    distinct = {
        (d.trace.policy.digest, d.trace.catalog.version, d.trace.rule_ids, d.trace.failures): d
        for d in done.decisions
    }
    written = db.execute(
        f"SELECT count(*), sum(removed), sum(len(entry_index)) FROM {_glob(out, 'eliminations')}"
    ).fetchone()
    removed = sum(
        len(d.trace.failed_entries(r)) for d in distinct.values() for r in d.trace.rule_ids
    )
    assert written is not None
    assert written[1] == written[2] == removed
    assert written[0] == sum(
        1 for d in distinct.values() for r in d.trace.rule_ids if d.trace.failed_entries(r)
    )
    assert len(distinct) < len(done.decisions)

    attempts = db.execute(
        f"SELECT a.decision_id, a.attempt, a.entry_id, a.tenant, d.tenant FROM "
        f"{_glob(out, 'attempts')} a JOIN {_glob(out, 'decisions')} d USING (decision_id)"
    ).fetchall()
    assert len(attempts) == done.attempts
    assert all(a[3] == a[4] for a in attempts)
    by_id = {str(d.decision_id): d for d in done.decisions}
    assert all(a[2] in by_id[a[0]].plan for a in attempts)

    types = {
        row[0]: row[1]
        for row in db.execute(f"DESCRIBE SELECT * FROM {_glob(out, 'decisions')}").fetchall()
    }
    assert types["recorded_at"] == "TIMESTAMP WITH TIME ZONE"
    catalogs = db.execute(f"SELECT count(*) FROM {_glob(out, 'catalogs')}").fetchone()
    assert catalogs == (len(done.decisions[0].trace.catalog.entries),)
    policies = db.execute(
        f"SELECT fingerprint, ir_version, normalized_rules FROM {_glob(out, 'policies')}"
    ).fetchall()
    assert len(policies) == 4
    fingerprints = {d.trace.policy.fingerprint for d in done.decisions}
    assert {f"{fp} ({ir})" for fp, ir, _ in policies} == fingerprints
    for _, _, rules in policies:
        assert rules[0] == {
            "id": "catalog.status",
            "implicit": True,
            "needs": 'status = "active"',
            "when": '["eq","status","active"]',
        }
    stated = db.execute(
        f"SELECT DISTINCT policy_fingerprint, policy_ir_version FROM {_glob(out, 'decisions')}"
    ).fetchall()
    assert {f"{fp} ({ir})" for fp, ir in stated} == fingerprints


async def test_partitions_and_readers(backend: Backend, tmp_path: Path) -> None:
    out = tmp_path / "export"
    async with backend.service() as service:
        done = await populate(service, rounds=1)
        await export_parquet(service.ledger, out)
    day = done.decisions[0].recorded_at.strftime("%Y-%m-%d")
    for tenant in TENANTS:
        assert (out / "decisions" / f"date={day}" / f"tenant={tenant}").is_dir()
        assert (out / "attempts" / f"date={day}" / f"tenant={tenant}").is_dir()
    table = ds.dataset(out / "decisions", partitioning="hive").to_table()
    assert table.num_rows == len(done.decisions)
    assert str(table.schema.field("selected_id").type).startswith("dictionary")
    frame = pd.read_parquet(out / "decisions")
    assert sorted(frame["decision_id"]) == sorted(str(d.decision_id) for d in done.decisions)
    assert str(frame["recorded_at"].dtype) == "datetime64[us, UTC]"


async def test_tenant_and_period_filters(backend: Backend, tmp_path: Path) -> None:
    async with backend.service() as service:
        done = await populate(service, rounds=2)
        times = sorted(d.recorded_at for d in done.decisions)
        since, until = times[5], times[-5]
        await export_parquet(
            service.ledger, tmp_path / "x", tenant="globex", since=since, until=until
        )
        with pytest.raises(ReportsError, match="new or empty"):
            await export_parquet(service.ledger, tmp_path / "x")
    frame = pd.read_parquet(tmp_path / "x" / "decisions")
    want = sorted(
        str(d.decision_id)
        for d in done.decisions
        if d.tenant == "globex" and since <= d.recorded_at < until
    )
    assert want
    assert sorted(frame["decision_id"]) == want
    attempts = pd.read_parquet(tmp_path / "x" / "attempts")
    assert set(attempts["decision_id"]) <= set(want)
    assert set(attempts["tenant"]) == {"globex"}


def test_cli_export(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    done = populate_sqlite(url, home)
    runner = CliRunner()
    args = ["--db", url, "--home", str(home)]
    result = runner.invoke(
        main, ["export", "parquet", str(tmp_path / "o"), "--tenant", "acme", *args]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"]["decisions"] == sum(d.tenant == "acme" for d in done.decisions)
    bad = runner.invoke(main, ["export", "parquet", str(tmp_path / "o"), *args])
    assert bad.exit_code == 2
    assert "must be new or empty" in bad.stderr
    when = runner.invoke(
        main, ["export", "parquet", str(tmp_path / "p"), "--since", "yesterday", *args]
    )
    assert when.exit_code == 2
    assert "not an ISO 8601 date" in when.stderr


async def test_columnar_and_per_event_paths_write_the_same_rows(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=2)
        await export_parquet(service.ledger, tmp_path / "fast", tenant="acme", chunk=7)
        await export_parquet(
            service.ledger, tmp_path / "slow", tenant="acme", chunk=5, sink=lambda _: None
        )
    for name in DATASETS:
        fast = read_dataset(tmp_path / "fast", name).to_pylist()
        slow = read_dataset(tmp_path / "slow", name).to_pylist()
        assert fast, name
        assert sorted(map(repr, fast)) == sorted(map(repr, slow)), name


async def test_attempts_of_decisions_out_of_the_window_are_looked_up(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        done = await populate(service, rounds=1)
        await export_parquet(service.ledger, tmp_path / "w", tenant="acme", chunk=4, window=1)
        await export_parquet(
            service.ledger, tmp_path / "s", tenant="acme", chunk=4, window=1, sink=lambda _: None
        )
    for folder in ("w", "s"):
        attempts = read_dataset(tmp_path / folder, "attempts").to_pylist()
        acme = {str(d.decision_id) for d in done.decisions if d.tenant == "acme"}
        assert {a["decision_id"] for a in attempts} == acme
        assert {a["tenant"] for a in attempts} == {"acme"}


async def test_both_paths_price_tiers_and_cached_tokens_like_the_decision(
    backend: Backend, tmp_path: Path
) -> None:
    from router.core import Catalog, Policy, RequestFeatures, cost_of
    from tests.replay.test_before_price_tiers import TIERED

    tiered = Catalog.from_json(TIERED)
    policy = Policy.from_json({"v": "sigma-pol/v1", "rules": []}, tiered.schema)
    requests = [
        RequestFeatures(100_000, 1_000),
        RequestFeatures(300_000, 1_000),
        RequestFeatures(300_000, 1_000, tokens_cached=250_000),
    ]
    async with backend.service() as service:
        made = [await service.decide("acme", policy, tiered, features=f) for f in requests]
        await export_parquet(service.ledger, tmp_path / "fast", chunk=7)
        await export_parquet(service.ledger, tmp_path / "slow", chunk=5, sink=lambda _: None)
    expected = {
        str(d.decision_id): cost_of(tiered.entries[d.trace.selected or 0], d.trace.tokens)  # type: ignore[arg-type]
        for d in made
    }
    for path in ("fast", "slow"):
        rows = read_dataset(tmp_path / path, "decisions").to_pylist()
        assert {r["decision_id"]: r["selected_cost_usd"] for r in rows} == pytest.approx(
            expected
        ), path


def test_the_columnar_reader_reads_what_the_decoder_reads() -> None:
    from ledger import canonical_json, uuid7
    from reports._columnar import parse_decisions
    from router.core import Catalog, Policy, RequestFeatures, decide
    from router.services.decisions import decode_decision, encode_outcome, outcome_digest
    from router.services.decisions._events import decision_event
    from tests.replay.test_before_price_tiers import TIERED

    tiered = Catalog.from_json(TIERED)
    payloads = []
    for rules, features in [
        ([], RequestFeatures(300_000, 1_000, tokens_cached=250_000)),
        ([{"id": "none", "when": ["eq", "region", "mars"]}], None),
        ([], RequestFeatures(10, 5)),
    ]:
        document = {"v": "sigma-pol/v1", "rules": rules, "tokens": {"in": 7, "out": 3}}
        if features is not None:
            del document["tokens"]
        trace = decide(Policy.from_json(document, tiered.schema), tiered, features)
        event = decision_event(
            decision_id=uuid7(),
            tenant="acme",
            preview=features is None,
            trace=trace,
            outcome=outcome_digest(encode_outcome(trace)),
            features=features,
            digest=None,
            body=None,
        )
        payloads.append(canonical_json(event.payload))
    for row, raw in zip(parse_decisions(payloads).to_pylist(), payloads, strict=True):
        d = decode_decision(raw)
        tokens = None if d.tokens is None else (d.tokens.tokens_in, d.tokens.tokens_out)
        selected = None if d.selected is None else {"index": d.selected[0], "id": d.selected[1]}
        assert row == {
            "decision_id": d.decision_id,
            "tenant": d.tenant,
            "preview": d.preview,
            "request_digest": d.request_digest,
            "policy": {"fingerprint": d.fingerprint, "digest": d.policy_digest},
            "catalog_version": d.catalog_version,
            "evaluator_version": d.evaluator_version,
            "tokens": None
            if tokens is None
            else {"in": tokens[0], "out": tokens[1], "cached": d.tokens.tokens_cached or None},  # type: ignore[union-attr]
            "filter": {"outcome": d.outcome, "passing": d.passing},
            "rank": {"order_sha256": d.order_sha256},
            "selected": selected,
            "plan": list(d.plan),
        }


def _same_rows(left: Path, right: Path, name: str) -> bool:
    db = duckdb.connect()
    db.register("l", read_dataset(left, name))
    db.register("r", read_dataset(right, name))
    one = db.execute("SELECT count(*) FROM (FROM l EXCEPT ALL FROM r)").fetchone()
    other = db.execute("SELECT count(*) FROM (FROM r EXCEPT ALL FROM l)").fetchone()
    return one == other == (0,)


async def test_append_adds_only_what_is_new(backend: Backend, tmp_path: Path) -> None:
    lake, whole = tmp_path / "lake", tmp_path / "whole"
    async with backend.service() as service:
        first = await populate(service, rounds=1)
        before = await export_parquet(service.ledger, lake, tenant="acme")
        await service.ledger.sequence()
        second = await populate(service, rounds=2)
        added = await export_parquet(service.ledger, lake, append=True)
        again = await export_parquet(service.ledger, lake, append=True)
        with pytest.raises(ReportsError, match="--tenant: 'globex' is not the folder's 'acme'"):
            await export_parquet(service.ledger, lake, tenant="globex", append=True)
        await export_parquet(service.ledger, whole, tenant="acme")
        total = await service.ledger.count()
        checkpoint = await service.ledger.latest_checkpoint()
    acme = [d for d in first.decisions + second.decisions if d.tenant == "acme"]
    assert before.decisions + added.decisions == len(acme)
    assert added.decisions == sum(1 for d in second.decisions if d.tenant == "acme")
    assert again.decisions == 0
    for name in DATASETS:
        assert _same_rows(lake, whole, name), name
    # Shared rows are not written twice: the second export holds only groups it met first.
    assert added.rows["catalogs"] == added.rows["policies"] == 0

    manifest = json.loads((lake / "manifest.json").read_text())
    assert manifest["tenant"] == "acme"
    ranges = [(e["from_position"], e["to_position"]) for e in manifest["exports"]]
    assert ranges[0][0] == 0
    assert ranges[0][1] == ranges[1][0]
    assert ranges[1][1] == ranges[2][0] == ranges[2][1] == total
    assert manifest["exports"][0]["checkpoint"] is None  # nothing was sequenced yet
    signed = manifest["exports"][1]["checkpoint"]
    assert checkpoint is not None
    assert signed["tree_size"] == checkpoint.tree_size == ranges[0][1]
    assert signed["root_sha256"] == checkpoint.root_hash.hex()
    assert signed["covers_range"] is False  # decisions were recorded after that checkpoint


def test_append_to_a_folder_without_manifest_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "not-an-export"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    populate_sqlite(url, tmp_path / "home")
    result = CliRunner().invoke(
        main,
        ["export", "parquet", str(out), "--append", "--db", url, "--home", str(tmp_path / "home")],
    )
    assert result.exit_code == 2, result.output
    assert "no manifest.json (--append adds to a folder written by export parquet)" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_an_empty_selection_says_which(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    home = ["--db", url, "--home", str(tmp_path / "home"), "--no-progress"]
    populate_sqlite(url, tmp_path / "home")
    runner = CliRunner()

    def run(*args: str) -> tuple[str, str]:
        result = runner.invoke(main, [*args, *home])
        assert result.exit_code == 0, result.output
        return result.stdout, result.stderr

    out, err = run("export", "parquet", str(tmp_path / "a"), "--tenant", "nobody")
    assert "note: tenant 'nobody' has no decisions in the ledger: the export is empty" in err
    assert json.loads(out)["rows"]["decisions"] == 0
    _, err = run(
        "export", "parquet", str(tmp_path / "b"), "--tenant", "acme", "--since", "2099-01-01"
    )
    assert "note: none of the 4 decisions of tenant 'acme' was recorded in the period [2099-" in err
    _, err = run("export", "parquet", str(tmp_path / "c"), "--until", "2000-01-01")
    assert "note: no decisions were recorded in the period […, 2000-01-01T00:00:00Z)" in err
    out, err = run("report", "compliance", "--tenant", "nobody", "--out", str(tmp_path / "r.html"))
    assert "note: tenant 'nobody' has no decisions in the ledger: the report is empty" in err
    assert "0 decisions of tenant nobody" in out
    _, err = run("export", "parquet", str(tmp_path / "d"), "--tenant", "acme")
    assert "note:" not in err


def test_the_columnar_cost_is_cost_of_exactly() -> None:
    import pyarrow as pa

    from reports._columnar import CatalogColumns, _costs
    from reports._rows import CatalogInfo
    from router.core import Catalog, Tokens, cost_of
    from router.services.catalogs import bundled_catalog
    from tests.replay.test_before_price_tiers import TIERED

    columns = CatalogColumns()
    for catalog in (bundled_catalog(), Catalog.from_json(TIERED)):
        columns.add(CatalogInfo.of(catalog, 0))
    counts = [(1, 1, 0), (1_200, 400, 0), (100_000, 1_000, 7), (300_000, 1_000, 250_000)]
    counts += [(987_654, 3_210, 1_000_000), (12_345, 0, 12_345)]
    rows = [(i, *c) for i in range(len(columns.entries)) for c in counts]
    rows += [(None, 5, 5, 0), (0, None, None, None)]
    where, t_in, t_out, cached = (pa.array(list(c), pa.int64()) for c in zip(*rows, strict=True))
    got = _costs(columns, where, t_in, t_out, cached).to_pylist()
    expected = [
        None
        if i is None or a is None or b is None
        else cost_of(columns.entries[i], Tokens(a, b, c or 0))
        for i, a, b, c in rows
    ]
    assert got == expected  # exactly: the same float operations in the same order
    assert any(value is None for value in expected[:-2])  # entries without a price included


def test_group_keys_tell_the_groups_apart() -> None:
    import pyarrow as pa

    from reports._columnar import group_key, group_keys

    groups = [("o1", "r1", "p1", 10, 5), ("o1", "r1", "p1", 10, None), ("o1", None, "p1", 1, 5)]
    groups += [("o1", "r1", "p1", 105, None), ("o1", "r1", "p11", 0, 5)]
    table = pa.table(
        {
            "filter": pa.array([{"outcome": g[0]} for g in groups]),
            "rank": pa.array([{"order_sha256": g[1]} for g in groups]),
            "policy": pa.array([{"digest": g[2]} for g in groups]),
            "tokens": pa.array(
                [{"in": g[3], "out": g[4]} for g in groups],
                pa.struct([("in", pa.int64()), ("out", pa.int64())]),
            ),
        }
    )
    keys = group_keys(table).to_pylist()
    assert keys == [group_key(g) for g in groups]
    assert len(set(keys)) == len(groups)


async def test_a_tenants_export_reads_only_its_decisions_whatever_its_name(
    backend: Backend, tmp_path: Path
) -> None:
    from router.core import Policy, RequestFeatures
    from router.services.catalogs import bundled_catalog
    from router.services.decisions import Attempt

    catalog = bundled_catalog()
    policy = Policy.from_json({"v": "sigma-pol/v1", "rules": []}, catalog.schema)
    # Names one of which is a prefix of another, and that JSON escapes or leaves as UTF-8.
    tenants = ["acme", 'acme"2', "café ü\\", "acme\n"]
    async with backend.service() as service:
        made = {}
        for round_ in range(3):
            for tenant in tenants:
                decision = await service.decide(
                    tenant, policy, catalog, features=RequestFeatures(100 + round_, 10)
                )
                made[str(decision.decision_id)] = tenant
                await service.record_attempt(
                    decision,
                    Attempt(number=1, entry=decision.plan[0], status="ok", latency_ms=1.0),
                )
        for i, tenant in enumerate(tenants):
            await export_parquet(service.ledger, tmp_path / f"fast{i}", tenant=tenant, chunk=5)
            await export_parquet(
                service.ledger, tmp_path / f"slow{i}", tenant=tenant, sink=lambda _: None
            )
    for i, tenant in enumerate(tenants):
        mine = {d for d, t in made.items() if t == tenant}
        for name in ("decisions", "attempts"):
            rows = read_dataset(tmp_path / f"fast{i}", name).to_pylist()
            assert {r["decision_id"] for r in rows} == mine, (tenant, name)
            assert {r["tenant"] for r in rows} == {tenant}
            assert _same_rows(tmp_path / f"fast{i}", tmp_path / f"slow{i}", name), (tenant, name)
