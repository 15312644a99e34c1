"""The Parquet file `unhardcoded replay --parquet` writes: the replay's per-decision rows
(`ORIGINAL_ROWS` / `AGAINST_ROWS`), batch by batch (kept apart so that the replay command
imports pyarrow only when it writes Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ParquetSink"]


class ParquetSink:
    """Write each batch of replay rows to one Parquet file; `close` finishes the file."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(str(path), schema)
        self.schema = schema

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
