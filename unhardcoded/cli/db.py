"""`unhardcoded db …`: database administration."""

from __future__ import annotations

import click

from unhardcoded.cli._common import reports_errors


@click.group()
def db() -> None:
    """Database administration (migrations).

    \b
    Example:
        unhardcoded db upgrade --db sqlite+aiosqlite:///./unhardcoded.db
    """


@db.command("upgrade")
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db).",
)
@reports_errors
def upgrade_command(url: str | None) -> None:
    """Create or migrate the database to the latest schema, immutability guards included.

    \b
    Example:
        unhardcoded db upgrade --db sqlite+aiosqlite:///./unhardcoded.db
    """
    import asyncio

    from sqlalchemy.engine import make_url

    from unhardcoded.db import upgrade
    from unhardcoded.settings import Settings

    target = url or Settings().database_url
    asyncio.run(upgrade(target))
    shown = make_url(target).render_as_string(hide_password=True)
    click.echo(f"database at head: {shown}")
