"""What every command shares: one way to report an error.

Every error a command meets ends as one `error: …` line on stderr and a non-zero exit code,
never a traceback: the package errors (`RouterError`, `LedgerError`, `ReportsError`), file
system errors, invalid settings and click's own usage errors alike. A command run with `--json`
also prints the error as one JSON object on stdout (`{"error": {"type", "message"}}`), so a
script reads one format. The package errors are translated by `@reports_errors` on each command
body; the root group (`unhardcoded.cli._lazy.LazyGroup.main`) prints every error the same way.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
"""An error that is not the input's fault (a bug): sysexits' EX_SOFTWARE."""

DEBUG_ENV = "UNHARDCODED_DEBUG"
"""Set to 1 to see the traceback of an unexpected error instead of its one-line message."""

# The error root of each package, by module and name. They are looked up in `sys.modules` rather
# than imported: importing `reports` costs pandas and pyarrow, and an error of a package that was
# never imported cannot have been raised.
_ERROR_ROOTS = (
    ("router.core", "RouterError"),
    ("ledger", "LedgerError"),
    ("reports", "ReportsError"),
    ("unhardcoded.db", "UnusableDatabaseError"),
)


class CliError(click.ClickException):
    """An error reported as `error: <message>`, exit code 2; `kind` names it in JSON (`input`,
    `file`, `settings`; click's own errors are `usage`)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, kind: str = "input") -> None:
        super().__init__(message)
        self.kind = kind


class InternalError(CliError):
    """An unexpected error (a bug), reported in one line with exit code 70."""

    exit_code = EXIT_INTERNAL

    def __init__(self, exc: Exception) -> None:
        super().__init__(
            f"unexpected {type(exc).__name__}: {exc} (a bug: please report it; {DEBUG_ENV}=1 "
            "shows the traceback)",
            kind="internal",
        )


def _loaded_error_roots() -> tuple[type[BaseException], ...]:
    roots: list[type[BaseException]] = []
    for module_name, name in _ERROR_ROOTS:
        root = getattr(sys.modules.get(module_name), name, None)
        if isinstance(root, type) and issubclass(root, BaseException):
            roots.append(root)
    return tuple(roots)


def _settings_error(exc: Exception) -> CliError | None:
    """pydantic's ValidationError of `Settings` (an `UNHARDCODED_…` variable) as one line."""
    validation_error = getattr(sys.modules.get("pydantic"), "ValidationError", None)
    if validation_error is None or not isinstance(exc, validation_error):
        return None
    problems = [
        f"UNHARDCODED_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    ]
    return CliError("invalid setting: " + "; ".join(problems), kind="settings")


def _file_error(exc: OSError) -> CliError:
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    return CliError(f"{where}: {reason}" if where else reason, kind="file")


def translate_error(exc: BaseException) -> CliError | None:
    """The `CliError` for an error a command may meet on bad input, else None."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, _loaded_error_roots()):
        return CliError(str(exc))
    if isinstance(exc, OSError):
        return _file_error(exc)
    if isinstance(exc, Exception):
        return _settings_error(exc)
    return None


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; a package error (`RouterError`, `LedgerError`, `ReportsError`), a file
    system error or an invalid setting becomes `error: …` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            translated = translate_error(exc)
            if translated is None:
                raise
            raise translated from None

    return wrapper


UMASK_ENV = "UNHARDCODED_UMASK"
"""The file mode creation mask of every command (octal; default 077: files 0600, folders 0700)."""

DEFAULT_UMASK = 0o077


def private_files() -> None:
    """Set the process's umask so that what it creates is private (`$UNHARDCODED_UMASK`,
    default 077): the database holds key digests and, when enabled, request bodies; exports,
    bundles and reports hold the decision record. Server processes inherit it."""
    text = os.environ.get(UMASK_ENV)
    mask = DEFAULT_UMASK
    if text is not None:
        try:
            mask = int(text, 8)
        except ValueError:
            mask = -1
        if not 0 <= mask <= 0o777:
            raise CliError(
                f"invalid setting: {UMASK_ENV}={text!r} is not an octal umask (e.g. 077 or 027)",
                kind="settings",
            )
    os.umask(mask)


def wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (`--json` before any `--`)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def print_error(message: str, *, kind: str, as_json: bool) -> None:
    """`error: <message>` on stderr (one line); with `as_json` also the JSON object on stdout."""
    # Several problems (one per line, e.g. every pointer of a policy) stay apart with "; ".
    one_line = "; ".join(" ".join(line.split()) for line in message.splitlines() if line.strip())
    if as_json:
        click.echo(json.dumps({"error": {"type": kind, "message": one_line}}, ensure_ascii=False))
    click.echo(f"error: {one_line}", err=True)


def _quiet_closed_loop_handoffs(args: threading.ExceptHookArgs) -> None:
    """aiosqlite's worker thread hands the result of a connection that failed to open back to
    the event loop after `asyncio.run` closed it (omnilib/aiosqlite#241) and dies with "Event
    loop is closed": the failure itself was already reported, so that is not printed again."""
    import traceback

    if (
        isinstance(args.exc_value, RuntimeError)
        and str(args.exc_value) == "Event loop is closed"
        and any(
            f"{os.sep}aiosqlite{os.sep}" in frame.filename
            for frame in traceback.extract_tb(args.exc_traceback)
        )
    ):
        return
    threading.__excepthook__(args)


def run_main(invoke: Callable[[], Any], args: Sequence[str]) -> None:
    """Run the root group (click's non-standalone mode) and exit with one error line on failure."""
    threading.excepthook = _quiet_closed_loop_handoffs
    as_json = wants_json(args)
    try:
        result = invoke()
    except click.exceptions.Abort:
        print_error("aborted", kind="usage", as_json=as_json)
        sys.exit(1)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        print_error(exc.format_message() + hint, kind="usage", as_json=as_json)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        print_error(exc.format_message(), kind=getattr(exc, "kind", "input"), as_json=as_json)
        sys.exit(exc.exit_code)
    except Exception as exc:
        translated = translate_error(exc)
        if translated is None:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            translated = InternalError(exc)
        print_error(translated.format_message(), kind=translated.kind, as_json=as_json)
        sys.exit(translated.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
