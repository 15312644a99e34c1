"""The columnar engine the reports aggregate in: DuckDB over an export folder's datasets.

Each dataset is a view over DuckDB's own Parquet reader (the hive partition values decoded from
the file paths), so DuckDB scans the files row group by row group with projection and filter
pushdown; joins and aggregations run under a fixed memory limit and spill
to a temporary folder beyond it. Memory therefore does not grow with the number of decisions."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

from reports._errors import ReportsError
from reports._schema import DATASETS, PARTITIONS, SCHEMAS

__all__ = ["MEMORY_LIMIT", "connect"]

MEMORY_LIMIT = "128MB"
"""DuckDB's working memory (it spills to disk beyond it)."""


def _view(con: duckdb.DuckDBPyConnection, export: Path, name: str) -> None:
    """Dataset `name` as a view: DuckDB's own Parquet reader (it streams under the memory
    limit), the hive partition columns decoded from each file's path, in schema order."""
    folder = export / name
    if not folder.is_dir():
        raise ReportsError(f"{folder}: no {name} dataset (not an export folder?)")
    files = sorted(str(p) for p in folder.rglob("*.parquet"))
    if not files:
        con.from_arrow(SCHEMAS[name].empty_table()).create_view(name)
        return
    decoded = [
        f"url_decode(regexp_extract(filename, '/{c}=([^/]*)/', 1)) AS {c}" for c in PARTITIONS[name]
    ]
    relation = con.read_parquet(files, filename=True)
    relation.project(", ".join(["* EXCLUDE (filename)", *decoded])).create_view(name)


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
                _view(con, export, name)
            yield con
        finally:
            con.close()
