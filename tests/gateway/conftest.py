"""Fixtures: the loopback fake providers and a gateway in front of them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway._harness import Gateway, provider_env
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    fake_anthropic,
    fake_openai,
)

__all__ = ["fake_anthropic", "fake_openai"]


class Captured(logging.Handler):
    """Every formatted log line of the `unhardcoded` loggers."""

    def __init__(self) -> None:
        super().__init__()
        from unhardcoded.app import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs() -> Iterator[Captured]:
    """The JSON log lines written while the test runs (level DEBUG)."""
    handler = Captured()
    logger = logging.getLogger("unhardcoded")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture
def gateway(
    tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> Iterator[Gateway]:
    """A gateway routing the test catalog to the fakes (operator keys from its environment)."""
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    with Gateway(tmp_path, env) as running:
        yield running
