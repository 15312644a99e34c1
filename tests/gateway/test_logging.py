"""`configure_logging`: every logger of the project writes JSON lines, the services' too."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from unhardcoded.app import configure_logging


@pytest.fixture
def restored() -> Iterator[None]:
    """The loggers' configuration as it was before the test."""
    names = ("unhardcoded", "router", "ledger", "reports")
    trees = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    saved = [(t.handlers[:], t.level, t.propagate) for t in trees]
    yield
    for tree, (handlers, level, propagate) in zip(trees, saved, strict=True):
        tree.handlers[:], tree.level, tree.propagate = handlers, level, propagate
    logging.captureWarnings(False)


def test_a_service_logger_writes_json_lines_with_the_exception_class(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")  # its handler writes to the stderr of this moment: captured
    try:
        raise TimeoutError("the ledger did not answer")
    except TimeoutError:
        logging.getLogger("router.services.gateway").exception("recording attempt 1 failed")
    logging.getLogger("router.services.upstream").info("upstream attempt failed: x [timeout]")
    logging.getLogger("router.services.upstream").debug("below the level")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["level"], r["msg"]) for r in lines] == [
        ("router.services.gateway", "error", "recording attempt 1 failed"),
        ("router.services.upstream", "info", "upstream attempt failed: x [timeout]"),
    ]
    assert lines[0]["exception"] == "TimeoutError"
    assert "the ledger did not answer" not in json.dumps(lines)  # the class, not the text


def test_other_libraries_and_python_warnings_write_json_lines_too(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    configure_logging("INFO")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    logging.getLogger("some.library").info("below the root's level")
    warnings.warn("a deprecated call", DeprecationWarning, stacklevel=1)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["level"]) for r in lines] == [
        ("asyncio", "error"),
        ("py.warnings", "warning"),
    ]
