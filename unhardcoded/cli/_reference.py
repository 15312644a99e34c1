"""Generate `docs/cli.md` from the click command tree, so the CLI reference never drifts.

`python -m unhardcoded.cli._reference --write` rewrites the file; the test suite fails when the
committed file differs from what this module renders (see tests/test_docs_cli_reference.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from unhardcoded.cli import main

REFERENCE_PATH = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

_HEADER = """# CLI reference

Generated from the command line itself by `python -m unhardcoded.cli._reference --write`;
the test suite fails when this file and the code disagree. Every command has a runnable example.

## Conventions

- **Errors**: every bad input — a usage mistake, an invalid file, a database that cannot be opened,
  an output folder that cannot be written (refused before any work), an invalid setting — is one
  `error: …` line on stderr and exit code 2, never a traceback (other codes are verdicts, given
  in each command's help: `ledger verify` 1 when tampered, `rank` 3 when no entry passes). An
  unexpected error is one line with exit code 70; `UNHARDCODED_DEBUG=1` shows its traceback.
- **`--json`**: every command a script calls prints JSON with `--json`, and then prints its
  errors as JSON too, on stdout: `{"error": {"type", "message"}}` (besides the `error:` line).
- **`--db URL`**: `sqlite://` URLs and plain paths are read as `sqlite+aiosqlite://`,
  `postgres://`, `postgresql://` and other drivers' PostgreSQL URLs as `postgresql+asyncpg://`,
  with a `note:` on stderr.
- **Times** (`--since`, `--until`, `--as-of`): ISO 8601 dates or date-times, `2026-12-01`,
  `2026-12-01T10:00Z`, `2026-12-01T10:00:00+01:00`; without an offset they are UTC.
- **Progress**: `--progress/--no-progress` on every long command; by default progress shows when
  stderr is a terminal.
- **Files** are created private to the user (0600, folders 0700); `UNHARDCODED_UMASK` (octal,
  e.g. `027`) changes that (docs/operations.md).

## Shell completion

Completion of commands, options and choices comes from click. Enable it once per shell:

<!-- no-run -->
```sh
# bash (~/.bashrc)
eval "$(_UNHARDCODED_COMPLETE=bash_source unhardcoded)"
# zsh (~/.zshrc)
eval "$(_UNHARDCODED_COMPLETE=zsh_source unhardcoded)"
# fish
_UNHARDCODED_COMPLETE=fish_source unhardcoded > ~/.config/fish/completions/unhardcoded.fish
```

Sourcing the script at every shell start is cheap: the command line loads a command's module only
when that command runs or is listed, and imports no database driver, pandas or pyarrow to list
them (`bench/bench_cli_startup.py` measures the start-up). To generate the script once instead:

```sh
_UNHARDCODED_COMPLETE=bash_source unhardcoded > unhardcoded-complete.bash
grep -c "complete -o nosort -F _unhardcoded_completion unhardcoded" unhardcoded-complete.bash
```
"""


def walk_commands(
    command: click.Command = main,
    path: tuple[str, ...] = ("unhardcoded",),
    parent: click.Context | None = None,
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command of the tree, depth first, with its full path and a context for its help."""
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=100,
        **({} if parent else dict(main.context_settings)),
    )
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from walk_commands(sub, (*path, name), ctx)


def render() -> str:
    """Render the whole command tree's help, one section per command, as Markdown."""
    parts = [_HEADER]
    for path, command, ctx in walk_commands():
        level = "#" * min(len(path) + 1, 4)
        parts.append(f"{level} `{' '.join(path)}`\n\n```text\n{command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


def _main(argv: list[str]) -> int:
    text = render()
    if argv == ["--write"]:
        REFERENCE_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {REFERENCE_PATH}")
        return 0
    if argv == ["--check"]:
        current = REFERENCE_PATH.read_text(encoding="utf-8") if REFERENCE_PATH.exists() else ""
        if current != text:
            print(f"{REFERENCE_PATH} is stale: run python -m unhardcoded.cli._reference --write")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
