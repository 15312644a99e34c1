"""A click group that imports a command's module only when that command is needed.

This is click's documented pattern ("Complex Applications / Lazily Loading Subcommands"): the
group knows each command by name and import path, and `get_command` imports the module on first
use. `unhardcoded rank` then never imports the modules of `export` or `serve`. The command
modules themselves keep their heavy imports (pandas, pyarrow, SQLAlchemy, the services) inside
the command bodies, because the root `--help` and shell completion list every command's short
help, which imports every command module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from unhardcoded.cli._common import run_main

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """A group whose subcommands are `{name: "package.module.attribute"}` import paths."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's `main`; in standalone mode every error ends as one `error: …` line
        (`unhardcoded.cli._common.run_main`) instead of click's usage block or a traceback."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        run_main(
            lambda: super(LazyGroup, self).main(
                argv, prog_name, complete_var, standalone_mode=False, **extra
            ),
            argv,
        )

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_subcommands[cmd_name].rpartition(".")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_subcommands[cmd_name]} is not a click command")
        return command
