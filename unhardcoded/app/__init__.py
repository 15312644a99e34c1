"""The HTTP service (composition root): `create_app(settings)` builds the FastAPI app."""

from unhardcoded.app._errors import answer, error_body, retry_headers, translate
from unhardcoded.app._factory import create_app, scheduled_sync
from unhardcoded.app._logging import JsonFormatter, configure_logging, uvicorn_log_config
from unhardcoded.app._witness import create_witness_app

__all__ = [
    "JsonFormatter",
    "answer",
    "configure_logging",
    "create_app",
    "create_witness_app",
    "error_body",
    "retry_headers",
    "scheduled_sync",
    "translate",
    "uvicorn_log_config",
]
