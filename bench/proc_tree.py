"""Run a command and measure its whole process tree: CPU, the peak of the summed RSS, and the CPU
of each process.

`/usr/bin/time -v` gives the CPU of a command and its waited-for children, but its "maximum
resident set size" is that of the largest single process: a command that runs worker processes
beside itself (e.g. `bundle verify --workers 2`) holds more than that at once. This samples
`/proc` every 50 ms for the command and all its descendants:

    python bench/proc_tree.py unhardcoded bundle verify t1m.zip --key KEY --json

Prints (on stderr) the wall time, the CPU (user + sys, from the children's resource usage: exact
for the processes that were waited for), the peak of the summed RSS and how many processes there
were then, the load average before and after, and each process's CPU as last sampled (a process
that ended between two samples loses at most 50 ms).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")
_EVERY = 0.05


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, i = [pid], 0
    while i < len(found):
        tasks = Path(f"/proc/{found[i]}/task")
        i += 1
        try:
            for task in tasks.iterdir():
                found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue  # it ended meanwhile
    return found


def _sample(pid: int) -> tuple[int, float, str] | None:
    """RSS in bytes, CPU seconds and command line of a process (None: it ended)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        line = Path(f"/proc/{pid}/cmdline").read_bytes()[:160].replace(b"\0", b" ")
    except OSError:
        return None
    return pages * _PAGE, (int(fields[11]) + int(fields[12])) / _TICK, line.decode(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the command's exit status."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        print("usage: python bench/proc_tree.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    load, start = os.getloadavg()[0], time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak, processes = 0, 0
    cpu: dict[int, tuple[float, str]] = {}
    while child.poll() is None:
        pids = _tree(child.pid)
        total = 0
        for pid in pids:
            sample = _sample(pid)
            if sample is not None:
                total += sample[0]
                cpu[pid] = sample[1:]
        if total > peak:
            peak, processes = total, len(pids)
        time.sleep(_EVERY)
    wall = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"exit {child.returncode}: wall {wall:.1f} s, CPU {used.ru_utime + used.ru_stime:.1f} s "
        f"(user {used.ru_utime:.1f}, sys {used.ru_stime:.1f}), peak RSS of the tree "
        f"{peak / 2**20:.0f} MB ({processes} processes), load {load:.1f} -> "
        f"{os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    for pid, (seconds, line) in sorted(cpu.items()):
        print(f"  {pid}: {seconds:.1f} s CPU  {line[:100]}", file=sys.stderr)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
