"""`unhardcoded keys …`: API keys of the gateway (tenant + scopes; stored hashed)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from unhardcoded.cli._common import reports_errors

if TYPE_CHECKING:
    from router.services.gateway import KeyStore

T = TypeVar("T")

# The gateway's scopes (`router.services.gateway.SCOPES`), spelled out so that listing the
# commands does not import the gateway; tests/test_cli_lazy.py checks the two are equal.
SCOPE_CHOICES = ("route", "read:own", "read:all", "admin")

_db_option = click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db).",
)


def _run(url: str | None, body: Callable[[KeyStore], Awaitable[T]]) -> T:
    import asyncio

    from router.services.gateway import KeyStore
    from unhardcoded.db import create_engine, upgrade
    from unhardcoded.settings import Settings

    async def main() -> T:
        target = url or Settings().database_url
        await upgrade(target)
        engine = create_engine(target)
        try:
            return await body(KeyStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@click.group()
def keys() -> None:
    """API keys of the gateway: each maps to a tenant and scopes.

    Scopes: route (chat completions and /x/rank), read:own (the tenant's decisions), read:all
    (every tenant's decisions), admin (everything). Only a SHA-256 digest of each key is stored.

    \b
    Example:
        unhardcoded keys create --tenant acme --scope route --scope read:own
    """


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant the key acts for.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPE_CHOICES),
    help="A scope (repeat for several).",
)
@click.option("--label", default="", help="A note to recognise the key by.")
@_db_option
@reports_errors
def create(tenant: str, scopes: tuple[str, ...], label: str, url: str | None) -> None:
    """Create a key and print it — once: only its digest is stored.

    \b
    Example:
        unhardcoded keys create --tenant acme --scope route --scope read:own --label backend
    """
    created = _run(url, lambda store: store.create(tenant, scopes, label))
    click.echo(created.secret)
    click.echo(
        f"key {created.key.key_id} for tenant {tenant} ({' '.join(created.key.scopes)}): "
        "store it now, it is not shown again",
        err=True,
    )


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_db_option
@reports_errors
def list_keys(tenant: str | None, as_json: bool, url: str | None) -> None:
    """List keys (never their secrets): id, tenant, scopes, label, revoked or not.

    \b
    Example:
        unhardcoded keys list
    """
    found = _run(url, lambda store: store.list(tenant))
    for key in found:
        if as_json:
            click.echo(json.dumps(key.to_json()))
        else:
            state = "revoked" if key.revoked_at_us is not None else "active"
            click.echo(
                f"{key.key_id}  {key.tenant}  {','.join(key.scopes)}  {state}  {key.label}".rstrip()
            )


@keys.command("revoke")
@click.argument("key_id")
@_db_option
@reports_errors
def revoke(key_id: str, url: str | None) -> None:
    """Revoke a key by its id (the 12 hex digits after `uhk_`). Running servers stop accepting
    it within their key cache time (2 s by default).

    \b
    Example:
        unhardcoded keys revoke "$(unhardcoded keys create --tenant t --scope route | cut -c5-16)"
    """
    key = _run(url, lambda store: store.revoke(key_id))
    click.echo(f"revoked {key.key_id} (tenant {key.tenant})")
