"""`Metrics` across processes: under `serve --workers N` every process counts into one
directory and the exposition sums them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.services.gateway import MULTIPROCESS_DIR_ENV, Metrics

REPO = Path(__file__).resolve().parents[2]

_COUNT = """
import sys
from router.services.gateway import Metrics
metrics = Metrics()
n = int(sys.argv[1])
for _ in range(n):
    metrics.labelled(metrics.decisions, "routed").inc()
    metrics.labelled(metrics.request_latency, "/v1/chat/completions").observe(0.002)
metrics.attempt_record_failures.inc(n)
"""
_EXPOSE = (
    "import sys; from router.services.gateway import Metrics; "
    "sys.stdout.write(Metrics().exposition().decode())"
)


def _run(code: str, *args: str, shared: Path) -> str:
    env = {**os.environ, MULTIPROCESS_DIR_ENV: str(shared), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_exposition_sums_every_process_of_the_directory(tmp_path: Path) -> None:
    _run(_COUNT, "3", shared=tmp_path)
    _run(_COUNT, "4", shared=tmp_path)
    text = _run(_EXPOSE, shared=tmp_path)  # a third process, which counted nothing itself
    assert 'unhardcoded_decisions_total{outcome="routed"} 7.0' in text
    assert "unhardcoded_attempt_record_failures_total 7.0" in text
    latency = 'unhardcoded_http_request_seconds_count{route="/v1/chat/completions"} 7.0'
    assert latency in text
    assert (
        'unhardcoded_http_request_seconds_bucket{le="0.0025",route="/v1/chat/completions"} 7.0'
        in text
    )


def test_a_variable_set_after_prometheus_client_was_imported_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process stores values in memory (the variable was unset at import): reading the
    # directory's files would hide every count of this process.
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    metrics = Metrics()
    assert metrics.multiprocess_dir is None
    metrics.labelled(metrics.decisions, "routed").inc()
    assert 'unhardcoded_decisions_total{outcome="routed"} 1.0' in metrics.exposition().decode()
