"""The `unhardcoded` command line. Each command group lives in its own module and stays thin:
it parses options, calls a service, and prints. Errors from the packages become exit code 2 with
a one-line message (see `unhardcoded.cli._common`), never a traceback.

The root group loads a command's module only when that command runs or its help is shown
(`unhardcoded.cli._lazy`), and the command modules import the services inside their bodies, so
`unhardcoded --help`, `unhardcoded rank` and shell completion do not pay for pandas, pyarrow or
the gateway.
"""

from __future__ import annotations

import click

from unhardcoded.cli._lazy import LazyGroup

_COMMANDS = {
    "bundle": "unhardcoded.cli.bundle.bundle",
    "catalog": "unhardcoded.cli.catalog.catalog",
    "db": "unhardcoded.cli.db.db",
    "demo": "unhardcoded.cli.demo.demo",
    "export": "unhardcoded.cli.export.export",
    "keys": "unhardcoded.cli.keys.keys",
    "ledger": "unhardcoded.cli.ledger.ledger",
    "policy": "unhardcoded.cli.policy.policy_group",
    "rank": "unhardcoded.cli.rank.rank",
    "replay": "unhardcoded.cli.replay.replay",
    "report": "unhardcoded.cli.report.report",
    "serve": "unhardcoded.cli.serve.serve",
    "witness": "unhardcoded.cli.witness.witness",
}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, eager (click's documented callback pattern), reading the version only then."""
    if not value or ctx.resilient_parsing:
        return
    from unhardcoded import __version__

    click.echo(f"unhardcoded, version {__version__}")
    ctx.exit()


@click.group(
    cls=LazyGroup,
    lazy_subcommands=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def main() -> None:
    """unhardcoded: per-request LLM routing policies with a tamper-evident audit ledger.

    \b
    Example:
        unhardcoded --help
    """


__all__ = ["main"]
