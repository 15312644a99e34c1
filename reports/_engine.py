"""The columnar engine the reports aggregate in: DuckDB over an export folder's datasets.

Each dataset is registered as a view over its Arrow dataset (the hive partitions decoded by the
same partitioning that wrote them), so DuckDB scans the Parquet files batch by batch with
projection and filter pushdown; joins and aggregations run under a fixed memory limit and spill
to a temporary folder beyond it. Memory therefore does not grow with the number of decisions."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

from reports._schema import DATASETS
from reports._writer import open_dataset

__all__ = ["MEMORY_LIMIT", "connect"]

MEMORY_LIMIT = "192MB"
"""DuckDB's working memory (it spills to disk beyond it)."""


@contextlib.contextmanager
def connect(
    export: Path, *, memory_limit: str = MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with one view per dataset of the export folder `export`."""
    with tempfile.TemporaryDirectory(prefix="unhardcoded-duckdb-") as spill:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "threads": 2,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            for name in DATASETS:
                con.register(f"{name}_arrow", open_dataset(export, name))
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_arrow")
            yield con
        finally:
            con.close()
