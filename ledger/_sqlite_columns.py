"""The column pages of `Ledger.scan_batches` on SQLite, read by Apache Arrow's ADBC SQLite driver
(`adbc-driver-sqlite`): the driver steps the statement and builds the Arrow columns in C, so a
page never becomes Python objects per event (the stdlib `sqlite3` rows turned into columns cost
4.2–5.2 µs of CPU per event on the 1,000,000-decision ledger; this 1.7–2.0), and the GIL is
released while it works, so the caller works on the last page on the other core meanwhile.

One ADBC connection on a thread of its own (the reader of proofs keeps its stdlib connection):
each page is one statement in autocommit, i.e. one read transaction of its own, as before.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import adbc_driver_manager as adbc
import adbc_driver_sqlite
import pyarrow as pa

from ledger._batches import EVENT_BATCH_SCHEMA, PageQuery
from ledger._errors import StoreUnavailableError

__all__ = ["ColumnReader"]

_BATCH_ROWS = adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value
# The settings of every ledger connection that matter to a reader (`ledger._sqlite._configure`):
# the journal mode is the file's, set by the connections that write.
_SETTINGS = ("PRAGMA busy_timeout={busy_ms}", "PRAGMA secure_delete=ON")


class ColumnReader:
    """Reads pages of a scan (`PageQuery`) from the SQLite file at `path` as `EVENT_BATCH_SCHEMA`
    batches, on one thread with one ADBC connection, opened at the first read."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path, self._busy_ms = path, busy_timeout_ms
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-columns")
        self._db: adbc.AdbcDatabase | None = None
        self._conn: adbc.AdbcConnection | None = None
        # The statement of the last scan, prepared once: a scan's pages differ only in their
        # parameters. (sql, rows per batch, statement)
        self._last: tuple[str, int, adbc.AdbcStatement] | None = None

    async def read(self, query: PageQuery, start: int, limit: int) -> pa.RecordBatch:
        """At most `limit` events of `query` from position `start` on."""
        loop = asyncio.get_running_loop()
        params = query.params(start, limit)
        return await loop.run_in_executor(self._executor, self._read, query.sql, params, limit)

    def _read(self, sql: str, params: list[Any], limit: int) -> pa.RecordBatch:
        try:
            statement = self._statement(sql, limit)
            statement.bind(
                pa.record_batch(
                    [pa.array([value]) for value in params],
                    names=[f"p{i}" for i in range(len(params))],
                )
            )
            stream, _ = statement.execute_query()
            table = pa.RecordBatchReader.from_stream(stream).read_all()
        except adbc.Error as exc:
            raise StoreUnavailableError(f"reading events from {self._path} failed: {exc}") from exc
        return _page(table)

    def _statement(self, sql: str, limit: int) -> adbc.AdbcStatement:
        if self._last is not None and self._last[:2] == (sql, limit):
            return self._last[2]
        if self._last is not None:
            self._last[2].close()
            self._last = None
        statement = adbc.AdbcStatement(self._connection())
        try:
            # The whole page in one batch: no concatenation, and the column types are inferred
            # from every row of it.
            statement.set_options(**{_BATCH_ROWS: str(limit)})
            statement.set_sql_query(sql)
            statement.prepare()
        except BaseException:
            statement.close()
            raise
        self._last = (sql, limit, statement)
        return statement

    def _connection(self) -> adbc.AdbcConnection:
        if self._conn is None:
            db = adbc_driver_sqlite.connect(self._path)
            try:
                conn = adbc.AdbcConnection(db)
                with adbc.AdbcStatement(conn) as statement:
                    for setting in _SETTINGS:
                        statement.set_sql_query(setting.format(busy_ms=self._busy_ms))
                        statement.execute_update()
            except BaseException:
                db.close()
                raise
            self._db, self._conn = db, conn
        return self._conn

    def _close(self) -> None:
        if self._last is not None:
            self._last[2].close()
            self._last = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._db is not None:
            self._db.close()
            self._db = None

    async def close(self) -> None:
        """Close the connection (on its thread) and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


def _page(table: pa.Table) -> pa.RecordBatch:
    """The driver's result as one batch of `EVENT_BATCH_SCHEMA`. The driver infers each column's
    type from the values it reads (an empty result has no types to infer; a TEXT value in a BLOB
    column comes as binary already), so the columns are checked and cast where they differ."""
    if table.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=EVENT_BATCH_SCHEMA)
    table = table.combine_chunks()
    columns = []
    for field, column in zip(EVENT_BATCH_SCHEMA, table.columns, strict=True):
        chunk = column.chunk(0)
        columns.append(chunk if chunk.type == field.type else chunk.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=EVENT_BATCH_SCHEMA)
