"""The HTTP service (composition root): `create_app(settings)` builds the FastAPI app."""

from unhardcoded.app._errors import answer, error_body, retry_headers, translate
from unhardcoded.app._factory import DecisionsFactory, create_app
from unhardcoded.app._logging import JsonFormatter, configure_logging

__all__ = [
    "DecisionsFactory",
    "JsonFormatter",
    "answer",
    "configure_logging",
    "create_app",
    "error_body",
    "retry_headers",
    "translate",
]
