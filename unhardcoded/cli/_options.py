"""Options shared by several commands: catalogs, times (`--since`/`--until`, one parser for
all of them) and progress (`--progress/--no-progress`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from unhardcoded.cli._common import CliError

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


class Instant(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time (`2026-12-01`, `2026-12-01T10:00Z`,
    `2026-12-01 10:00:00+01:00`, …); without an offset it is UTC, a date is its midnight. The one
    time parser of every command."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip())
            except ValueError:
                self.fail(
                    f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01, "
                    "2026-11-01T12:00Z or 2026-11-01T12:00:00+01:00)",
                    param,
                    ctx,
                )
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


INSTANT = Instant()


def period_options(func: F) -> F:
    """`--since TIME` (included) and `--until TIME` (excluded)."""
    func = click.option(
        "--until",
        type=INSTANT,
        help="Decisions recorded before this time (ISO 8601; UTC unless an offset is given; "
        "excluded).",
    )(func)
    return click.option(
        "--since",
        type=INSTANT,
        help="Decisions recorded at or after this time (ISO 8601, e.g. 2026-12-01 or "
        "2026-12-01T10:00Z; UTC unless an offset is given).",
    )(func)


_NO_PROGRESS = "unhardcoded.no_progress"


def _quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_NO_PROGRESS] = True


def progress_option(func: F) -> F:
    """`--progress/--no-progress` (default: progress when stderr is a terminal); `--quiet` is a
    hidden alias of `--no-progress` that older scripts use."""
    func = click.option("--quiet", is_flag=True, hidden=True, expose_value=False, callback=_quiet)(
        func
    )
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress on stderr (default: when stderr is a terminal).",
    )(func)


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress, given `--progress/--no-progress` (and the `--quiet` alias)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_NO_PROGRESS):
        return False
    return sys.stderr.isatty() if progress is None else progress


def _probe(folder: Path, target: Path) -> None:
    """Create and remove a file in `folder`: the one check that holds for every cause (mode,
    owner, read-only mount, ACL) and for root."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CliError(
            f"cannot write {target}: {folder}: {exc.strerror or exc}", kind="file"
        ) from None


def _nearest_folder(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise CliError(f"cannot write {path}: {candidate} is not a folder")
            return candidate
    return Path.cwd()


def writable_file(path: Path) -> None:
    """Refuse, before any work, an output file that cannot be written."""
    if path.is_dir():
        raise CliError(f"cannot write {path}: it is a folder")
    parent = path.parent if path.parent != Path() else Path.cwd()
    if not parent.is_dir():
        raise CliError(f"cannot write {path}: the folder {parent} does not exist")
    _probe(parent, path)


def writable_folder(path: Path) -> None:
    """Refuse, before any work, an output folder that cannot be created or written."""
    _probe(_nearest_folder(path), path)
