"""One JSON error shape for every failure, OpenAI-style so the openai SDK shows the message:

    {"error": {"message": "the question is empty", "type": "invalid_request_error", "code": 422}}

Bad input is always a 4xx with a message that says what to fix; a 500 means a bug on our side.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("qa.api")

TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 409: "conflict_error", 413: "request_too_large", 415: "unsupported_media_type",
    422: "invalid_request_error", 503: "not_ready",
}
JSON_BODY_PATHS = ("/v1/ask", "/v1/chat/completions")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None, details: list | None = None):
        super().__init__(message)
        self.status, self.message, self.headers, self.details = status, message, headers, details


def error_body(status: int, message: str, details: list | None = None) -> dict:
    error = {"message": message, "type": TYPES.get(status, "server_error" if status >= 500 else "error"),
             "code": status}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, message: str, headers: dict | None = None, details: list | None = None):
    return JSONResponse(error_body(status, message, details), status_code=status, headers=headers)


def _where(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = next(e.get("ctx", {}) for e in errors if e.get("type") == "json_invalid")
        return error_response(400, f"malformed JSON in the request body: {ctx.get('error', 'cannot parse')}")
    content_type = request.headers.get("content-type", "")
    if request.url.path in JSON_BODY_PATHS and content_type and "json" not in content_type.lower():
        return error_response(415, f"send the body as application/json, not {content_type.split(';')[0]}")
    details = [{"field": _where(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in errors]
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return error_response(422, "the request body is missing: send a JSON object", details=details)
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return error_response(422, f"invalid request: {summary}", details=details)


def install(app: FastAPI) -> None:
    from qa.pipeline import QuestionError
    from retriever.collections import CollectionError, CollectionNotFound
    from retriever.documents import DocumentError
    from retriever.filters import FilterError
    from retriever.metadata import MetadataError

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _validation(request, exc)

    @app.exception_handler(QuestionError)
    async def _question(request: Request, exc: QuestionError):
        return error_response(422, str(exc))

    @app.exception_handler(DocumentError)
    async def _document(request: Request, exc: DocumentError):
        return error_response(400, str(exc))

    def _plain(status: int, prefix: str = ""):
        async def handler(request: Request, exc: Exception):
            return error_response(status, f"{prefix}{exc}")

        return handler

    # bad filters, metadata or collection names; an unknown collection (the message names it)
    for kind, status, prefix in ((FilterError, 422, "filters: "), (MetadataError, 422, "metadata: "),
                                 (CollectionError, 422, ""), (CollectionNotFound, 404, "")):
        app.add_exception_handler(kind, _plain(status, prefix))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (see the server log)")
