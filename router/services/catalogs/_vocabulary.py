"""One vocabulary for every importer: canonical vendor names, capability names, variants and
hosting, so that a rule written once (`["nin", "vendor", ["xai"]]`, `["has", "capabilities",
"pdf_input"]`) means the same on a LiteLLM and an OpenRouter import. docs/catalog.md shows these
tables; change both together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

VENDOR_SPELLINGS: Mapping[str, str] = {
    "openai": "openai",
    "azure_openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "gemini": "google",
    "meta": "meta",
    "meta-llama": "meta",
    "meta_llama": "meta",
    "mistral": "mistral",
    "mistralai": "mistral",
    "codestral": "mistral",
    "deepseek": "deepseek",
    "deepseek-ai": "deepseek",
    "xai": "xai",
    "x-ai": "xai",
    "qwen": "qwen",
    "alibaba": "qwen",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "amazon": "amazon",
    "amazon_nova": "amazon",
    "microsoft": "microsoft",
    "nvidia": "nvidia",
    "moonshot": "moonshot",
    "moonshotai": "moonshot",
    "zai": "zai",
    "z-ai": "zai",
    "zai-org": "zai",
    "thudm": "zai",
    "minimax": "minimax",
    "ai21": "ai21",
    "perplexity": "perplexity",
}
"""Source spelling (author prefix, LiteLLM provider, Bedrock model prefix) → canonical vendor."""

_MODEL_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), vendor)
    for pattern, vendor in (
        (r"(gpt|chatgpt|o[1-9])([-.]|$)", "openai"),
        (r"claude", "anthropic"),
        (r"(gemini|gemma|learnlm)", "google"),
        (r"(llama|meta-llama)", "meta"),
        (r"(mistral|mixtral|codestral|magistral|ministral|pixtral|devstral|voxtral)", "mistral"),
        (r"deepseek", "deepseek"),
        (r"grok", "xai"),
        (r"(qwen|qwq)", "qwen"),
        (r"command", "cohere"),
        (r"glm", "zai"),
        (r"kimi", "moonshot"),
        (r"(nova|titan)", "amazon"),
        (r"phi-", "microsoft"),
        (r"minimax", "minimax"),
        (r"jamba", "ai21"),
        (r"sonar", "perplexity"),
    )
)
"""Model-name families of the vendors, for hosts whose keys carry no vendor prefix."""


def canonical_vendor(spelling: str) -> str | None:
    """The canonical vendor of a source spelling, or None when the table does not know it."""
    return VENDOR_SPELLINGS.get(spelling.lower())


FIRST_PARTY_PROVIDERS = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "mistral",
        "codestral",
        "deepseek",
        "xai",
        "cohere",
        "cohere_chat",
        "amazon_nova",
        "meta_llama",
        "moonshot",
        "zai",
        "minimax",
        "ai21",
        "perplexity",
    }
)
"""LiteLLM providers that are a vendor's own API: the vendor is the provider's."""


def litellm_vendor(provider: str, model: str) -> str | None:
    """The vendor of a LiteLLM endpoint: the provider's for a vendor's own API, else the model's
    (`bedrock` `anthropic.claude-…` → anthropic, `azure` `gpt-4o` → openai)."""
    if provider in FIRST_PARTY_PROVIDERS:
        return canonical_vendor(provider)
    return vendor_of_model(model)


def vendor_of_model(model: str) -> str | None:
    """The vendor a model name belongs to: its `vendor/` or Bedrock `vendor.` prefix when the
    table knows it, else its family name (`claude-…` → anthropic), else None (left out)."""
    lowered = model.lower()
    for separator in ("/", "."):
        if separator in lowered:
            found = canonical_vendor(lowered.split(separator, 1)[0])
            if found is not None:
                return found
    name = lowered.rsplit("/", 1)[-1]
    for pattern, vendor in _MODEL_FAMILIES:
        if pattern.match(name):
            return vendor
    return None


CAPABILITIES: Mapping[str, str] = {
    "tools": "function (tool) calling",
    "tool_choice": "forcing a tool choice",
    "json": "structured output (JSON schema / response format)",
    "reasoning": "reasoning (thinking) tokens",
    "vision": "image input",
    "pdf_input": "PDF / file input",
    "audio_input": "audio input",
    "video_input": "video input",
    "audio_output": "audio output",
    "prompt_caching": "prompt caching (cached input is priced apart)",
    "web_search": "built-in web search",
    "computer_use": "computer use tool",
}
"""The canonical capability names both importers map to. A LiteLLM `supports_<x>` flag not in
the table keeps its own name `<x>` (listed by `catalog import` as is)."""

LITELLM_CAPABILITIES: Mapping[str, str] = {
    "supports_function_calling": "tools",
    "supports_tool_choice": "tool_choice",
    "supports_response_schema": "json",
    "supports_reasoning": "reasoning",
    "supports_vision": "vision",
    "supports_pdf_input": "pdf_input",
    "supports_audio_input": "audio_input",
    "supports_video_input": "video_input",
    "supports_audio_output": "audio_output",
    "supports_prompt_caching": "prompt_caching",
    "supports_web_search": "web_search",
    "supports_computer_use": "computer_use",
}
"""LiteLLM `supports_*: true` flags → canonical capabilities."""

OPENROUTER_PARAMETERS: Mapping[str, str] = {
    "tools": "tools",
    "tool_choice": "tool_choice",
    "response_format": "json",
    "structured_outputs": "json",
    "reasoning": "reasoning",
    "include_reasoning": "reasoning",
    "web_search_options": "web_search",
}
"""OpenRouter `supported_parameters` → canonical capabilities."""

OPENROUTER_INPUTS: Mapping[str, str] = {
    "image": "vision",
    "file": "pdf_input",
    "audio": "audio_input",
    "video": "video_input",
}
"""OpenRouter `architecture.input_modalities` → canonical capabilities (text is implied)."""

OPENROUTER_OUTPUTS: Mapping[str, str] = {"audio": "audio_output"}
"""OpenRouter `architecture.output_modalities` besides text → canonical capabilities."""

STANDARD_VARIANT = "standard"
FREE_VARIANT = "free"

_FREE_SUFFIX = re.compile(r"[-:_]free$", re.IGNORECASE)


def litellm_variant(model: str) -> str:
    """`free` for a model name ending in `-free` / `:free` (a provider's free offering of a model
    it also sells), else `standard`."""
    return FREE_VARIANT if _FREE_SUFFIX.search(model) else STANDARD_VARIANT


def openrouter_variant(model_id: str) -> str:
    """The `:suffix` of an OpenRouter id (`free`, `batch`, `nitro`, `floor`, `thinking`, …), else
    `standard`."""
    name = model_id.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else STANDARD_VARIANT


CLOUD_HOSTING = "cloud"
LOCAL_HOSTING = "local"

LOCAL_RUNTIMES = frozenset(
    {
        "ollama",
        "ollama_chat",
        "lemonade",
        "lm_studio",
        "llamafile",
        "hosted_vllm",
        "vllm",
        "xinference",
        "oobabooga",
        "docker_model_runner",
    }
)
"""LiteLLM providers that are runtimes you host yourself: `hosting` is `local`."""


def litellm_hosting(provider: str, model: str) -> str:
    """`local` for a self-hosted runtime (an Ollama `-cloud` model runs at Ollama: `cloud`)."""
    if provider in LOCAL_RUNTIMES and not model.endswith("-cloud"):
        return LOCAL_HOSTING
    return CLOUD_HOSTING
