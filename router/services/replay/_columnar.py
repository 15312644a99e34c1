"""The columnar side of replay: each page of `DecisionMade` events is handed to DuckDB as one
Arrow table; DuckDB parses the payloads, computes each decision's group key, and joins the
decisions to the results of their groups (evaluated once, in Python, by `_groups`).

The group key is the stream part (see `_HOME_STREAM`) and every payload field the outcome
depends on or claims, as JSON text (so `353` and `"353"` differ), plus whether `preview` and
`request_digest` are present (decoding needs them). The per-decision fields (decision id,
tenant, preview, request digest) stay per row: the decision id is compared with the event id in
SQL. Rows DuckDB cannot read the fast way (invalid JSON, a decision id, tenant or policy
fingerprint that is not a string, a member named twice) are marked `slow` and handled one by one
by the caller.

Per page, one statement parses and keys (`parse`, on a connection and thread of its own, one
page ahead of the caller: `pages`) and one joins the keys to the groups known (`load`); the
page's rows stay in DuckDB with only what the counts need (position, flags, tenant,
fingerprint, group id). The rest of a decision —
its event id as text, its time, the decision id it recorded — is read back from the page's Arrow
table for the few rows that are shown or written (`original_rows`, `against_rows`).

Memory: three pages (read, parsed, counted), the group results (one row per distinct group)
and, for `--against`, a tally per (tenant, fingerprint, group); DuckDB runs under a memory limit
and spills to a temporary directory beyond it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncGenerator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ledger import EVENT_BATCH_SCHEMA, EventRecord
from router.services.replay._rows import NEW_KEYS
from router.services.replay._scan import DecisionFilter

__all__ = ["Columnar", "Page"]

# The payload fields the outcome depends on or claims, kept as JSON text in the group key.
_OUTCOME_FIELDS = (
    "catalog_version",
    "evaluator_version",
    "features",
    "filter",
    "plan",
    "policy",
    "rank",
    "selected",
    "tokens",
)
# Per-decision fields decoding needs present: only whether they are goes into the key.
_PRESENT_FIELDS = ("preview", "request_digest")
_STRUCTURE = json.dumps(
    dict.fromkeys(("decision_id", "tenant", *_PRESENT_FIELDS, *_OUTCOME_FIELDS), "JSON")
)


# Per outcome field its JSON text; per per-decision field whether it is present. As
# `json_transform` reads a JSON null and a missing field both as SQL NULL, a NULL is told apart
# with `json_exists` (which parses the payload again, so only then).
def _text(name: str) -> str:
    return (
        f"CASE WHEN j.{name} IS NOT NULL THEN j.{name}::VARCHAR "
        f"WHEN json_exists(payload, '$.{name}') THEN 'null' ELSE '-' END"
    )


def _present(name: str) -> str:
    return (
        f"CASE WHEN j.{name} IS NOT NULL OR json_exists(payload, '$.{name}') THEN '+' ELSE '-' END"
    )


_KEY = "concat_ws(chr(0), home, {})".format(
    ", ".join([_text(name) for name in _OUTCOME_FIELDS] + [_present(n) for n in _PRESENT_FIELDS])
)


def _string(json_text: str) -> str:
    """The value of a JSON string given as its JSON text (`"…"`): the text between the quotes,
    unless an escape needs decoding."""
    return (
        f"CASE WHEN contains({json_text}, '\\') THEN {json_text} ->> '$' ELSE {json_text}[2:-2] END"
    )


# The decision id, tenant and policy fingerprint as JSON text: a string's starts with a quote.
# A row whose three are not all strings is `slow`.
_PARSE = """
WITH objects AS (
    SELECT position, event_id, stream_id, {object} AS payload FROM page_arrow
), parsed AS (
    SELECT *, {transform} AS j, {dupes} AS dupes FROM objects
), texts AS (
    SELECT *, j.decision_id::VARCHAR AS d, j.tenant::VARCHAR AS t,
              json_extract(j.policy, '$.fingerprint')::VARCHAR AS f
    FROM parsed
), typed AS (
    SELECT *, NOT coalesce(prefix(d, '"') AND prefix(t, '"') AND prefix(f, '"')
                           AND NOT dupes, false) AS slow
    FROM texts
), named AS (
    SELECT *,
           CASE WHEN NOT slow THEN {decision_id} END AS decision_id,
           CASE WHEN NOT slow THEN {tenant} END AS tenant,
           CASE WHEN NOT slow THEN {fingerprint} END AS fingerprint
    FROM typed
), homed AS (
    SELECT *, {home} AS home FROM named
), keyed AS (
    SELECT position, slow, tenant, fingerprint, home,
           NOT slow AND decision_id IS DISTINCT FROM hex(event_id)::UUID::VARCHAR AS forged,
           CASE WHEN NOT slow THEN {key} END AS key
    FROM homed
)
SELECT position, slow, forged, tenant, fingerprint, home, key FROM keyed
WHERE slow OR (($tenant::VARCHAR IS NULL OR tenant = $tenant)
               AND ($fingerprint::VARCHAR IS NULL OR fingerprint = $fingerprint))
"""
# The parsed page joined to the groups known: a row of a known group keeps only its gid.
_JOIN = """
SELECT p.position, p.slow, p.forged, p.tenant, p.fingerprint, p.home, k.gid,
       CASE WHEN k.gid IS NULL THEN p.key END AS key
FROM rows p LEFT JOIN keys k ON k.key = p.key
"""
# The stream part of the key. `--mode original`: a decision in its own tenant's sequence is
# in `decisions/` (every tenant's decisions with the same content share a group), else in its
# stream (a policy's, in ledgers of release 0.1.0), which the evaluation checks. `--against`:
# the policy fingerprint.
_HOME_STREAM = "CASE WHEN stream_id = 'decisions/' || tenant THEN 'decisions/' ELSE stream_id END"
_HOME_POLICY = "fingerprint"

# Every payload a JSON object naming each member of the structure once (the usual case):
# `json_transform_strict` refuses the page otherwise (a member named twice would be read
# first-wins here and last-wins by Python's decoder), and the page is parsed again with each
# payload checked first (not JSON, or not an object: NULL, so `slow`): a member missing is part
# of the key, a top-level name given twice makes the row `slow`. (The check is one expression
# computed once: DuckDB may compute an expression that appears twice for every row.)
_FAST = ("payload", f"json_transform_strict(payload, '{_STRUCTURE}')", "false")
_CHECKED = (
    """CASE WHEN payload IS NOT NULL AND json_valid(payload) AND json_type(payload) = 'OBJECT'
       THEN payload END""",
    f"json_transform(payload, '{_STRUCTURE}')",
    "len(json_keys(payload)) <> len(list_distinct(json_keys(payload)))",
)


def _parse(how: tuple[str, str, str], home: str) -> str:
    obj, transform, dupes = how
    return _PARSE.format(
        object=obj,
        transform=transform,
        dupes=dupes,
        key=_KEY,
        home=home,
        decision_id=_string("d"),
        tenant=_string("t"),
        fingerprint=_string("f"),
    )


_FIRST = """
SELECT key, min(position) AS position, any_value(home) AS home FROM page_raw
WHERE key IS NOT NULL {ids}
GROUP BY key ORDER BY position
"""

# The rows of the page as decisions: the event id as text, the time and the id the payload
# recorded, from the page's Arrow table.
_DECISIONS = """
SELECT p.position, hex(a.event_id)::UUID::VARCHAR AS decision_id, a.recorded_at_us, p.tenant,
       p.fingerprint, p.forged,
       CASE WHEN p.forged THEN a.payload ->> '$.decision_id' END AS recorded_id,
       r.* EXCLUDE (gid)
FROM page_raw p JOIN page_arrow a ON a.position = p.position LEFT JOIN results r ON r.gid = p.gid
"""

_TEMP = "CREATE OR REPLACE TEMPORARY TABLE {} AS {}"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of decisions, parsed (`Columnar.parse`): the `Ledger.scan_batches` batch, the
    Arrow table the statements read (`page_arrow`: the payloads as text), and per row what the
    counts need with its group key (`_PARSE`)."""

    batch: pa.RecordBatch
    table: pa.Table
    parsed: pa.Table


class Columnar:
    """One replay run's DuckDB database (in memory, spilling to a temporary directory)."""

    def __init__(
        self,
        results: pa.Schema,
        flt: DecisionFilter,
        *,
        original: bool,
        memory_limit: str = "256MB",
        threads: int = 1,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="unhardcoded-replay-")
        # One DuckDB thread per statement: a page of 10,000 rows gains nothing from a second
        # one (~15% more CPU and ~40 MB more peak memory on 2 cores). The cores are kept busy
        # by the pipeline instead: the ledger's reader reads page n + 2 while the parser parses
        # page n + 1 on its own connection and thread (`pages`) and this one joins and counts
        # page n.
        self.con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": self._tmp.name,
                "threads": threads,
            }
        )
        self._parser = self.con.cursor()
        self._parser_thread = ThreadPoolExecutor(1, thread_name_prefix="replay-parser")
        self.schema = results
        self.params = {"tenant": flt.tenant, "fingerprint": flt.fingerprint}
        home = _HOME_STREAM if original else _HOME_POLICY
        self._parse_fast = _parse(_FAST, home)
        self._parse_checked = _parse(_CHECKED, home)
        # Decisions whose payload names another decision id are a mismatch of their own in
        # `--mode original`: their group is not evaluated for them.
        self._first = _FIRST.format(ids="AND NOT forged" if original else "")
        self._insert("CREATE TABLE results AS SELECT * FROM rows", results.empty_table())
        self._insert("CREATE TABLE keys AS SELECT * FROM rows", NEW_KEYS.empty_table())
        self.con.execute(
            "CREATE TABLE tally (tenant VARCHAR, fingerprint VARCHAR, gid BIGINT, n BIGINT)"
        )
        self._gids = 0
        self._pages = 0
        self.size = 0
        """Decisions in the current page (after the tenant filter)."""
        self._batch = pa.RecordBatch.from_pylist([], schema=EVENT_BATCH_SCHEMA)
        self._positions = np.zeros(0, np.int64)
        self._loaded = False

    def close(self) -> None:
        """Stop the parser, drop the database and its spill directory."""
        self._parser_thread.shutdown(wait=True)
        self._parser.close()
        self.con.close()
        self._tmp.cleanup()

    def _insert(self, sql: str, rows: pa.Table) -> None:
        self.con.register("rows", rows)
        try:
            self.con.execute(sql)
        finally:
            self.con.unregister("rows")

    def allocate(self) -> int:
        """A new group id."""
        self._gids += 1
        return self._gids

    # -- one page -----------------------------------------------------------------------------

    async def pages(
        self, batches: AsyncGenerator[pa.RecordBatch, None]
    ) -> AsyncGenerator[Page, None]:
        """The pages of `batches` parsed, in order: each one is parsed on the parser's thread
        while the caller works on the one before (DuckDB releases the GIL while it works).
        Closing it closes `batches` and waits for the page being parsed."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[Page] | None = None
        try:
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    parsing = loop.run_in_executor(self._parser_thread, self.parse, batch)
                    if pending is not None:
                        page, pending = await pending, parsing
                        yield page
                    else:
                        pending = parsing
            if pending is not None:
                page, pending = await pending, None
                yield page
        finally:
            if pending is not None:  # left early: the parser finishes before the database closes
                with contextlib.suppress(Exception):
                    await pending

    def parse(self, batch: pa.RecordBatch) -> Page:
        """Parse one page of `DecisionMade` events (a `Ledger.scan_batches` batch, position
        order) into group keys, on the parser's own connection (any one thread at a time)."""
        payloads = batch.column("payload")
        try:
            text = payloads.cast(pa.string())
        except pa.ArrowInvalid:  # some payload is not UTF-8: it goes the slow way
            text = pa.array([_utf8_or_none(p) for p in payloads.to_pylist()], pa.string())
        table = pa.Table.from_arrays(
            [
                batch.column("position"),
                batch.column("event_id"),
                batch.column("stream_id"),
                batch.column("recorded_at_us"),
                text,
            ],
            names=["position", "event_id", "stream_id", "recorded_at_us", "payload"],
        )
        self._parser.register("page_arrow", table)
        try:
            try:
                parsed = self._parser.sql(self._parse_fast, params=self.params).to_arrow_table()
            except (duckdb.InvalidInputException, duckdb.ConversionException):
                parsed = self._parser.sql(self._parse_checked, params=self.params).to_arrow_table()
        finally:
            self._parser.unregister("page_arrow")
        return Page(batch, table, parsed)

    def load(self, page: Page) -> None:
        """Make `page` the current one: its rows joined to the groups known (`page_raw`)."""
        if self._loaded:
            self.con.unregister("page_arrow")
        # The page's Arrow table stays registered until the next page: `_DECISIONS` reads it.
        self.con.register("page_arrow", page.table)
        self._loaded = True
        self._insert(_TEMP.format("page_raw", _JOIN), page.parsed)
        self._batch = page.batch
        self._positions = page.batch.column("position").to_numpy()

    def record(self, position: int) -> EventRecord:
        """The event of this page at `position`."""
        row = int(np.searchsorted(self._positions, position))
        return EventRecord(*(column[row].as_py() for column in self._batch.columns))

    def slow(self) -> list[EventRecord]:
        """The events of this page that need to be read one by one."""
        rows = self.con.execute("SELECT position FROM page_raw WHERE slow ORDER BY position")
        return [self.record(position) for (position,) in rows.fetchall()]

    def new_groups(self) -> list[tuple[str, str, bytes]]:
        """The groups of this page without a result yet: (key, stream part of the key, payload
        of the group's first decision)."""
        rows = self.con.execute(self._first).fetchall()
        payloads = self._batch.column("payload")
        found = np.searchsorted(self._positions, [position for _, position, _ in rows])
        return [
            (key, home, payloads[int(row)].as_py())
            for (key, _, home), row in zip(rows, found, strict=True)
        ]

    def commit(
        self,
        results: Sequence[dict[str, Any]],
        new_keys: Sequence[tuple[str, int]],
        slow: Sequence[tuple[int, str | None, str, int | None]],
    ) -> None:
        """Store the results of the new groups (columns: the results schema, `gid` from
        `allocate`) and their keys, and settle the slow rows as (position, tenant, policy
        fingerprint, gid): gid None drops the row (another tenant or policy than asked for),
        else it names the result of that one row."""
        if results:
            self._insert(
                "INSERT INTO results SELECT * FROM rows",
                pa.Table.from_pylist(list(results), schema=self.schema),
            )
        if new_keys:
            keys = pa.table(
                {
                    "key": pa.array([k for k, _ in new_keys], pa.string()),
                    "gid": pa.array([g for _, g in new_keys], pa.int64()),
                }
            )
            self._insert("INSERT INTO keys SELECT * FROM rows", keys)
            self._insert(
                "UPDATE page_raw SET gid = rows.gid FROM rows WHERE page_raw.key = rows.key", keys
            )
        if slow:
            settled = pa.table(
                {
                    "position": pa.array([s[0] for s in slow], pa.int64()),
                    "tenant": pa.array([s[1] for s in slow], pa.string()),
                    "fingerprint": pa.array([s[2] for s in slow], pa.string()),
                    "gid": pa.array([s[3] for s in slow], pa.int64()),
                }
            )
            self._insert(
                """UPDATE page_raw SET tenant = rows.tenant, fingerprint = rows.fingerprint,
                   gid = rows.gid FROM rows WHERE page_raw.position = rows.position""",
                settled,
            )
        # The page's decisions: every row read the fast way (one whose group is not evaluated
        # has no gid: a forged id in `--mode original` with no other row of its group), and the
        # slow rows of the tenant and policy asked for.
        self.con.execute("DELETE FROM page_raw WHERE slow AND gid IS NULL")
        (row,) = self.con.execute("SELECT count(*) FROM page_raw").fetchall()
        self.size = int(row[0])

    # -- original ----------------------------------------------------------------------------

    def mismatch_fields(self) -> list[tuple[str, int]]:
        """(field, decisions) of this page's mismatches."""
        return self.con.execute(
            """SELECT CASE WHEN c.forged THEN 'decision_id' ELSE r.field END AS f, sum(c.n)
               FROM (SELECT gid, forged, count(*) AS n FROM page_raw GROUP BY ALL) c
               LEFT JOIN results r ON r.gid = c.gid
               WHERE c.forged OR r.field IS NOT NULL GROUP BY f ORDER BY f"""
        ).fetchall()

    def original_rows(self, only_mismatches: bool, limit: int | None) -> list[dict[str, Any]]:
        """This page's per-decision rows of `--mode original`, in position order."""
        where = "WHERE forged OR field IS NOT NULL" if only_mismatches else ""
        cap = "" if limit is None else f"LIMIT {int(limit)}"
        return _dicts(
            self.con.execute(
                f"""SELECT decision_id, position, recorded_at_us, tenant, fingerprint,
                    CASE WHEN forged THEN NULL ELSE catalog_version END AS catalog_version,
                    NOT forged AND field IS NULL AS ok,
                    CASE WHEN forged THEN 'decision_id' ELSE field END AS field,
                    CASE WHEN forged THEN recorded_id ELSE recorded END AS recorded,
                    CASE WHEN forged THEN decision_id ELSE replayed END AS replayed
                FROM ({_DECISIONS}) {where} ORDER BY position {cap}"""
            )
        )

    # -- against -----------------------------------------------------------------------------

    def count_page(self) -> None:
        """Add this page's decisions per (tenant, fingerprint, group) to the tally (summed
        every 16 pages, so it holds about one row per distinct triple)."""
        self.con.execute(
            "INSERT INTO tally SELECT tenant, fingerprint, gid, count(*) FROM page_raw GROUP BY ALL"
        )
        self._pages += 1
        if self._pages % 16 == 0:
            self.con.execute(
                "CREATE OR REPLACE TABLE tally AS "
                "SELECT tenant, fingerprint, gid, sum(n)::BIGINT AS n FROM tally GROUP BY ALL"
            )

    def errors_and_changes(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """This page's decisions that could not be re-evaluated (count), and the first `limit`
        errors or changes in position order."""
        row = self.con.execute(
            """SELECT count(*) FROM page_raw p JOIN results r ON r.gid = p.gid
               WHERE r.error IS NOT NULL"""
        ).fetchall()[0]
        first = (
            _dicts(
                self.con.execute(
                    f"""SELECT * EXCLUDE (forged, recorded_id) FROM ({_DECISIONS})
                        WHERE error IS NOT NULL OR changed ORDER BY position LIMIT {int(limit)}"""
                )
            )
            if limit > 0
            else []
        )
        return (0 if row is None else int(row[0])), first

    def against_rows(self) -> list[dict[str, Any]]:
        """This page's per-decision rows of `--against`, in position order."""
        return _dicts(
            self.con.execute(
                f"SELECT * EXCLUDE (forged, recorded_id) FROM ({_DECISIONS}) ORDER BY position"
            )
        )

    def tally(self) -> Iterator[dict[str, Any]]:
        """Per (tenant, fingerprint, group) without errors: decisions and the group's change,
        in a fixed order (so the sums of costs are the same from run to run), streamed."""
        cursor = self.con.execute(
            """SELECT t.tenant, t.fingerprint, t.n, r.*
               FROM (SELECT tenant, fingerprint, gid, sum(n) AS n FROM tally GROUP BY ALL) t
               JOIN results r ON r.gid = t.gid
               WHERE r.error IS NULL ORDER BY t.tenant, t.fingerprint, t.gid"""
        )
        names = [d[0] for d in cursor.description or ()]
        while rows := cursor.fetchmany(10_000):
            yield from (dict(zip(names, row, strict=True)) for row in rows)


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _utf8_or_none(payload: bytes) -> str | None:
    try:
        return bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return None
