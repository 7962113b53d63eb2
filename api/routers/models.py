"""GET /v1/models: one model per collection (OpenAI list format): `qa-zh` answers from the default collection,
`qa-zh/NAME` from collection NAME."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends

from api.deps import get_service
from api.errors import ApiError
from api.service import MODEL_ID, Service
from retriever.collections import DEFAULT

router = APIRouter(tags=["models"])
CREATED = int(time.time())


def _model(service: Service, model_id: str = MODEL_ID) -> dict:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "qa-zh",
            "roles": service.model_names()}


def model_ids(service: Service) -> list[str]:
    if not service.ready:  # still loading: the default collection is all we can say
        return [MODEL_ID]
    return [MODEL_ID if c == DEFAULT else f"{MODEL_ID}/{c}" for c in [DEFAULT, *service.pipeline.collections.names()]]


@router.get("/v1/models")
def list_models(service: Service = Depends(get_service)) -> dict:
    """The models this server answers with, in OpenAI's list format: `qa-zh`, and `qa-zh/<collection>` per
    collection."""
    return {"object": "list", "data": [_model(service, m) for m in model_ids(service)]}


@router.get("/v1/models/{model_id:path}")
def get_model(model_id: str, service: Service = Depends(get_service)) -> dict:
    """One model by id (404 for an id `/v1/models` does not list)."""
    known = model_ids(service)
    if model_id not in known:
        raise ApiError(404, f"unknown model {model_id!r}; this server has {', '.join(map(repr, known))}")
    return _model(service, model_id)
