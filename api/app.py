"""The HTTP API: `create_app()` builds a FastAPI app (uvicorn calls it as a factory: `qa serve`).

    uvicorn api.app:create_app --factory --port 8000

Models and the index load once, at start-up, in a background thread: `/health` answers at once, `/ready`
says 503 until the pipeline is loaded, then 200. Every error is JSON: {"error": {"message", "type", "code"}}.

Environment: QA_API_TOKEN (bearer token for writes), QA_CORS_ORIGINS (comma-separated origins, or *),
QA_MAX_UPLOAD_BYTES / QA_MAX_JSON_BYTES (request body limits), plus the QA_* settings of qa/settings.py.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.limits import DEFAULT_JSON_BYTES, DEFAULT_UPLOAD_BYTES, BodyLimit
from api.routers import ask, chat, collections, documents, health, models, page
from api.service import Service
from qa.settings import Settings


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def cors_origins() -> list[str]:
    return [o.strip() for o in os.environ.get("QA_CORS_ORIGINS", "").split(",") if o.strip()]


def create_app(settings: Settings | None = None, pipeline=None, *, cors: list[str] | None = None,
               max_json_bytes: int | None = None, max_upload_bytes: int | None = None) -> FastAPI:
    """The app. Give a loaded `pipeline` to skip loading (tests, embedding); otherwise it loads at start-up."""
    if settings is None:
        settings = pipeline.settings if pipeline is not None else Settings()
    service = Service(settings, pipeline)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()  # background thread: the server accepts requests meanwhile
        yield

    app = FastAPI(
        title="qa-zh",
        version="0.1.0",
        summary="Questions about Chinese news articles: exact answer spans with citations, or 'the articles "
                "don't say'. OpenAI-compatible chat completions.",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    for module in (health, ask, chat, documents, collections, models, page):
        app.include_router(module.router)

    origins = cors if cors is not None else cors_origins()
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials="*" not in origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"])
    # outermost: limits apply before anything reads the body (CORS preflights are GET-free OPTIONS, untouched)
    app.add_middleware(
        BodyLimit,
        json_limit=max_json_bytes or _int_env("QA_MAX_JSON_BYTES", DEFAULT_JSON_BYTES),
        upload_limit=max_upload_bytes or _int_env("QA_MAX_UPLOAD_BYTES", DEFAULT_UPLOAD_BYTES),
    )
    return app
