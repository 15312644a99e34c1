"""What every command shares: turning package errors into a one-line message and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from ledger import LedgerError
from reports import ReportsError
from router.core import RouterError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_BAD_INPUT = 2


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; a package error becomes `error: …` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (RouterError, LedgerError, ReportsError) as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_BAD_INPUT) from None

    return wrapper
