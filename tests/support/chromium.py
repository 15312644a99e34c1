"""Headless Chromium (the Debian `chromium` package) as a test instrument: the text a page shows
once rendered (`document.body.innerText`, through the DevTools protocol), and screenshots."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

__all__ = ["CHROMIUM", "rendered_text"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""The browser, or None where it is absent (the rendering tests skip, saying so)."""

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio"]


@contextlib.contextmanager
def _browser() -> Iterator[str]:
    """A headless Chromium; yields the DevTools websocket URL of its first page."""
    assert CHROMIUM is not None
    # Chromium's helper processes may still write to the profile as the browser exits.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                CHROMIUM,
                *_FLAGS,
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: its helpers end with it
        )
        try:
            assert process.stderr is not None
            for line in process.stderr:
                found = re.search(r"DevTools listening on ws://([^/]+)/", line)
                if found:
                    break
            else:
                raise RuntimeError("chromium exited before it listened for DevTools")
            with urllib.request.urlopen(f"http://{found.group(1)}/json/list") as answer:
                pages = [t for t in json.load(answer) if t["type"] == "page"]
            yield pages[0]["webSocketDebuggerUrl"]
        finally:
            process.terminate()
            process.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def rendered_text(page: Path) -> str:
    """The text Chromium shows for the HTML file `page`, once loaded."""
    ids = itertools.count(1)
    with _browser() as url, connect(url, max_size=None) as ws:

        def call(method: str, **params: Any) -> dict[str, Any]:
            number = next(ids)
            ws.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == number:
                    return dict(message.get("result", {}))

        call("Page.enable")
        call("Page.navigate", url=page.resolve().as_uri())
        while json.loads(ws.recv()).get("method") != "Page.loadEventFired":
            pass
        result = call(
            "Runtime.evaluate",
            expression="document.body.innerText + '\\n' + Array.from("
            "document.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')",
            returnByValue=True,
        )
        return str(result["result"]["value"])
