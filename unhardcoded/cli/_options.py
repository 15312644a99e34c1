"""Options shared by the policy commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from router.core import Catalog

F = TypeVar("F", bound=Callable[..., object])


def catalog_option(func: F) -> F:
    """`--catalog FILE` (env `UNHARDCODED_CATALOG`; default: the bundled illustrative catalog)."""
    return click.option(
        "--catalog",
        "catalog_file",
        metavar="FILE",
        envvar="UNHARDCODED_CATALOG",
        default=None,
        help="Catalog JSON file ('-' for stdin). Default: the bundled illustrative catalog.",
    )(func)


def published_catalog_option(func: F) -> F:
    """`--catalog FILE` (env `UNHARDCODED_CATALOG`; default: the latest published version, else
    the bundled catalog)."""
    return click.option(
        "--catalog",
        "catalog_file",
        metavar="FILE",
        envvar="UNHARDCODED_CATALOG",
        default=None,
        help="Catalog JSON file ('-' for stdin). Default: the latest published version in the "
        "database, else the bundled illustrative catalog.",
    )(func)


def open_catalog(catalog_file: str | None, other_file: str | None = None) -> Catalog:
    """The catalog named by `--catalog`, or the bundled one. `other_file` is the command's other
    input: stdin can feed only one of them."""
    from router.services.catalogs import bundled_catalog, load_catalog

    if catalog_file == "-" and other_file == "-":
        raise click.UsageError("stdin ('-') can feed the policy or the catalog, not both")
    return bundled_catalog() if catalog_file is None else load_catalog(catalog_file)
