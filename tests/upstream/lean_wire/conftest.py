"""Every LeanWire test runs on asyncio's loop and on uvloop, the loop `serve` runs on through
uvicorn: the two differ in how a transport reports a failed write and hands out its socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
