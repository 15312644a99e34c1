"""A bundle's zip as the verifier reads it: its files, their SHA-256s against the manifest, and
the event lines (docs/bundles.md, "What `bundle verify` checks", steps 1 and 3).

Every file is decompressed once: the SHA-256 of `ledger/events.jsonl` (the largest file) is
taken while its lines are read, and the other files' digests are kept for the checks that read
them again (`report.json`)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ledger import Checkpoint, VerifierKey
from reports._bundle import BUNDLE_FORMAT, CHECKPOINT, EVENTS, MANIFEST
from reports._events import Problem, open_bundle_checkpoint
from reports._verify_events import EventBatch, EventReader

__all__ = ["BundleZip"]

_BLOCK = 1 << 20
"""Bytes read from the zip at a time."""
_AHEAD = 4
"""Blocks of the event lines read ahead."""


def _read_ahead(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """`blocks`, each read (inflated and hashed) on a thread of its own while the ones before it
    are worked on: zlib and hashlib let go of the interpreter lock while they work."""
    with ThreadPoolExecutor(1, thread_name_prefix="unhardcoded-zip") as reader:
        ahead = deque(reader.submit(next, blocks, b"") for _ in range(_AHEAD))
        while block := ahead.popleft().result():
            ahead.append(reader.submit(next, blocks, b""))
            yield block


class BundleZip:
    """The files of an opened bundle; each problem goes to `problem`; `executor` checks the
    event lines (`reports._verify_events`; None: this process)."""

    def __init__(
        self, archive: zipfile.ZipFile, problem: Problem, executor: Executor | None = None
    ) -> None:
        self.archive = archive
        self.problem = problem
        self.executor = executor
        self.names = [i.filename for i in archive.infolist() if not i.is_dir()]
        self._digests: dict[str, str] = {}
        self._events_digest: str | None = None
        """The manifest's SHA-256 of the events file, checked once the lines are read."""

    def events_read(self) -> None:
        """The event lines will not be read again: the executor's processes end (their memory
        is given back before the data is compared)."""
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None

    def read(self, name: str) -> bytes | None:
        """A file's bytes (None: missing, or unreadable and said so)."""
        try:
            return self.archive.read(name)
        except KeyError:
            return None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")
            return None

    def blocks(self, name: str) -> Iterator[bytes]:
        """A file's bytes a block at a time, its SHA-256 kept when it is read to the end."""
        digest = hashlib.sha256()
        try:
            with self.archive.open(name) as handle:
                while block := handle.read(_BLOCK):
                    digest.update(block)
                    yield block
        except KeyError:
            return
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")
            return
        self._digests[name] = digest.hexdigest()

    def sha256(self, name: str) -> str | None:
        """The SHA-256 of a file in the zip (None: missing or unreadable)."""
        if name not in self._digests:
            for _ in self.blocks(name):
                pass
        return self._digests.get(name)

    def lines(self, name: str) -> Iterator[str] | None:
        """The lines of a text file in the zip, read as they come (None: missing)."""
        if name not in self.names:
            return None

        def read() -> Iterator[str]:
            try:
                with self.archive.open(name) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
                    for line in text:
                        yield line.rstrip("\r\n")
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                self.problem(f"{name}: unreadable in the zip ({exc})")

        return read()

    def extract(self, name: str, target: Path) -> None:
        """Copy a file out of the zip in blocks."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.archive.open(name) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, _BLOCK)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            self.problem(f"{name}: unreadable in the zip ({exc})")

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, once it lists exactly the files there are with their SHA-256s (the
        events file's digest is compared when `events` has read it)."""
        raw = self.read(MANIFEST)
        if raw is None:
            self.problem(f"{MANIFEST}: missing")
            return None
        try:
            manifest = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.problem(f"{MANIFEST}: not JSON ({exc})")
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            self.problem(f"{MANIFEST}/format: expected {BUNDLE_FORMAT!r}")
            return None
        files = manifest.get("files")
        if not isinstance(files, dict):
            self.problem(f"{MANIFEST}/files: expected an object of file name → SHA-256")
            return None
        present = set(self.names) - {MANIFEST}
        for name in sorted(set(files) - present):
            self.problem(f"{name}: listed in the manifest but not in the bundle")
        for name in sorted(present - set(files)):
            self.problem(f"{name}: in the bundle but not listed in the manifest")
        for name in sorted(present & set(files)):
            if name == EVENTS:
                self._events_digest = str(files[name])
                continue
            digest = self.sha256(name)
            if digest is not None and digest != files[name]:
                self.problem(f"{name}: SHA-256 {digest} is not the manifest's {files[name]}")
        if len(self.names) != len(set(self.names)):
            self.problem("the zip holds two files with the same name")
        return manifest

    def checkpoint(self, key: VerifierKey) -> Checkpoint | None:
        """The checkpoint once it opens with `key` (None: said why)."""
        note = self.read(CHECKPOINT)
        if note is None:
            self.problem(f"{CHECKPOINT}: missing")
            return None
        return open_bundle_checkpoint(CHECKPOINT, note, key, self.problem)

    def events(
        self, checkpoint: Checkpoint | None, problem: Problem | None = None
    ) -> Iterator[EventBatch]:
        """The bundled events that pass every check (`reports._verify_events`), a batch at a
        time, in file order; what fails goes to `problem` (default: the verification's). The
        first reading to the end compares the file's SHA-256 with the manifest's."""
        report = self.problem if problem is None else problem
        if EVENTS not in self.names:
            report(f"{EVENTS}: missing")
            return
        first = EVENTS not in self._digests
        reader = EventReader(EVENTS, checkpoint, report, self.executor)
        blocks = self.blocks(EVENTS)
        yield from reader.batches(_read_ahead(blocks))
        for _ in blocks:  # a file that stopped being read (not UTF-8) is still hashed
            pass
        digest, listed = self._digests.get(EVENTS), self._events_digest
        if first and digest is not None and listed is not None and digest != listed:
            self.problem(f"{EVENTS}: SHA-256 {digest} is not the manifest's {listed}")
