"""The exporter's fast path: decision rows built column-wise with Arrow, a chunk at a time.

Reading a million `Envelope`s one by one costs more than everything else put together, so the
exporter reads events through the ledger's bulk read (`Ledger.select`: position, type, time and
payload bytes, no hashes), parses the canonical JSON payloads of a whole chunk with
Arrow's multithreaded JSON reader, and maps entry indices to ids, providers, regions and prices
with vectorized takes. `_PAYLOAD` reads the fields of `decode_decision`'s `DecisionPayload` that
the rows need, column-wise (tests check both read the same values). Outcomes, rank orders,
catalogs, policies and costs stay per distinct value (few) and go through the decision record's
own functions (`RowBuilder`, `cost_of`), like the per-event path the bundle uses; tests check
both paths write the same rows."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ledger import Ledger
from reports._rows import CatalogInfo
from reports._schema import SCHEMAS, TIMESTAMP
from router.core import CatalogEntry, Tokens, cost_of

__all__ = ["CatalogColumns", "EventChunk", "decision_batch", "parse_decisions", "read_chunk"]

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


@dataclass(frozen=True, slots=True)
class EventChunk:
    """The events of the types asked for in one position range."""

    positions: list[int]
    types: list[str]
    streams: list[str]
    recorded_at_us: list[int]
    payloads: list[bytes]
    stream_versions: list[int]


async def read_chunk(ledger: Ledger, low: int, high: int, types: tuple[str, ...]) -> EventChunk:
    """The events of `types` at positions [low, high), in position order."""
    rows = await ledger.select(low, max(high - low, 1), stop=high, types=types)
    return EventChunk(
        [r.position for r in rows],
        [r.type for r in rows],
        [r.stream_id for r in rows],
        [r.recorded_at_us for r in rows],
        [bytes(r.payload) for r in rows],
        [r.stream_version for r in rows],
    )


def parse_decisions(payloads: list[bytes]) -> pa.Table:
    """`DecisionMade` payloads (canonical JSON, one line each) parsed column-wise."""
    return pj.read_json(
        io.BytesIO(b"\n".join(payloads)),
        read_options=pj.ReadOptions(block_size=4 << 20),
        parse_options=pj.ParseOptions(explicit_schema=_PAYLOAD, unexpected_field_behavior="ignore"),
    )


@dataclass
class CatalogColumns:
    """Every catalog version met so far, its entries' columns concatenated (for global takes)."""

    offsets: dict[str, int] = field(default_factory=dict)
    _parts: list[dict[str, list[Any]]] = field(default_factory=list)
    entries: list[CatalogEntry] = field(default_factory=list)
    _arrays: dict[str, pa.Array] | None = None
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
        self._arrays = None

    def arrays(self) -> dict[str, pa.Array]:
        """The concatenated columns."""
        if self._arrays is None:
            names = ("id", "provider", "region", "no_log")
            self._arrays = {
                name: pa.array([v for part in self._parts for v in part[name]]) for name in names
            }
        return self._arrays


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
    cost = _costs(columns.entries, where, tokens_in, tokens_out, pc.struct_field(tokens, "cached"))
    plan = table.column("plan").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(plan), 0)
    parents = pc.list_parent_indices(plan)
    plan_where = pc.add(pc.take(row_offset, parents), pc.cast(pc.list_flatten(plan), pa.int64()))
    list_offsets = pa.array(
        [0, *pc.cumulative_sum(pc.cast(lengths, pa.int32())).to_pylist()], pa.int32()
    )
    plan_ids = pa.ListArray.from_arrays(list_offsets, pc.take(arrays["id"], plan_where))
    at = pc.cast(recorded_at_us, pa.int64()).cast(TIMESTAMP)
    policy = table.column("policy").combine_chunks()
    # "301140696-1054914287 (sigma-pol/v1)": the fingerprint and the IR version, apart.
    parts = pc.extract_regex(
        pc.struct_field(policy, "fingerprint"), r"^(?P<fp>.*?)(?: \((?P<ir>[^()]*)\))?$"
    )
    flt = table.column("filter").combine_chunks()
    values: dict[str, pa.Array] = {
        "decision_id": table.column("decision_id").combine_chunks(),
        "position": positions,
        "sequence": sequences,
        "recorded_at": at,
        "preview": table.column("preview").combine_chunks(),
        "policy_fingerprint": pc.struct_field(parts, "fp"),
        "policy_ir_version": pc.if_else(
            pc.equal(pc.struct_field(parts, "ir"), ""), None, pc.struct_field(parts, "ir")
        ),
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
        "date": pc.strftime(at, format="%Y-%m-%d"),
        "tenant": table.column("tenant").combine_chunks(),
    }
    schema = SCHEMAS["decisions"]
    return pa.RecordBatch.from_arrays([_as(values[f.name], f.type) for f in schema], schema=schema)


def _costs(
    entries: list[CatalogEntry],
    where: pa.Array,
    tokens_in: pa.Array,
    tokens_out: pa.Array,
    cached: pa.Array,
) -> pa.Array:
    """The selected entry's `cost_of` per row (tiers and cached input priced like the decision
    did), computed once per distinct (entry, tokens)."""
    memo: dict[tuple[int, int, int, int], float | None] = {}
    out: list[float | None] = []
    columns = (where.to_pylist(), tokens_in.to_pylist(), tokens_out.to_pylist(), cached.to_pylist())
    for index, t_in, t_out, t_cached in zip(*columns, strict=True):
        if index is None or t_in is None or t_out is None:
            out.append(None)
            continue
        key = (index, t_in, t_out, t_cached or 0)
        if key not in memo:
            memo[key] = cost_of(entries[index], Tokens(t_in, t_out, t_cached or 0))
        out.append(memo[key])
    return pa.array(out, pa.float64())


def _as(array: pa.Array | pa.ChunkedArray, kind: pa.DataType) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(kind) and not pa.types.is_dictionary(array.type):
        return pc.dictionary_encode(array)
    if array.type != kind:
        return array.cast(kind)
    return array
