"""Request features: what the evaluator knows about the request (token counts), and their estimate
from an OpenAI chat request body."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from router.core._canonical import describe, is_number
from router.core._errors import Issue, RequestError
from router.core._parse import MAX_TOKENS

CHARS_PER_TOKEN = 4
"""The estimate's ratio: one token per 4 characters of text (rounded up), as OpenAI documents for
English text."""
TOKENS_PER_MESSAGE = 4
"""Tokens added per message for role and framing (OpenAI's chat format overhead)."""
TOKENS_PER_REQUEST = 3
"""Tokens added once per request (the reply's priming)."""
DEFAULT_OUTPUT_TOKENS = 512
"""Output tokens assumed when the request sets neither `max_completion_tokens` nor `max_tokens`."""


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """What a decision may depend on from the request: its token counts (input and output) and
    how many of the input tokens are cached (priced at the entry's cached-input price)."""

    tokens_in: int
    tokens_out: int
    tokens_cached: int = 0

    def __post_init__(self) -> None:
        for name in ("tokens_in", "tokens_out", "tokens_cached"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RequestError(
                    [
                        Issue(
                            f"/{name}",
                            describe(value),
                            "a non-negative integer",
                            f"{name} must be a non-negative integer, found {describe(value)}",
                        )
                    ]
                )
        if self.tokens_cached > self.tokens_in:
            raise RequestError(
                [
                    Issue(
                        "/tokens_cached",
                        describe(self.tokens_cached),
                        f"at most tokens_in ({self.tokens_in})",
                        f"tokens_cached ({self.tokens_cached}) exceeds tokens_in "
                        f"({self.tokens_in}): cached tokens are part of the input",
                    )
                ]
            )

    def to_json(self) -> dict[str, int]:
        """`{"tokens_in": …, "tokens_out": …}`, plus `tokens_cached` when some input is cached
        (so the features of a request without cached tokens keep the form they always had)."""
        out = {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out}
        if self.tokens_cached:
            out["tokens_cached"] = self.tokens_cached
        return out


def _text_length(content: object, pointer: str, issues: list[Issue]) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for i, part in enumerate(content):
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                total += len(part["text"])
            elif not isinstance(part, Mapping):
                issues.append(
                    Issue(
                        f"{pointer}/{i}",
                        describe(part),
                        "a content part object",
                        f"expected a content part object, found {describe(part)}",
                    )
                )
        return total
    issues.append(
        Issue(
            pointer,
            describe(content),
            "a string or a list of content parts",
            f"expected a string or a list of content parts, found {describe(content)}",
        )
    )
    return 0


def estimate_features(body: Mapping[str, object]) -> RequestFeatures:
    """Estimate the token counts of an OpenAI chat request body.

    Input: for each message, ceil(characters of its text / 4) + 4, plus 3 per request (text is a
    string `content`, or the `text` of content parts; images and audio are not counted). Output:
    `max_completion_tokens`, else `max_tokens`, else 512. Raise `RequestError` with a JSON pointer
    when the body is not shaped like a chat request.
    """
    issues: list[Issue] = []
    messages = body.get("messages")
    tokens_in = TOKENS_PER_REQUEST
    if not isinstance(messages, list):
        issues.append(
            Issue(
                "/messages",
                describe(messages),
                "a list of messages",
                f"expected a list of messages, found {describe(messages)}",
            )
        )
        messages = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            issues.append(
                Issue(
                    f"/messages/{i}",
                    describe(message),
                    "a message object",
                    f"expected a message object, found {describe(message)}",
                )
            )
            continue
        chars = _text_length(message.get("content"), f"/messages/{i}/content", issues)
        tokens_in += TOKENS_PER_MESSAGE + math.ceil(chars / CHARS_PER_TOKEN)
    tokens_out = DEFAULT_OUTPUT_TOKENS
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        # The range first: float() of an integer beyond a double (JSON allows any) overflows.
        if (
            not is_number(value)
            or not 0 <= value <= MAX_TOKENS  # type: ignore[operator]
            or not float(value).is_integer()  # type: ignore[arg-type]
        ):
            issues.append(
                Issue(
                    f"/{key}",
                    describe(value),
                    f"an integer from 0 to {MAX_TOKENS:,}",
                    f"expected an integer from 0 to {MAX_TOKENS:,}, found {describe(value)}",
                )
            )
            break
        tokens_out = int(value)  # type: ignore[call-overload]
        break
    if issues:
        raise RequestError(issues)
    return RequestFeatures(tokens_in, tokens_out)
