"""What a bundle's data must hold, built from its proven events and compared in DuckDB.

The bundle verifier streams the proven events through a `RowBuilder`; the rows it builds go to one
Parquet file per dataset in a scratch folder as they come (never all in memory), and each dataset
is then compared with the bundled one as multisets of rows (`EXCEPT ALL` both ways) by the
columnar engine, which names the decisions that differ."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from reports._engine import MEMORY_LIMIT
from reports._rows import RowBuilder
from reports._schema import DATASETS, PARTITIONS, SCHEMAS

__all__ = ["ExpectedRows", "compare_datasets"]

_SPILL_ROWS = 32_768
_GROUP_ROWS = 256
"""Group rows (eliminations, rankings, explanations) hold catalog-long lists: spilled sooner."""
_GROUP_DATASETS = ("eliminations", "rankings", "explanations")
_NAMED = 20
"""Decisions named per kind of difference (the count of the rest follows)."""


class ExpectedRows:
    """A `RowBuilder` whose rows are spilled to `folder/<dataset>.parquet` as they pile up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.rows = RowBuilder()
        self._writers: dict[str, pq.ParquetWriter] = {}

    def spill(self, *, everything: bool = False) -> None:
        """Write the rows built so far (of the datasets with many pending, or all of them)."""
        for name in DATASETS:
            limit = _GROUP_ROWS if name in _GROUP_DATASETS else _SPILL_ROWS
            if not everything and self.rows.pending(name) < limit:
                continue
            batch = self.rows.take(name)
            if batch is not None:
                self.put(name, batch)

    def put(self, name: str, batch: pa.RecordBatch) -> None:
        """Write rows of dataset `name` built elsewhere (column-wise)."""
        writer = self._writers.get(name)
        if writer is None:
            path = self.folder / f"{name}.parquet"
            writer = self._writers[name] = pq.ParquetWriter(path, SCHEMAS[name])
        writer.write_batch(batch)

    def close(self) -> None:
        """Write what is left and finish the files."""
        self.spill(everything=True)
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def dataset(self, name: str) -> ds.Dataset:
        """The expected rows of dataset `name`."""
        path = self.folder / f"{name}.parquet"
        if not path.exists():
            return ds.dataset(SCHEMAS[name].empty_table())
        return ds.dataset(str(path), schema=SCHEMAS[name], format="parquet")


@contextlib.contextmanager
def _engine(spill: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(
        config={"memory_limit": MEMORY_LIMIT, "threads": 1, "temp_directory": str(spill)}
    )
    try:
        yield con
    finally:
        con.close()


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    rows = con.execute(query).fetchall()
    return int(rows[0][0]) if rows else 0


def _differences(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """How many rows `found` holds beyond `expected` and the other way round, as multisets
    (what `found EXCEPT ALL expected` and `expected EXCEPT ALL found` count). One set
    difference is enough: the rows both hold are `found` less the extra ones, so the missing
    ones are `expected` less those."""
    extra = _count(con, "SELECT count(*) FROM (FROM found EXCEPT ALL FROM expected)")
    shared = _count(con, "SELECT count(*) FROM found") - extra
    return extra, _count(con, "SELECT count(*) FROM expected") - shared


def _ids(con: duckdb.DuckDBPyConnection, left: str, right: str) -> tuple[list[str], int]:
    """Up to `_NAMED` decision ids in `left` and not in `right`, and how many there are."""
    query = f"SELECT DISTINCT decision_id FROM {left} EXCEPT SELECT decision_id FROM {right}"
    total = _count(con, f"SELECT count(*) FROM ({query})")
    named = [str(r[0]) for r in con.execute(f"{query} ORDER BY 1 LIMIT {_NAMED}").fetchall()]
    return named, total


def _views(con: duckdb.DuckDBPyConnection, expected: ExpectedRows, found: Path, name: str) -> None:
    """`found` and `expected`: dataset `name` as the bundle holds it and as the proven events
    make it, each a view over DuckDB's own Parquet reader (it streams under the memory limit,
    where a registered Arrow dataset is held by DuckDB's hash tables as it comes), its columns
    by name in schema order (the hive partition columns decoded from the file paths)."""
    schema, partitions = SCHEMAS[name], PARTITIONS[name]
    views = {
        "found": sorted(str(p) for p in (found / name).rglob("*.parquet")),
        "expected": [str(p) for p in [expected.folder / f"{name}.parquet"] if p.exists()],
    }
    for view, files in views.items():
        if not files:
            con.from_arrow(schema.empty_table()).create_view(view, replace=True)
            continue
        columns = [
            f"url_decode(regexp_extract(filename, '/{f.name}=([^/]*)/', 1)) AS {f.name}"
            if view == "found" and f.name in partitions
            else f'"{f.name}"'
            for f in schema
        ]
        relation = con.read_parquet(files, filename=True)
        relation.project(", ".join(columns)).create_view(view, replace=True)


def compare_datasets(
    expected: ExpectedRows,
    found: Path,
    problem: Callable[[str], None],
    prefix: str,
    unreadable: Callable[[str, Exception], None],
    datasets: tuple[str, ...] = DATASETS,
) -> None:
    """Compare each of `datasets` under `found` with the expected rows; `problem` gets each
    difference, `unreadable` each dataset that cannot be read."""
    with _engine(expected.folder) as con:
        for name in datasets:
            try:
                _views(con, expected, found, name)
                extra, missing = _differences(con)
            except (OSError, pa.ArrowException, duckdb.Error) as exc:
                unreadable(name, exc)
                continue
            if not extra and not missing:
                continue
            if name in ("decisions", "attempts"):
                forged, forged_total = _ids(con, "found", "expected")
                lost, lost_total = _ids(con, "expected", "found")
                for d in forged:
                    problem(f"{prefix}{name}: decision {d} has no proven event")
                for d in lost:
                    problem(f"{prefix}{name}: proven decision {d} is missing")
                more = forged_total + lost_total - len(forged) - len(lost)
                if more:
                    problem(f"{prefix}{name}: {more} more decisions differ")
                if not forged_total and not lost_total:
                    problem(f"{prefix}{name}: rows differ from what the proven events say")
            else:
                problem(
                    f"{prefix}{name}: {extra} rows the proven events do not make, and "
                    f"{missing} rows they make are missing"
                )
