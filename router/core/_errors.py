"""The one error root of the router package and the errors derived from it.

Every error the router raises derives from `RouterError`, so the HTTP layer and the CLI translate
errors in exactly one place each. Errors about submitted input (a policy, a catalog, a request body)
are `InputError`s: they carry every problem found, each with an RFC 6901 JSON pointer into the
submitted document, what was found there and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core._trace import Trace


class RouterError(Exception):
    """Root of every error raised by `router`."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a submitted document: where (a JSON pointer), what was found, what was
    expected, and the message saying so."""

    pointer: str
    found: str
    expected: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def escape_pointer_token(token: str | int) -> str:
    """Escape one reference token for an RFC 6901 JSON pointer (`~` → `~0`, `/` → `~1`)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, *tokens: str | int) -> str:
    """Extend a JSON pointer by escaped reference tokens."""
    return base + "".join("/" + escape_pointer_token(t) for t in tokens)


class InputError(RouterError):
    """A submitted document is invalid. `issues` lists every problem found (at least one);
    `pointer`, `found` and `expected` repeat the first for callers that report one only."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        if not issues:
            raise ValueError("an InputError needs at least one issue")
        self.issues: tuple[Issue, ...] = tuple(issues)
        first = self.issues[0]
        self.pointer = first.pointer
        self.found = first.found
        self.expected = first.expected
        super().__init__("\n".join(str(issue) for issue in self.issues))


class PolicyError(InputError):
    """A `sigma-pol/v1` policy is invalid (pointers are into the submitted policy)."""


class CatalogError(InputError):
    """A catalog document is invalid (pointers are into the submitted catalog)."""


class RequestError(InputError):
    """A request body (e.g. an OpenAI chat request) cannot be read (pointers are into the body)."""


class EntryNotFoundError(RouterError):
    """A catalog has no entry with the given id."""

    def __init__(self, entry_id: str, catalog_version: str) -> None:
        self.entry_id = entry_id
        self.catalog_version = catalog_version
        super().__init__(f"catalog {catalog_version[:12]} has no entry {entry_id!r}")


class MissingTokensError(RouterError):
    """`cost_per_run` is needed but neither the policy's `tokens` nor the request features give the
    token counts."""


class NoEntryPasses(RouterError):  # noqa: N818 (the name the design uses)
    """No catalog entry passes every rule. `trace` is the full trace: why each entry was
    removed."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        super().__init__(trace.summary())
