"""The `unhardcoded` command line. Each command group lives in its own module and stays thin:
it parses options, calls a service, and prints. Errors from the packages become exit code 2 with
a one-line message (see `unhardcoded.cli._common`), never a traceback."""

from __future__ import annotations

import click

from unhardcoded import __version__
from unhardcoded.cli.bundle import bundle
from unhardcoded.cli.catalog import catalog
from unhardcoded.cli.db import db
from unhardcoded.cli.demo import demo
from unhardcoded.cli.export import export
from unhardcoded.cli.keys import keys
from unhardcoded.cli.ledger import ledger
from unhardcoded.cli.policy import policy_group
from unhardcoded.cli.rank import rank
from unhardcoded.cli.replay import replay
from unhardcoded.cli.report import report
from unhardcoded.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="unhardcoded")
def main() -> None:
    """unhardcoded: per-request LLM routing policies with a tamper-evident audit ledger.

    \b
    Example:
        unhardcoded --help
    """


main.add_command(bundle)
main.add_command(catalog)
main.add_command(db)
main.add_command(demo)
main.add_command(export)
main.add_command(keys)
main.add_command(ledger)
main.add_command(policy_group)
main.add_command(rank)
main.add_command(replay)
main.add_command(report)
main.add_command(serve)

__all__ = ["main"]
