"""Provider settings (kind, base URL, key per provider) from defaults and the environment; cost."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from pydantic import SecretStr

from router.services.upstream._errors import PricingError, ProviderConfigError
from router.services.upstream._types import (
    PROVIDER_KINDS,
    Credentials,
    ProviderKind,
    UpstreamTarget,
    Usage,
)

ENV_PREFIX = "UNHARDCODED_PROVIDER_"
_ENV_SUFFIXES = ("_BASE_URL", "_API_KEY", "_KIND", "_TIMEOUT", "_REGION")
# `<NAME>_BASE_URL_<REGION>`: the endpoint that keeps a call in one region.
_REGIONAL = re.compile(r"^(?P<name>.*?)_BASE_URL_(?P<region>[A-Z0-9_]+)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REGION = re.compile(r"^[a-z][a-z0-9-]*$")
DEFAULT_TIMEOUT_S = 60.0

UNBOUND_REGIONS = frozenset({"", "global", "unspecified"})
"""Catalog regions that promise no residency: a call may go to the provider's base URL."""


def region_key(region: str) -> str:
    """A region as it appears in a variable name: `us-gov` -> `US_GOV`."""
    return region.upper().replace("-", "_")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider: its protocol kind, base URL, the operator's key (if any) and timeout.

    `requires_key` is true for hosted services: with neither an operator nor a tenant key, a call
    fails with a `config` error instead of being sent unauthenticated.
    """

    name: str
    kind: ProviderKind
    base_url: str
    api_key: SecretStr | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    requires_key: bool = True
    home_region: str | None = None
    """The region `base_url` keeps data in (None: not known, so no residency claim holds)."""
    regional_base_urls: tuple[tuple[str, str], ...] = ()
    """(`region_key(region)`, base URL) of the endpoints that keep data in one region."""

    def base_url_for(self, region: str | None) -> str:
        """The base URL for a catalog entry in `region`.

        An entry's region is a residency promise, so a call is never sent to an endpoint that is
        not known to keep data there: a region with neither a regional endpoint nor the base
        URL's home region is a `ProviderConfigError` naming the variable to set.
        """
        if region is None or region in UNBOUND_REGIONS or self.kind == "echo":
            return self.base_url
        key = region_key(region)
        for known, url in self.regional_base_urls:
            if known == key:
                return url
        if self.home_region is not None and region_key(self.home_region) == key:
            return self.base_url
        serves = f"serves {self.home_region!r}" if self.home_region else "has no known region"
        raise ProviderConfigError(
            f"provider {self.name!r} has no endpoint for region {region!r} (its base URL "
            f"{serves}); set {ENV_PREFIX}{self.name.upper()}_BASE_URL_{key}, or "
            f"{ENV_PREFIX}{self.name.upper()}_REGION if the base URL is in {region!r}",
            provider=self.name,
        )

    def target(self, model: str, region: str | None = None) -> UpstreamTarget:
        """The target for `model` at this provider, at the endpoint for `region`."""
        return UpstreamTarget(
            provider=self.name,
            model=model,
            kind=self.kind,
            base_url=self.base_url_for(region),
            timeout_s=self.timeout_s,
            connect_timeout_s=min(5.0, self.timeout_s),
        )

    def credentials(self, tenant_key: SecretStr | None = None) -> Credentials:
        """The key to use: the tenant's own (BYOK) if given, else the operator's.

        Raises `ProviderConfigError` when the provider needs a key and there is none.
        """
        if tenant_key is not None and tenant_key.get_secret_value():
            return Credentials(api_key=tenant_key, source="tenant")
        if self.api_key is not None:
            return Credentials(api_key=self.api_key, source="operator")
        if self.requires_key:
            env = f"{ENV_PREFIX}{self.name.upper()}_API_KEY"
            raise ProviderConfigError(
                f"no API key for provider {self.name!r}: set {env} or pass a tenant key",
                provider=self.name,
            )
        return Credentials()


def _hosted(
    name: str, base_url: str, home: str | None, kind: ProviderKind = "openai_compatible"
) -> ProviderConfig:
    return ProviderConfig(name=name, kind=kind, base_url=base_url, home_region=home)


def _local(name: str, base_url: str) -> ProviderConfig:
    return ProviderConfig(
        name=name, kind="openai_compatible", base_url=base_url, requires_key=False
    )


#: Public endpoints of the well-known providers (overridable per provider from the environment),
#: each with the region its default endpoint keeps data in where the provider states one (None
#: where it does not: entries of those providers in a region need an explicit endpoint).
DEFAULT_PROVIDERS: Mapping[str, ProviderConfig] = {
    p.name: p
    for p in (
        _hosted("openai", "https://api.openai.com/v1", "us"),
        _hosted("anthropic", "https://api.anthropic.com", "us", "anthropic"),
        # Mistral's default host is its global endpoint; the EU one keeps inference in the EU
        # (docs.mistral.ai, Regional inference).
        replace(
            _hosted("mistral", "https://api.mistral.ai/v1", None),
            regional_base_urls=(("EU", "https://api.eu.mistral.ai/v1"),),
        ),
        _hosted("groq", "https://api.groq.com/openai/v1", "us"),
        _hosted("together", "https://api.together.xyz/v1", "us"),
        _hosted("fireworks", "https://api.fireworks.ai/inference/v1", "us"),
        _hosted("deepinfra", "https://api.deepinfra.com/v1/openai", "us"),
        # OpenRouter's in-region routing: a call to a regional host is routed only to endpoints
        # in that region, and fails rather than leaving it (docs/catalog.md, OpenRouter facts).
        replace(
            _hosted("openrouter", "https://openrouter.ai/api/v1", None, "openrouter"),
            regional_base_urls=(
                ("EU", "https://eu.openrouter.ai/api/v1"),
                ("US", "https://us.openrouter.ai/api/v1"),
            ),
        ),
        _hosted("deepseek", "https://api.deepseek.com/v1", None),
        _hosted("xai", "https://api.x.ai/v1", "us"),
        _hosted("google", "https://generativelanguage.googleapis.com/v1beta/openai", None),
        _local("vllm", "http://127.0.0.1:8000/v1"),
        _local("ollama", "http://127.0.0.1:11434/v1"),
        ProviderConfig(name="echo", kind="echo", base_url="", requires_key=False),
    )
}


class ProviderRegistry(Mapping[str, ProviderConfig]):
    """Provider configurations by name (lower case; `-` in a name is looked up as `_`)."""

    def __init__(self, providers: Mapping[str, ProviderConfig]) -> None:
        self._providers = dict(providers)

    @staticmethod
    def _key(name: str) -> str:
        return name.lower().replace("-", "_")

    def __getitem__(self, name: str) -> ProviderConfig:
        return self._providers[self._key(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._providers

    def provider(self, name: str) -> ProviderConfig:
        """The configuration of `name`; `ProviderConfigError` if there is none."""
        try:
            return self[name]
        except KeyError:
            known = ", ".join(sorted(self._providers))
            raise ProviderConfigError(
                f"unknown provider {name!r} (configured: {known}); "
                f"define it with {ENV_PREFIX}{self._key(name).upper()}_BASE_URL",
                provider=name,
            ) from None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        defaults: Mapping[str, ProviderConfig] = DEFAULT_PROVIDERS,
    ) -> ProviderRegistry:
        """The defaults, overridden and extended by `UNHARDCODED_PROVIDER_<NAME>_<SETTING>`.

        Settings: `KIND` (`openai_compatible` | `anthropic` | `echo`), `BASE_URL`, `API_KEY`,
        `TIMEOUT` (seconds), `REGION` (the region `BASE_URL` keeps data in) and
        `BASE_URL_<REGION>` (the endpoint for catalog entries in that region). A new provider
        needs a `BASE_URL` (unless its kind is `echo`) and defaults to kind `openai_compatible`
        with no key required. A variable under the prefix that matches no setting is an error, so
        a typo never passes silently.
        """
        settings: dict[str, dict[str, tuple[str, str]]] = {}
        for var, value in environ.items():
            if not var.startswith(ENV_PREFIX):
                continue
            rest = var[len(ENV_PREFIX) :]
            regional = _REGIONAL.match(rest)
            suffix = (
                f"_BASE_URL_{regional['region']}"
                if regional
                else next((s for s in _ENV_SUFFIXES if rest.endswith(s)), None)
            )
            if suffix is None:
                raise ProviderConfigError(
                    f"{var}: unknown provider setting (expected {ENV_PREFIX}<NAME> followed by "
                    f"one of {', '.join(_ENV_SUFFIXES)}, _BASE_URL_<REGION>)"
                )
            name = rest[: -len(suffix)].lower()
            if not _NAME.match(name):
                raise ProviderConfigError(
                    f"{var}: provider name {name!r} must match [a-z][a-z0-9_]* (upper-cased in "
                    "the variable name)"
                )
            settings.setdefault(name, {})[suffix] = (var, value)
        providers = dict(defaults)
        for name, given in sorted(settings.items()):
            providers[name] = _apply(name, providers.get(name), given)
        return cls(providers)


def _apply(
    name: str, base: ProviderConfig | None, given: Mapping[str, tuple[str, str]]
) -> ProviderConfig:
    config = base or ProviderConfig(
        name=name, kind="openai_compatible", base_url="", requires_key=False
    )
    if "_KIND" in given:
        var, value = given["_KIND"]
        if value not in PROVIDER_KINDS:
            raise ProviderConfigError(
                f"{var}: unknown kind {value!r} (expected one of {', '.join(PROVIDER_KINDS)})",
                provider=name,
            )
        config = replace(config, kind=value)
    if "_BASE_URL" in given:
        config = replace(config, base_url=_url(name, *given["_BASE_URL"]))
    regional = dict(config.regional_base_urls)
    for suffix, (var, value) in sorted(given.items()):
        if suffix.startswith("_BASE_URL_"):
            regional[suffix[len("_BASE_URL_") :]] = _url(name, var, value)
    config = replace(config, regional_base_urls=tuple(sorted(regional.items())))
    if "_REGION" in given:
        var, value = given["_REGION"]
        if not _REGION.match(value):
            raise ProviderConfigError(
                f"{var}: a region is a lower-case catalog region such as eu or us-gov, got "
                f"{value!r}",
                provider=name,
            )
        config = replace(config, home_region=value)
    if "_API_KEY" in given:
        # The value is deliberately absent from every message here.
        var, value = given["_API_KEY"]
        if not value.strip():
            raise ProviderConfigError(f"{var}: API key is empty", provider=name)
        config = replace(config, api_key=SecretStr(value.strip()))
    if "_TIMEOUT" in given:
        var, value = given["_TIMEOUT"]
        try:
            timeout = float(value)
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and timeout > 0):
            raise ProviderConfigError(
                f"{var}: timeout must be a positive number of seconds, got {value!r}",
                provider=name,
            )
        config = replace(config, timeout_s=timeout)
    if config.kind != "echo" and not config.base_url:
        raise ProviderConfigError(
            f"provider {name!r} has no base URL: set {ENV_PREFIX}{name.upper()}_BASE_URL",
            provider=name,
        )
    return config


def _url(name: str, var: str, value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ProviderConfigError(
            f"{var}: base URL must be an http:// or https:// URL, got {value!r}", provider=name
        )
    return value.rstrip("/")


def cost_usd(usage: Usage, price_in: float, price_out: float) -> float:
    """The cost of one attempt in USD: prompt × input price + completion × output price.

    Prices are USD per million tokens, as in the catalog. Cached input tokens are charged at the
    full input price (the catalog has no cache price), so the figure is an upper bound for them.
    """
    for label, price in (("price_in", price_in), ("price_out", price_out)):
        if not (math.isfinite(price) and price >= 0):
            raise PricingError(f"{label} must be a finite number ≥ 0, got {price!r}")
    for label, tokens in (
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
    ):
        if tokens < 0:
            raise PricingError(f"{label} must be ≥ 0, got {tokens}")
    return (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / 1_000_000
