"""The witness's HTTP service: `POST /add-checkpoint` of c2sp.org/tlog-witness v1, thin — read
the body, call `Witness.add_checkpoint` off the event loop, map its refusals to status codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, Request, Response

from router.services.witness import (
    SIZE_CONTENT_TYPE,
    Witness,
    WitnessConflictError,
    WitnessError,
)

__all__ = ["MAX_REQUEST_BYTES", "create_witness_app"]

MAX_REQUEST_BYTES = 64 * 1024
"""An add-checkpoint body is a few hundred bytes to a few KiB (63 proof lines, a note with up to
100 signatures); anything above this is refused with 413."""

_TEXT = "text/plain; charset=utf-8"


def create_witness_app(folder: Path | str) -> FastAPI:
    """The witness app over the state folder `folder` (see `unhardcoded witness init`)."""
    witness = Witness(folder)
    app = FastAPI(
        title="unhardcoded witness",
        description="A c2sp.org/tlog-witness v1 witness: POST /add-checkpoint (docs/witness.md).",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(WitnessError)
    async def refused(_request: Request, exc: Exception) -> Response:
        if isinstance(exc, WitnessConflictError):
            # Exactly `text/x.tlog.size`: a str body would gain "; charset=utf-8".
            return Response(
                f"{exc.size}\n".encode("ascii"),
                status_code=409,
                headers={"content-type": SIZE_CONTENT_TYPE},
            )
        status = exc.status if isinstance(exc, WitnessError) else 500
        return Response(f"{exc}\n", status_code=status, media_type=_TEXT)

    @app.post("/add-checkpoint", summary="Cosign a checkpoint consistent with the last one")
    async def add_checkpoint(request: Request) -> Response:
        """The body: `old <size>`, the consistency proof lines, an empty line, the signed
        checkpoint. The answer: the witness's cosignature line."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return Response(
                    f"request body above {MAX_REQUEST_BYTES} bytes\n",
                    status_code=413,
                    media_type=_TEXT,
                )
        line = await asyncio.to_thread(witness.add_checkpoint, bytes(body))
        return Response(line, media_type=_TEXT)

    @app.get("/", summary="The witness's name and public key")
    async def identity() -> Response:
        """The witness's vkey (c2sp.org/signed-note, signature type 0x04), one line."""
        return Response(witness.verifier_key() + "\n", media_type=_TEXT)

    return app
