"""What the report commands share: `--tenant`, `--since`/`--until` (UTC unless an offset is
given), running a body on the ledger, and a progress bar on stderr."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ledger import Ledger

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Instant(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time; without an offset it is UTC (a date is its midnight)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01 or "
                "2026-11-01T12:00:00Z)",
                param,
                ctx,
            )
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def period_options(func: F) -> F:
    """`--since TIME` (included) and `--until TIME` (excluded)."""
    func = click.option(
        "--until",
        type=Instant(),
        help="Decisions recorded before this time (UTC unless an offset is given; excluded).",
    )(func)
    return click.option(
        "--since",
        type=Instant(),
        help="Decisions recorded at or after this time (UTC unless an offset is given).",
    )(func)


_M_ARENA_MAX = -8


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
