"""GET /v1/models: the one model this server answers with (OpenAI list format)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends

from api.deps import get_service
from api.errors import ApiError
from api.service import MODEL_ID, Service

router = APIRouter(tags=["models"])
CREATED = int(time.time())


def _model(service: Service) -> dict:
    return {"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "qa-zh",
            "roles": service.model_names()}


@router.get("/v1/models")
def list_models(service: Service = Depends(get_service)) -> dict:
    """The one model this server answers with, `qa-zh`, in OpenAI's list format (with the role models it runs)."""
    return {"object": "list", "data": [_model(service)]}


@router.get("/v1/models/{model_id}")
def get_model(model_id: str, service: Service = Depends(get_service)) -> dict:
    """One model by id (404 for any other than `qa-zh`)."""
    if model_id != MODEL_ID:
        raise ApiError(404, f"unknown model {model_id!r}; this server has {MODEL_ID!r}")
    return _model(service)
