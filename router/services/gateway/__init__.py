"""The gateway service (floor 3, no web framework): API keys and scopes, the routing and
fallback loop, streaming orchestration and metrics. `unhardcoded.app` puts HTTP in front."""

from router.services.gateway._body import PROVIDER_KEY_HEADER, parse_json_body, provider_keys
from router.services.gateway._errors import (
    AllAttemptsFailedError,
    AuthenticationError,
    BadRequestError,
    GatewayError,
    KeyStoreError,
    KeyStoreUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from router.services.gateway._gateway import (
    Completed,
    Gateway,
    OpenedStream,
    RoutingRequest,
    split_request,
)
from router.services.gateway._keys import (
    KEY_PREFIX,
    SCOPES,
    ApiKey,
    CreatedKey,
    KeyStore,
    Principal,
    Scope,
    parse_scopes,
)
from router.services.gateway._metrics import MULTIPROCESS_DIR_ENV, Metrics

__all__ = [
    "KEY_PREFIX",
    "MULTIPROCESS_DIR_ENV",
    "PROVIDER_KEY_HEADER",
    "SCOPES",
    "AllAttemptsFailedError",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "Completed",
    "CreatedKey",
    "Gateway",
    "GatewayError",
    "KeyStore",
    "KeyStoreError",
    "KeyStoreUnavailableError",
    "Metrics",
    "NotFoundError",
    "OpenedStream",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Principal",
    "RoutingRequest",
    "Scope",
    "parse_json_body",
    "parse_scopes",
    "provider_keys",
    "split_request",
]
