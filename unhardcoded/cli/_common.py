"""What every command shares: turning package errors into a one-line message and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

EXIT_BAD_INPUT = 2

# The error root of each package, by module and name. They are looked up in `sys.modules` rather
# than imported: importing `reports` costs pandas and pyarrow, and an error of a package that was
# never imported cannot have been raised.
_ERROR_ROOTS = (
    ("router.core", "RouterError"),
    ("ledger", "LedgerError"),
    ("reports", "ReportsError"),
)


def _loaded_error_roots() -> tuple[type[BaseException], ...]:
    roots: list[type[BaseException]] = []
    for module_name, name in _ERROR_ROOTS:
        root = getattr(sys.modules.get(module_name), name, None)
        if isinstance(root, type) and issubclass(root, BaseException):
            roots.append(root)
    return tuple(roots)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; a package error (`RouterError`, `LedgerError`, `ReportsError`) becomes
    `error: …` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _loaded_error_roots()):
                raise
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_BAD_INPUT) from None

    return wrapper
