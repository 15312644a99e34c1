"""Keep docs/reports.md's dataset tables equal to `reports.SCHEMAS` (and their descriptions).

`python -m reports._reference --write` rewrites the part of docs/reports.md between the
`datasets:begin` and `datasets:end` markers; the test suite fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from reports._schema import schema_markdown

__all__ = ["BEGIN", "END", "REFERENCE_PATH", "render"]

REFERENCE_PATH = Path(__file__).resolve().parents[1] / "docs" / "reports.md"
BEGIN = "<!-- datasets:begin (python -m reports._reference --write) -->\n"
END = "<!-- datasets:end -->\n"


def render(document: str) -> str:
    """`document` with the generated tables between the markers."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{REFERENCE_PATH}: the dataset markers are missing")
    return head + BEGIN + "\n" + schema_markdown() + "\n" + END + tail


def _main(argv: list[str]) -> int:
    current = REFERENCE_PATH.read_text(encoding="utf-8")
    text = render(current)
    if argv == ["--write"]:
        REFERENCE_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {REFERENCE_PATH}")
        return 0
    if text != current:
        print(f"{REFERENCE_PATH} is stale: run python -m reports._reference --write")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
