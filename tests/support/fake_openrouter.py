"""A loopback server speaking OpenRouter's chat API: OpenAI's Chat Completions at
`/api/v1/chat/completions` plus OpenRouter's `provider` routing preferences.

Each model is served by a list of `Endpoint`s (OpenRouter's upstream providers, with their data
policies). The server checks the `provider` object as OpenRouter documents it and picks the
endpoint the way it does: endpoints that collect data are dropped under `data_collection:
"deny"`, those without zero data retention under `zdr: true`; `order` goes first, and with
`allow_fallbacks: false` nothing outside `order` is used; providers in `ignore` are never used.
No endpoint left is a 404, as at OpenRouter. `served_by` records the endpoint of each answered call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tests.support.fake_providers import FakeProvider, RecordedRequest
from tests.support.fake_wire import openai_error

__all__ = ["Endpoint", "FakeOpenRouter"]

_PREFERENCES = {
    "order": list,
    "only": list,
    "ignore": list,
    "allow_fallbacks": bool,
    "require_parameters": bool,
    "data_collection": str,
    "zdr": bool,
    "sort": str,
    "max_price": dict,
    "quantizations": list,
}


@dataclass(frozen=True)
class Endpoint:
    """One upstream provider serving a model through OpenRouter (its slug and data policy)."""

    provider: str
    collects_data: bool = True
    zdr: bool = False


def _problem(preferences: object) -> str | None:
    if not isinstance(preferences, dict):
        return "provider: Expected object"
    for key, value in preferences.items():
        expected = _PREFERENCES.get(key)
        if expected is None:
            return f"provider.{key}: Unrecognized key"
        if not isinstance(value, expected):
            return f"provider.{key}: Expected {expected.__name__}"
    if preferences.get("data_collection", "allow") not in ("allow", "deny"):
        return "provider.data_collection: Expected 'allow' or 'deny'"
    if any(not isinstance(name, str) for name in preferences.get("order", [])):
        return "provider.order: Expected a list of provider slugs"
    return None


def select(endpoints: Sequence[Endpoint], preferences: Mapping[str, Any]) -> Endpoint | None:
    """The endpoint OpenRouter would use first under `preferences` (None: no endpoint fits)."""
    ignored = set(preferences.get("ignore") or [])
    candidates = [e for e in endpoints if e.provider not in ignored]
    if preferences.get("data_collection") == "deny":
        candidates = [e for e in candidates if not e.collects_data]
    if preferences.get("zdr") is True:
        candidates = [e for e in candidates if e.zdr]
    order = preferences.get("order") or []
    if order:
        listed = [e for name in order for e in candidates if e.provider == name]
        others = [e for e in candidates if e.provider not in order]
        candidates = listed + ([] if preferences.get("allow_fallbacks") is False else others)
    return candidates[0] if candidates else None


class FakeOpenRouter(FakeProvider):
    """OpenRouter on loopback; models not in `endpoints` are served by one data-collecting
    endpoint named `default`."""

    def __init__(
        self, endpoints: Mapping[str, Sequence[Endpoint]], *, api_key: str | None = None
    ) -> None:
        super().__init__("openai", api_key=api_key)
        self.endpoints = endpoints
        self.served_by: list[str] = []

    @property
    def base_url(self) -> str:
        """OpenRouter's base URL shape: `…/api/v1`."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def _refusal(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        if request.path != "/api/v1/chat/completions":
            return 404, openai_error(404, f"no route {request.method} {request.path}")
        refused = super()._refusal(replace(request, path="/v1/chat/completions"))
        if refused is not None:
            return refused
        body = request.json()
        preferences = body.get("provider", {})
        problem = _problem(preferences)
        if problem is not None:
            return 400, openai_error(400, problem)
        served = self.endpoints.get(str(body["model"]), [Endpoint("default")])
        chosen = select(served, preferences)
        if chosen is None:
            return 404, openai_error(404, "No endpoints found matching your data policy")
        with self._lock:
            self.served_by.append(chosen.provider)
        return None
