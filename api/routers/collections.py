"""Collections: list, create and drop named sets of documents, each with its own index (writes need the token).

The default collection ("default", today's one index) is always there and cannot be dropped.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ready_service, require_token
from api.errors import ApiError
from api.service import Service
from qa.types import CollectionInfo, CollectionRequest

router = APIRouter(tags=["collections"])


@router.get("/v1/collections")
def list_collections(service: Service = Depends(ready_service)) -> dict:
    """The collections with their sizes: `{"collections": [CollectionInfo…], "count": n}`."""
    collections = service.pipeline.collection_infos()
    return {"collections": [c.model_dump() for c in collections], "count": len(collections)}


@router.post("/v1/collections", response_model=CollectionInfo, status_code=201,
             dependencies=[Depends(require_token)])
async def create_collection(request: CollectionRequest, service: Service = Depends(ready_service)):
    """Create an empty collection (409 if it exists). Needs the bearer token when QA_API_TOKEN is set."""
    def create() -> bool:
        with service.write_lock:
            return service.pipeline.create_collection(request.name)  # CollectionError -> 422

    if not await run_in_threadpool(create):
        raise ApiError(409, f"the collection {request.name!r} already exists")
    info = CollectionInfo(name=request.name, documents=0, chunks=0)
    return JSONResponse(info.model_dump(), status_code=201)


@router.delete("/v1/collections/{name}", dependencies=[Depends(require_token)])
def drop_collection(name: str, service: Service = Depends(ready_service)) -> dict:
    """Drop a collection and its index (404 if unknown; the default one cannot be dropped: 422)."""
    with service.write_lock:
        service.pipeline.drop_collection(name)  # CollectionNotFound -> 404, the default one -> 422
    return {"dropped": name}
