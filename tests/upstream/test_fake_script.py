"""The fake providers also run from a plain shell, as the benchmark uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("protocol", "path", "headers", "body"),
    [
        ("openai", "/chat/completions", {"authorization": "Bearer k-123"}, {}),
        (
            "anthropic",
            "/v1/messages",
            {"x-api-key": "k-123", "anthropic-version": "2023-06-01"},
            {"max_tokens": 5},
        ),
    ],
)
def test_module_serves_until_terminated(
    protocol: str, path: str, headers: dict[str, str], body: dict[str, int]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_providers", protocol, "--api-key", "k-123"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        request = {"model": "m", "messages": [{"role": "user", "content": "ping"}], **body}
        response = httpx.post(f"{base_url}{path}", json=request, headers=headers)
        assert response.status_code == 200
        assert "fake reply to: ping" in response.text
        refused = httpx.post(f"{base_url}{path}", json=request)
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
