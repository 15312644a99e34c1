"""Loopback fake providers for the upstream tests (the lead lifts them to the root conftest)."""

from tests.support.fake_providers import fake_anthropic, fake_openai

__all__ = ["fake_anthropic", "fake_openai"]
