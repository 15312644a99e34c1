"""The example in docs/providers.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_providers_page_example_runs() -> None:
    page = (ROOT / "docs" / "providers.md").read_text()
    example = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert example is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_PROVIDER_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", example.group(1)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "[echo provider: not a real model] Hello" in result.stdout
    assert "Usage(prompt_tokens=1, completion_tokens=7) stop" in result.stdout
