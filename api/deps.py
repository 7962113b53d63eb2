"""Dependencies: the loaded pipeline (503 until ready) and the bearer token for writes."""

from __future__ import annotations

import hmac

from fastapi import Request

from api.errors import ApiError
from api.service import Service


def get_service(request: Request) -> Service:
    return request.app.state.service


def ready_service(request: Request) -> Service:
    service: Service = request.app.state.service
    if not service.ready:
        if service.error:
            raise ApiError(503, f"the models or the index failed to load: {service.error}")
        raise ApiError(503, "the models and the index are still loading; try again shortly (GET /ready)",
                       headers={"Retry-After": "5"})
    return service


def require_token(request: Request) -> None:
    """Writes need `Authorization: Bearer <QA_API_TOKEN>` when a token is configured; reads stay open."""
    token = request.app.state.service.settings.api_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise ApiError(401, "this endpoint needs an API token: send Authorization: Bearer <token>", challenge)
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "invalid API token", challenge)
