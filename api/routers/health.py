"""Liveness (`/health`, answers at once) and readiness (`/ready`, 200 only once models and index are loaded)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.deps import get_service
from api.service import MODEL_ID, Service
from qa.types import Readiness

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict:
    """Liveness: answers at once, even while the models load."""
    return {"status": "ok"}


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
@router.get("/v1/ready", response_model=Readiness, responses={503: {"model": Readiness}}, include_in_schema=False)
def ready(service: Service = Depends(get_service)):
    """Readiness: 200 with the index's size once the models and the index are loaded, 503 (Retry-After) before."""
    if not service.ready:
        body = Readiness(ready=False, status=service.status, error=service.error)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    state = service.pipeline.index.state
    return Readiness(ready=True, status="ready", documents=len(state.documents), chunks=len(state.chunks),
                     model=MODEL_ID)
