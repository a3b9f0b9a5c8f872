"""How the API answers errors: every exception the routes may raise becomes a clear 4xx or a
gateway 5xx with a body naming what went wrong, never the request's content."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fhir_bridge.errors import (
    FhirError,
    FhirStatusError,
    HandoffRefused,
    InputError,
    MappingError,
    StoreUnavailable,
    UnknownPatient,
)

from ._guard import RETRY_AFTER_SECONDS


def answer_errors(app: FastAPI) -> None:
    """Install the exception handlers on ``app``."""

    @app.exception_handler(StoreUnavailable)
    async def unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        """The database is locked, full or away: nothing was written; try again shortly."""
        return JSONResponse(
            {
                "detail": "the database is unavailable: nothing was written, try again",
                "error": exc.error_type,
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, without echoing what was sent (``input``: it may be the whole body,
        PHI or bytes that are not text)."""
        detail = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(MappingError)
    async def invalid(_: Request, exc: MappingError) -> JSONResponse:
        problems = [{"path": p.path, "reason": p.reason} for p in exc.problems]
        return JSONResponse({"detail": "invalid record", "problems": problems}, status_code=422)

    @app.exception_handler(InputError)
    async def unreadable(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnknownPatient)
    async def unknown_patient(_: Request, exc: UnknownPatient) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(HandoffRefused)
    async def refused(_: Request, exc: HandoffRefused) -> JSONResponse:
        """A strict handoff not sent: what the check found, to fix before sending again."""
        return JSONResponse(
            {"detail": f"not sent: {exc.errors} errors in the check", "findings": exc.findings},
            status_code=422,
        )

    @app.exception_handler(FhirError)
    async def upstream(_: Request, exc: FhirError) -> JSONResponse:
        """The EHR's server failed or refused: a gateway error naming what it said."""
        headers = {}
        if isinstance(exc, FhirStatusError) and exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return JSONResponse(
            {"detail": f"the FHIR server: {exc}", "error": type(exc).__name__},
            status_code=503 if headers else 502,
            headers=headers,
        )
