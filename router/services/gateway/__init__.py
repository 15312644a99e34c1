"""The gateway service (floor 3, no web framework): API keys and scopes, the routing and
fallback loop, streaming orchestration, idempotency keys and metrics. `unhardcoded.app` puts
HTTP in front."""

from router.services.gateway._body import PROVIDER_KEY_HEADER, parse_json_body, provider_keys
from router.services.gateway._errors import (
    AllAttemptsFailedError,
    AuthenticationError,
    BadRequestError,
    GatewayError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    IdempotentAnswerNotStoredError,
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
from router.services.gateway._idempotency import (
    IDEMPOTENCY_HEADER,
    Claim,
    IdempotencyStore,
    StoredAnswer,
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
    "IDEMPOTENCY_HEADER",
    "KEY_PREFIX",
    "MULTIPROCESS_DIR_ENV",
    "PROVIDER_KEY_HEADER",
    "SCOPES",
    "AllAttemptsFailedError",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "Claim",
    "Completed",
    "CreatedKey",
    "Gateway",
    "GatewayError",
    "IdempotencyInFlightError",
    "IdempotencyKeyReusedError",
    "IdempotencyStore",
    "IdempotencyUnavailableError",
    "IdempotentAnswerNotStoredError",
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
    "StoredAnswer",
    "parse_json_body",
    "parse_scopes",
    "provider_keys",
    "split_request",
]
