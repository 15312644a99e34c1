"""The Parquet file `unhardcoded replay --parquet-out` writes: one schema per mode, and the sink
that writes the replay's rows batch by batch (kept apart so that the replay command imports
pyarrow only when it writes Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["AGAINST_SCHEMA", "ORIGINAL_SCHEMA", "ParquetSink"]

ORIGINAL_SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),
        ("position", pa.int64()),
        ("recorded_at_us", pa.int64()),
        ("tenant", pa.string()),
        ("fingerprint", pa.string()),
        ("catalog_version", pa.string()),
        ("ok", pa.bool_()),
        ("field", pa.string()),
        ("recorded", pa.string()),
        ("replayed", pa.string()),
    ]
)
AGAINST_SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),
        ("position", pa.int64()),
        ("recorded_at_us", pa.int64()),
        ("tenant", pa.string()),
        ("fingerprint", pa.string()),
        ("catalog_version", pa.string()),
        ("target_version", pa.string()),
        ("previous", pa.string()),
        ("selected", pa.string()),
        ("changed", pa.bool_()),
        ("previous_cost", pa.float64()),
        ("cost", pa.float64()),
        ("cost_delta", pa.float64()),
        ("previous_status", pa.string()),
        ("removed_by", pa.list_(pa.string())),
        ("no_entry_passes", pa.bool_()),
        ("error", pa.string()),
    ]
)


class ParquetSink:
    """Write each batch of replay rows to one Parquet file; `close` finishes the file."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(str(path), schema)
        self.schema = schema

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
