"""Real processes on loopback for the witness tests: `unhardcoded witness serve` and
`unhardcoded serve`, each started with `--port 0` and found by the address uvicorn prints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

CLI = [sys.executable, "-m", "unhardcoded"]


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: its own home, no inherited unhardcoded settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    return {**base, "UNHARDCODED_HOME": str(tmp_path / "home"), **extra}


def run(args: list[str], environ: dict[str, str], *, check: bool = True) -> str:
    """Run one CLI command to completion; its stdout."""
    done = subprocess.run(
        [*CLI, *args], env=environ, capture_output=True, text=True, check=False, timeout=300
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
    return done.stdout


@contextlib.contextmanager
def serving(args: list[str], environ: dict[str, str]) -> Iterator[str]:
    """Start a server command with `--port 0`; yield its base URL; stop it afterwards."""
    server = subprocess.Popen(
        [*CLI, *args, "--port", "0"], env=environ, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("the server did not start:\n" + "".join(lines))
        # Keep reading its log so that a chatty server never blocks on a full pipe.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        yield line.split("running on ")[1].split()[0]
    finally:
        server.terminate()
        server.wait(timeout=60)


def witness_init(folder: Path, name: str, log_key: str, environ: dict[str, str]) -> str:
    """Create a witness of one log; its vkey."""
    return run(
        ["witness", "init", "--name", name, "--dir", str(folder), "--log", log_key], environ
    ).strip()


def api_key(environ: dict[str, str]) -> str:
    """A key that can route and read (tenant acme)."""
    args = ["keys", "create", "--tenant", "acme", "--scope", "route", "--scope", "read:own"]
    return run(args, environ).strip()


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `condition` until it holds: the background submission has no other signal to
    await from another process. Bounded, so a broken submission fails instead of hanging."""
    for _ in range(600):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")
