"""POST /v1/chat/completions, OpenAI-compatible: the last user message is the question, earlier user and
assistant messages are the history for follow-up rewriting. The reply text is the answer in a sentence plus
numbered sources; the structured Answer (citations, searched_question) rides along in the extra top-level
field `qa` (on the response, or on the last chunk when streaming).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ready_service
from api.errors import ApiError, error_body
from api.formatting import answer_of_reply, answer_text, pieces
from api.service import MODEL_ID, Service
from qa.pipeline import QuestionError

router = APIRouter(tags=["chat"])


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields we use; the rest of OpenAI's parameters (temperature, max_tokens…) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int | None = Field(default=None, ge=1, le=20)  # extension: passages the reader reads
    filters: dict[str, Any] | None = None  # extension: metadata filters, as in /v1/ask


def collection_of(model: str | None) -> str | None:
    """`model` picks the collection: qa-zh/NAME is collection NAME (404 when there is none); qa-zh, or any
    other name as before collections existed, is the default one."""
    prefix = MODEL_ID + "/"
    if not model or not model.startswith(prefix):
        return None
    if not model[len(prefix):]:
        raise ApiError(404, f"unknown model {model!r}: use {MODEL_ID!r} or '{MODEL_ID}/<collection>' (GET /v1/models)")
    return model[len(prefix):]


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return "".join(part.text or "" for part in message.content if part.type in ("text", "input_text"))
    return message.content or ""


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    """Last user message -> question; earlier user/assistant messages -> alternating question/answer turns."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise ApiError(422, "no user message: the last user message is the question")
    if any(m.role == "assistant" for m in messages[last + 1:]):
        raise ApiError(422, "the conversation must end with the user's question")
    history: list[str] = []
    for message in messages[:last]:
        if message.role == "user":
            if len(history) % 2 == 1:  # two questions in a row: the first went unanswered
                history.append("")
            history.append(_text(message))
        elif message.role == "assistant" and len(history) % 2 == 1:
            history.append(answer_of_reply(_text(message)))
    if len(history) % 2 == 1:
        history.append("")
    return _text(messages[last]), history


def _usage(question: str, history: list[str], text: str) -> dict:
    """Character counts (the reader is extractive; there are no generated tokens to count)."""
    prompt = len(question) + sum(len(t) for t in history)
    return {"prompt_tokens": prompt, "completion_tokens": len(text), "total_tokens": prompt + len(text)}


@router.post("/v1/chat/completions")
async def chat_completions(request: ChatRequest, service: Service = Depends(ready_service)):
    """OpenAI-compatible chat: the last user message is the question, earlier messages the history. The reply
    quotes the answer and its sources; the structured Answer is in the extra field `qa` (with `stream: true`, in
    the last chunk of the server-sent events, which end with `data: [DONE]`)."""
    question, history = question_and_history(request.messages)
    try:
        question = service.pipeline.check_question(question)  # bad questions fail before any streaming
    except QuestionError as exc:
        raise ApiError(422, f"the last user message: {exc}") from exc
    collection = collection_of(request.model)
    model = request.model or MODEL_ID
    # an unknown collection or a bad filter fails before any streaming too
    await run_in_threadpool(service.check, collection, request.filters)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    ask = functools.partial(service.ask, question, request.top_k, history, collection, request.filters)
    if not request.stream:
        answer = await run_in_threadpool(ask)
        text = answer_text(answer)
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": _usage(question, history, text),
            "qa": answer.model_dump(mode="json"),
        }

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events():
        yield chunk({"role": "assistant", "content": ""})  # at once, while the reader works
        try:
            answer = await run_in_threadpool(ask)
        except Exception as exc:  # headers are sent: report in-stream, the way OpenAI does
            from api.errors import log

            log.exception("chat stream failed")
            yield f"data: {json.dumps(error_body(500, f'answering failed: {exc.__class__.__name__}'))}\n\n"
            yield "data: [DONE]\n\n"
            return
        text = answer_text(answer)
        for piece in pieces(text):
            yield chunk({"content": piece})
        yield chunk({}, "stop", qa=answer.model_dump(mode="json"))
        if request.stream_options and request.stream_options.include_usage:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": _usage(question, history, text)}
            yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
