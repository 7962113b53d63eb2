"""POST /v1/ask: one question (with optional history) -> the Answer JSON, exactly as `ask --json` prints it."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import ready_service
from api.service import Service
from qa.types import Answer, AskRequest

router = APIRouter(tags=["ask"])


@router.post("/v1/ask", response_model=Answer)
def ask(request: AskRequest, service: Service = Depends(ready_service)) -> Answer:
    """One question (with optional history, collection and filters) -> the Answer: the exact span with its
    citations, or `answer: null` when the articles don't say. The same JSON as `ask --json`."""
    return service.ask(request.question, top_k=request.top_k, history=request.history,
                       collection=request.collection, filters=request.filters)
