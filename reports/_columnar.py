"""The exporter's fast path: decision rows built column-wise with Arrow, a chunk at a time.

Reading a million `Envelope`s one by one costs more than everything else put together, so the
exporter reads events in Arrow batches (`Ledger.scan_batches`: position, type, stream, time and
payload bytes, no hashes, built on the database's reader thread), parses the canonical JSON
payloads of a whole batch with Arrow's multithreaded JSON reader, and maps entry indices to
ids, providers, regions and prices with vectorized takes. `_PAYLOAD` reads the fields of
`decode_decision`'s `DecisionPayload` that the rows need, column-wise (tests check both read the
same values). Outcomes, rank orders, catalogs, policies and costs stay per distinct value (few)
and go through the decision record's own functions (`RowBuilder`, `cost_of`), like the
per-event path the bundle uses; tests check both paths write the same rows."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from reports._rows import CatalogInfo
from reports._schema import SCHEMAS, TIMESTAMP
from router.core import CatalogEntry, Tokens, columns_of, cost_of
from router.services.decisions import DECISION_MADE

__all__ = [
    "CatalogColumns",
    "Prepared",
    "RecentDecisions",
    "decision_batch",
    "group_key",
    "group_keys",
    "parse_decisions",
    "parsed_ahead",
    "tenant_member",
    "utc_dates",
]

_SEP = "\x1f"
_NULL = "\x00"
"""A group key's separator and its null: neither occurs in a digest or a decimal integer."""

_PAYLOAD = pa.schema(
    [
        ("decision_id", pa.string()),
        ("tenant", pa.string()),
        ("preview", pa.bool_()),
        ("request_digest", pa.string()),
        ("policy", pa.struct([("fingerprint", pa.string()), ("digest", pa.string())])),
        ("catalog_version", pa.string()),
        ("evaluator_version", pa.string()),
        ("tokens", pa.struct([("in", pa.int64()), ("out", pa.int64()), ("cached", pa.int64())])),
        ("filter", pa.struct([("outcome", pa.string()), ("passing", pa.int32())])),
        ("rank", pa.struct([("order_sha256", pa.string())])),
        ("selected", pa.struct([("index", pa.int32()), ("id", pa.string())])),
        ("plan", pa.list_(pa.int32())),
    ]
)


def parse_decisions(payloads: list[bytes] | pa.Array) -> pa.Table:
    """`DecisionMade` payloads (canonical JSON, one line each) parsed column-wise; given as an
    Arrow binary column (a `Ledger.scan_batches` batch's), they are joined into the parser's
    input by Arrow, without a Python object per decision."""
    if isinstance(payloads, pa.Array):
        bounds = pa.array([0, len(payloads)], pa.int32())
        joined = pc.binary_join(pa.ListArray.from_arrays(bounds, payloads), b"\n")
        _, offsets, data = joined.buffers()
        end = int(np.frombuffer(offsets, np.int32, count=2)[1])
        source: pa.BufferReader | io.BytesIO = pa.BufferReader(data.slice(0, end))
    else:
        source = io.BytesIO(b"\n".join(payloads))
    return pj.read_json(
        source,
        read_options=pj.ReadOptions(block_size=4 << 20),
        parse_options=pj.ParseOptions(explicit_schema=_PAYLOAD, unexpected_field_behavior="ignore"),
    )


@dataclass
class CatalogColumns:
    """Every catalog version met so far, its entries' columns concatenated (for global takes)."""

    offsets: dict[str, int] = field(default_factory=dict)
    _parts: list[dict[str, list[Any]]] = field(default_factory=list)
    entries: list[CatalogEntry] = field(default_factory=list)
    _prices: list[tuple[npt.NDArray[Any], ...]] = field(default_factory=list)
    _arrays: dict[str, pa.Array] | None = None
    _numbers: dict[str, npt.NDArray[Any]] | None = None
    _size: int = 0

    def add(self, info: CatalogInfo) -> None:
        """Append a catalog version's columns."""
        if info.catalog.version in self.offsets:
            return

        entries = info.catalog.entries
        self.entries.extend(entries)
        self.offsets[info.catalog.version] = self._size
        self._size += len(entries)
        self._parts.append(
            {
                "id": list(info.ids),
                "provider": list(info.providers),
                "region": list(info.regions),
                "no_log": list(info.no_log),
            }
        )
        # The evaluator's own price columns (NaN: unknown), so that a cost computed from them
        # is the one `cost_of` gives; entries with tiers are priced one by one.
        cols = columns_of(info.catalog)
        tiered = np.fromiter((bool(e.tiers) for e in entries), np.bool_, len(entries))
        self._prices.append((cols.price_in, cols.price_out, cols.price_cached_in, tiered))
        self._arrays = None
        self._numbers = None

    def arrays(self) -> dict[str, pa.Array]:
        """The concatenated columns."""
        if self._arrays is None:
            names = ("id", "provider", "region", "no_log")
            self._arrays = {
                name: pa.array([v for part in self._parts for v in part[name]]) for name in names
            }
        return self._arrays

    def prices(self) -> dict[str, npt.NDArray[Any]]:
        """The concatenated price columns: `price_in`, `price_out`, `price_cached_in` (NaN:
        unknown) and `tiered` (the entry has price tiers)."""
        if self._numbers is None:
            names = ("price_in", "price_out", "price_cached_in", "tiered")
            self._numbers = {
                name: np.concatenate([part[i] for part in self._prices])
                for i, name in enumerate(names)
            }
        return self._numbers


def group_keys(table: pa.Table) -> pa.Array:
    """Each parsed decision's group (outcome, rank order, policy digest, input and output
    tokens) as one string, the `group_key` of the same values: the groups are found among a
    batch's decisions by hashing in Arrow instead of one Python tuple per decision."""
    tokens = table.column("tokens")
    parts = [
        pc.struct_field(table.column("filter"), "outcome"),
        pc.struct_field(table.column("rank"), "order_sha256"),
        pc.struct_field(table.column("policy"), "digest"),
        pc.struct_field(tokens, "in").cast(pa.string()),
        pc.struct_field(tokens, "out").cast(pa.string()),
    ]
    joined = pc.binary_join_element_wise(
        *parts, _SEP, null_handling="replace", null_replacement=_NULL
    )
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def group_key(group: tuple[Any, ...]) -> str:
    """`group_keys` of one (outcome, order, policy digest, tokens in, tokens out)."""
    return _SEP.join(_NULL if value is None else str(value) for value in group)


def decision_batch(
    table: pa.Table,
    positions: pa.Array,
    sequences: pa.Array,
    recorded_at_us: pa.Array,
    columns: CatalogColumns,
) -> pa.RecordBatch:
    """The `decisions` rows of parsed payloads (every catalog they name must be in `columns`);
    `sequences` are their versions in their tenants' sequences (`sequence_column`)."""
    arrays = columns.arrays()
    versions = table.column("catalog_version").combine_chunks().dictionary_encode()
    offsets = pa.array([columns.offsets[v] for v in versions.dictionary.to_pylist()], pa.int64())
    row_offset = pc.take(offsets, versions.indices)
    selected = table.column("selected").combine_chunks()
    index = pc.struct_field(selected, "index")
    where = pc.add(row_offset, pc.cast(index, pa.int64()))
    tokens = table.column("tokens").combine_chunks()
    tokens_in = pc.struct_field(tokens, "in")
    tokens_out = pc.struct_field(tokens, "out")
    cost = _costs(columns, where, tokens_in, tokens_out, pc.struct_field(tokens, "cached"))
    plan = table.column("plan").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(plan), 0)
    parents = pc.list_parent_indices(plan)
    plan_where = pc.add(pc.take(row_offset, parents), pc.cast(pc.list_flatten(plan), pa.int64()))
    list_offsets = pa.array(
        np.concatenate([[0], np.cumsum(lengths.to_numpy(), dtype=np.int32)]), pa.int32()
    )
    plan_ids = pa.ListArray.from_arrays(list_offsets, pc.take(arrays["id"], plan_where))
    at = pc.cast(recorded_at_us, pa.int64()).cast(TIMESTAMP)
    policy = table.column("policy").combine_chunks()
    # "301140696-1054914287 (sigma-pol/v1)": the fingerprint and the IR version, apart; the
    # regular expression runs once per distinct fingerprint (a few), not once per decision.
    fingerprints = pc.struct_field(policy, "fingerprint").dictionary_encode()
    parts = pc.extract_regex(fingerprints.dictionary, r"^(?P<fp>.*?)(?: \((?P<ir>[^()]*)\))?$")
    ir_versions = pc.struct_field(parts, "ir")
    ir_versions = pc.if_else(pc.equal(ir_versions, ""), None, ir_versions)
    flt = table.column("filter").combine_chunks()
    values: dict[str, pa.Array] = {
        "decision_id": table.column("decision_id").combine_chunks(),
        "position": positions,
        "sequence": sequences,
        "recorded_at": at,
        "preview": table.column("preview").combine_chunks(),
        "policy_fingerprint": pc.take(pc.struct_field(parts, "fp"), fingerprints.indices),
        "policy_ir_version": pc.take(ir_versions, fingerprints.indices),
        "policy_digest": pc.struct_field(policy, "digest"),
        "catalog_version": versions,
        "evaluator_version": table.column("evaluator_version").combine_chunks(),
        "request_digest": table.column("request_digest").combine_chunks(),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "outcome_digest": pc.struct_field(flt, "outcome"),
        "order_digest": pc.struct_field(table.column("rank").combine_chunks(), "order_sha256"),
        "passing": pc.struct_field(flt, "passing"),
        "selected_index": index,
        "selected_id": pc.take(arrays["id"], where),
        "selected_provider": pc.take(arrays["provider"], where),
        "selected_region": pc.take(arrays["region"], where),
        "selected_no_log": pc.take(arrays["no_log"], where),
        "selected_cost_usd": cost,
        "plan": plan_ids,
        "date": utc_dates(at),
        "tenant": table.column("tenant").combine_chunks(),
    }
    schema = SCHEMAS["decisions"]
    return pa.RecordBatch.from_arrays([_as(values[f.name], f.type) for f in schema], schema=schema)


def utc_dates(at: pa.Array) -> pa.Array:
    """The UTC date (YYYY-MM-DD) of each timestamp of `at` (`TIMESTAMP`): the `date` partition
    value, as `reports._rows.utc_date` gives it (a cast, not a formatted string per row)."""
    return at.cast(pa.date32()).cast(pa.string())


def _costs(
    columns: CatalogColumns,
    where: pa.Array,
    tokens_in: pa.Array,
    tokens_out: pa.Array,
    cached: pa.Array,
) -> pa.Array:
    """The selected entry's `cost_of` per row, column-wise: `run_cost`'s formula with the same
    operations in the same order on float64, so each value is the one `cost_of` returns (null
    where the price is unknown, nothing is selected or no tokens were priced). Rows whose entry
    has price tiers go through `cost_of` itself, once per distinct (entry, tokens)."""
    prices = columns.prices()
    known = pc.and_(pc.is_valid(where), pc.and_(pc.is_valid(tokens_in), pc.is_valid(tokens_out)))
    index = where.fill_null(0).to_numpy()
    t_in = tokens_in.fill_null(0).to_numpy()
    t_out = tokens_out.fill_null(0).to_numpy()
    t_cached = np.minimum(cached.fill_null(0).to_numpy(), t_in)
    p_in = prices["price_in"][index]
    p_out = prices["price_out"][index]
    plain = (t_in * p_in + t_out * p_out) / 1e6
    with_cached = (
        (t_in - t_cached) * p_in + t_cached * prices["price_cached_in"][index] + t_out * p_out
    ) / 1e6
    cost = np.where(t_cached == 0, plain, with_cached)
    valid = known.to_numpy(zero_copy_only=False)
    tiered = np.flatnonzero(valid & prices["tiered"][index])
    if len(tiered):
        memo: dict[tuple[int, int, int, int], float | None] = {}
        raw_cached = cached.fill_null(0).to_numpy()
        for row in tiered.tolist():
            key = (int(index[row]), int(t_in[row]), int(t_out[row]), int(raw_cached[row]))
            if key not in memo:
                memo[key] = cost_of(columns.entries[key[0]], Tokens(*key[1:]))
            found = memo[key]
            cost[row] = np.nan if found is None else found
    return pa.array(cost, pa.float64(), mask=~valid | np.isnan(cost))


def _as(array: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(kind) and not pa.types.is_dictionary(array.type):
        return pc.dictionary_encode(array)
    if array.type != kind:
        return array.cast(kind)
    return array


class RecentDecisions:
    """The latest decisions, for the attempts that follow them (an attempt is recorded after its
    decision, nearly always within a few batches): every decision's event id (= decision id),
    and the partition values (tenant, date, catalog version) of those exported. Held as Arrow
    columns, whole batches at a time (the oldest dropped once `size` decisions are held without
    it), so a decision costs no Python object and one that is not exported need not even be
    parsed; an attempt's decision is found by hashing in Arrow, newest batch first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._batches: deque[tuple[pa.Array, pa.Table]] = deque()
        self._rows = 0

    def add(self, ids: pa.Array, exported: pa.Table) -> None:
        """Remember a batch of decisions: `ids`, the event ids of all of them, and `exported`
        (columns `event_id`, `tenant`, `date`, `catalog_version`), those exported.

        The ids are copied: a column of a batch the database driver made shares the release
        of the whole batch's memory, payloads included (Arrow's C data interface), and the
        window would hold every payload of the last `size` decisions."""
        ids = _copied(ids)
        exported = exported.set_column(0, "event_id", _copied(exported.column(0).combine_chunks()))
        self._batches.append((ids, exported))
        self._rows += len(ids)
        while len(self._batches) > 1 and self._rows - len(self._batches[0][0]) >= self._size:
            self._rows -= len(self._batches.popleft()[0])

    def find(self, ids: pa.Array) -> tuple[list[bool], list[tuple[str, str, str] | None]]:
        """Per decision (event id, 16 bytes): whether it is held, and its (tenant, date,
        catalog version) when it is held and exported (None otherwise)."""
        held = [False] * len(ids)
        keys: list[tuple[str, str, str] | None] = [None] * len(ids)
        pending = np.arange(len(ids))
        for every, exported in reversed(self._batches):
            if not len(pending):
                break
            asked = ids.take(pending)
            here = pc.is_in(asked, value_set=every).to_numpy(zero_copy_only=False)
            rows = pc.index_in(asked, value_set=exported.column("event_id"))
            rows = rows.fill_null(-1).to_numpy()
            for i in pending[here].tolist():
                held[i] = True
            hit = rows >= 0
            if hit.any():
                taken = exported.take(rows[hit]).to_pydict()
                values = zip(taken["tenant"], taken["date"], taken["catalog_version"], strict=True)
                for i, value in zip(pending[hit].tolist(), values, strict=True):
                    keys[i] = value
            pending = pending[~here]
        return held, keys


def _copied(array: pa.Array) -> pa.Array:
    """`array` in buffers of its own (a take allocates them)."""
    return pc.take(array, pa.array(np.arange(len(array), dtype=np.int64)))


def tenant_member(tenant: str) -> bytes:
    """The `tenant` member of a canonical (RFC 8785) `DecisionMade` payload: Python's encoder
    without `ensure_ascii` escapes exactly what RFC 8785 escapes (`router.core._canonical`)."""
    return b'"tenant":' + json.dumps(tenant, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Prepared:
    """A batch of events as `prepare` leaves it for the exporter."""

    events: pa.RecordBatch
    count: int
    """Decisions in the batch."""
    every: pa.Array
    """Their event ids (= decision ids)."""
    decisions: pa.RecordBatch
    """The decisions that may be exported (all of them, or those naming the tenant)."""
    table: pa.Table | None
    """Their payloads parsed (None when there is none)."""


def prepare(events: pa.RecordBatch, needle: bytes | None) -> Prepared:
    """What a `Ledger.scan_batches` batch needs before its rows are built: its decisions, those
    that may be exported, and their payloads parsed. `needle`: the exported tenant's member as
    its payloads hold it (`tenant_member`): a payload is canonical JSON, so a decision of the
    tenant holds exactly these bytes, and the others are not parsed (the few that hold them
    elsewhere are, and dropped by the exporter's exact test)."""
    is_decision = pc.equal(events.column("type"), DECISION_MADE)
    count = pc.sum(is_decision).as_py() or 0
    # Most batches hold decisions only: used as they are, their payloads are not copied.
    decisions = events if count == events.num_rows else events.filter(is_decision)
    every = decisions.column("event_id")
    if needle is not None:
        decisions = decisions.filter(pc.match_substring(decisions.column("payload"), needle))
    table = None
    if decisions.num_rows:
        table = parse_decisions(decisions.column("payload")).combine_chunks()
    return Prepared(events, count, every, decisions, table)


async def parsed_ahead(
    batches: AsyncIterator[pa.RecordBatch], needle: bytes | None
) -> AsyncIterator[Prepared]:
    """`prepare` of each batch on a worker thread, the next batch's started before this one is
    handed on: the JSON parser (which releases the GIL) works on it while the exporter builds
    the rows of this one."""
    pending: asyncio.Future[Prepared] | None = None
    try:
        async for events in batches:
            started = asyncio.ensure_future(asyncio.to_thread(prepare, events, needle))
            if pending is not None:
                yield await pending
            pending = started
        if pending is not None:
            prepared, pending = await pending, None
            yield prepared
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
