"""Streaming Parquet writers: one `pyarrow.dataset.write_dataset` per dataset, fed record batches
from the exporter through a small bounded queue (so memory stays bounded whatever the size)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from reports._errors import ReportsError
from reports._schema import PARTITIONS, SCHEMAS

__all__ = ["DatasetWriter", "open_dataset", "partitioning", "read_dataset"]

_QUEUE = 4
_ROWS_PER_GROUP = 128 * 1024
_LIST_ROWS = 256
"""Rows per row group of the datasets whose rows hold catalog-long lists: the writer buffers a
row group in memory before it writes it, and 16,384 such rows would be hundreds of MB."""
_LIST_DATASETS = ("eliminations", "rankings")
_MIN_ROWS = 1024
"""Rows a partition (tenant × date) gathers before its row group is written. Every open
partition holds them, so memory is up to open partitions × this × ~400 bytes a decision row:
with 4,096, Arrow held ~80 MB more at 200,000 decisions (50 tenants) and the export of 1,000,000
peaked at 678 MB instead of 546 MB (bench/RESULTS.md, 2026-12-07)."""


def partitioning(name: str) -> ds.Partitioning | None:
    """The hive partitioning of dataset `name` (None when it is not partitioned)."""
    columns = PARTITIONS[name]
    if not columns:
        return None
    return ds.partitioning(pa.schema([(c, pa.string()) for c in columns]), flavor="hive")


class DatasetWriter:
    """Writes one dataset under `base/name` in a thread of its own."""

    def __init__(self, base: Path, name: str, prefix: str = "part-") -> None:
        self.name = name
        self.prefix = prefix
        self.path = base / name
        self.rows = 0
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"export-{name}", daemon=True)
        self._thread.start()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item

    def _run(self) -> None:
        lists = self.name in _LIST_DATASETS
        try:
            ds.write_dataset(
                self._batches(),
                self.path,
                schema=SCHEMAS[self.name],
                format="parquet",
                partitioning=partitioning(self.name),
                basename_template=self.prefix + "{i}.parquet",
                # An appended export adds files of its own prefix next to the earlier ones.
                existing_data_behavior="overwrite_or_ignore",
                file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
                # Every open partition (tenant × date) buffers a row group: keep them small.
                min_rows_per_group=_LIST_ROWS if lists else _MIN_ROWS,
                max_open_files=256,
                max_rows_per_group=_LIST_ROWS if lists else _ROWS_PER_GROUP,
                use_threads=True,
            )
        except BaseException as exc:  # handed to the exporter's task, which raises it
            self._error = exc
            while self._queue.get() is not None:
                pass

    def _check(self) -> None:
        if self._error is not None:
            raise ReportsError(f"writing dataset {self.name}: {self._error}") from self._error

    async def put(self, batch: pa.RecordBatch) -> None:
        """Queue a batch (waits while the writer is behind: the back pressure)."""
        self._check()
        self.rows += batch.num_rows
        await asyncio.to_thread(self._queue.put, batch)

    async def close(self) -> None:
        """Finish the dataset; an empty dataset is an empty folder."""
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join)
        self._check()
        self.path.mkdir(parents=True, exist_ok=True)


def open_dataset(base: Path, name: str) -> ds.Dataset:
    """A dataset written by `DatasetWriter`, opened lazily (partition columns included, schema
    exact): scans read it batch by batch."""
    path = base / name
    if not path.is_dir():
        raise ReportsError(f"{path}: no {name} dataset (not an export folder?)")
    files = sorted(str(p) for p in path.rglob("*.parquet"))
    if not files:
        return ds.dataset(SCHEMAS[name].empty_table())
    return ds.dataset(
        files,
        schema=SCHEMAS[name],
        format="parquet",
        partitioning=partitioning(name),
        partition_base_dir=str(path),
    )


def read_dataset(base: Path, name: str) -> pa.Table:
    """A dataset written by `DatasetWriter`, read whole (partition columns included)."""
    return open_dataset(base, name).to_table()
