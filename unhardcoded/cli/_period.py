"""What the report commands share: running a body on the ledger with bounded memory, and a
progress bar on stderr (`--since`/`--until` and `--progress` are in `unhardcoded.cli._options`)."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ledger import Ledger

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


_M_ARENA_MAX = -8

# Arrow's C++ code (the dataset writer, the JSON and Parquet readers) allocates from the C++
# default pool, which Arrow picks once, from this variable, at its first allocation (while
# pyarrow is imported): `pa.set_memory_pool` in `bounded_memory` only reaches the calls made
# from Python. Set here, before the commands that use this module import pyarrow, so every
# Arrow buffer goes through the system allocator (mimalloc's 1 GiB arena kept ~40 MB resident
# after a tenant's export; bench/RESULTS.md). An explicit setting in the environment wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def bounded_memory() -> None:
    """Allocator settings for long streaming exports (measured by bench/bench_export.py).

    Arrow's default allocator keeps freed buffers cached per thread, and glibc gives every
    thread its own malloc arena; with the exporter's reader, parser and writer threads both
    hold on to memory that was freed long ago. The system allocator with at most two arenas
    keeps the resident set near what is live."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc (musl): nothing to tune
            return
        libc.mallopt(_M_ARENA_MAX, 2)


def run_on_ledger(url: str | None, home: Path | None, body: Callable[[Ledger], Awaitable[T]]) -> T:
    """Run `body` on the ledger at `url` (settings apply)."""
    import asyncio

    from unhardcoded.db import migrated_ledger
    from unhardcoded.settings import Settings

    settings = Settings()
    bounded_memory()

    async def main() -> T:
        async with migrated_ledger(url or settings.database_url, home=home or settings.home) as led:
            return await body(led)

    return asyncio.run(main())


class ProgressBar:
    """The exporter's progress callback as a click progress bar on stderr."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        """Finish the bar (a no-op when nothing was shown)."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
