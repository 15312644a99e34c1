"""`unhardcoded db …`: database administration."""

from __future__ import annotations

import json

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._records import db_option


@click.group()
def db() -> None:
    """Database administration (migrations).

    \b
    Example:
        unhardcoded db upgrade --db sqlite+aiosqlite:///./unhardcoded.db
    """


@db.command("upgrade")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_errors
def upgrade_command(url: str | None, as_json: bool) -> None:
    """Create or migrate the database to the latest schema, immutability guards included.

    This is also how the ledger's tables are added on purpose to a database that holds other
    tables (the other commands refuse such a database).

    \b
    Example:
        unhardcoded db upgrade --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded db upgrade --json
    """
    import asyncio

    from sqlalchemy.engine import make_url

    from unhardcoded.db import upgrade
    from unhardcoded.settings import Settings

    target = url or Settings().database_url
    asyncio.run(upgrade(target, adopt=True))
    shown = make_url(target).render_as_string(hide_password=True)
    if as_json:
        click.echo(json.dumps({"database": shown, "at_head": True}))
    else:
        click.echo(f"database at head: {shown}")
