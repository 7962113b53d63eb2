"""Python client for the HTTP API (`qa serve`), sync and async, on httpx. Results are the qa.types models.

    from qa import Client
    with Client("http://127.0.0.1:8000") as qa:
        answer = qa.ask("中关村论坛是哪一年诞生的？")          # Answer
        reply = qa.chat("他认为人才要怎样才能变得更好？", history=["西湖大学校长是谁？", "施一公"])
        print(reply.text, reply.answer.searched_question)
        for piece in qa.stream_chat("西湖大学校长是谁？"):   # text pieces, then the final Answer
            print(piece if isinstance(piece, str) else piece.citations)

Collections and filters: every call takes collection= (None: the default one), and ask / chat take filters=
(`{"source": "新华社", "since": "2023-05-01", "until": "2023-05-31", "tags": ["科技"]}`):

        qa.add_document("a.txt", collection="finance", metadata={"source": "财新", "published": "2023-05-31"})
        qa.ask("…", collection="finance", filters={"source": "财新"})
        qa.update_document("a", {"tags": ["股市"]}, collection="finance")    # metadata only, no re-embedding

Errors raise QAClientError subclasses carrying the HTTP status code and the server's message.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx

from qa.types import Answer, ChatReply, CollectionInfo, DocumentInfo, DocumentsChanged, Readiness

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # the first question after start-up can be slow on CPU
MODEL = "qa-zh"


# errors ------------------------------------------------------------------------------------------------------
class QAClientError(Exception):
    """Anything that went wrong talking to the server. status_code is None when there was no HTTP answer."""

    def __init__(self, message: str, status_code: int | None = None, body: Any = None):
        super().__init__(f"{status_code}: {message}" if status_code else message)
        self.message = message
        self.status_code = status_code
        self.body = body


class QAConnectionError(QAClientError):
    """The server could not be reached."""


class QATimeoutError(QAClientError):
    """The server did not answer in time."""


class BadRequestError(QAClientError):
    """400, 413, 415, 422: the request was wrong (empty question, bad file, too large…)."""


class AuthenticationError(QAClientError):
    """401/403: a write without the right QA_API_TOKEN."""


class NotFoundError(QAClientError):
    """404: no such document, collection (or endpoint)."""


class ConflictError(QAClientError):
    """409: another document already has that id."""


class NotReadyError(QAClientError):
    """503: the server is still loading its models and index."""


class ServerError(QAClientError):
    """5xx: a failure on the server's side."""


def _error_class(status: int) -> type[QAClientError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 503:
        return NotReadyError
    if status >= 500:
        return ServerError
    return BadRequestError


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = response.text
    message = body.get("error", {}).get("message") if isinstance(body, dict) and isinstance(body.get("error"), dict) \
        else (body.get("detail") if isinstance(body, dict) else None)
    raise _error_class(response.status_code)(str(message or response.reason_phrase or body), response.status_code,
                                             body)


class _Transport:
    """Wraps httpx exceptions into QAClientError."""

    @staticmethod
    def wrap(exc: httpx.HTTPError) -> QAClientError:
        if isinstance(exc, httpx.TimeoutException):
            return QATimeoutError(f"the server did not answer in time: {exc.__class__.__name__}")
        if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError)):
            return QAConnectionError(f"cannot reach the server: {exc}")
        return QAClientError(f"{exc.__class__.__name__}: {exc}")


# shared request building / parsing ---------------------------------------------------------------------------
def _messages(question: str, history: list[str] | None) -> list[dict]:
    history = list(history or [])
    messages = []
    for i, turn in enumerate(history):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": turn or ""})
    messages.append({"role": "user", "content": question})
    return messages


def _ask_body(question: str, top_k: int | None, history: list[str] | None, collection: str | None = None,
              filters: dict | None = None) -> dict:
    """The AskRequest JSON; validated by the server, so bad input comes back as a BadRequestError."""
    body: dict[str, Any] = {"question": question, "history": list(history or [])}
    if top_k is not None:
        body["top_k"] = top_k
    if collection:
        body["collection"] = collection
    if filters:
        body["filters"] = filters
    return body


def model_for(collection: str | None) -> str:
    """The OpenAI `model` that answers from a collection: qa-zh, or qa-zh/NAME."""
    return f"{MODEL}/{collection}" if collection and collection != "default" else MODEL


def _chat_body(question: str, history: list[str] | None, top_k: int | None, stream: bool,
               collection: str | None = None, filters: dict | None = None) -> dict:
    body: dict[str, Any] = {"model": model_for(collection), "messages": _messages(question, history),
                            "stream": stream}
    if top_k:
        body["top_k"] = top_k
    if filters:
        body["filters"] = filters
    return body


def _in(collection: str | None) -> dict:
    """The query parameter naming a collection (none for the default one)."""
    return {"params": {"collection": collection}} if collection else {}


def _chat_reply(data: dict) -> ChatReply:
    try:
        return ChatReply(text=data["choices"][0]["message"]["content"] or "", answer=Answer.model_validate(data["qa"]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise QAClientError(f"unexpected chat response: {exc}", body=data) from exc


def _parse_event(line: str) -> dict | None:
    """One SSE line -> the chunk dict; None for comments, blank lines and [DONE]."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError as exc:
        raise QAClientError(f"malformed stream event: {data[:80]}") from exc
    if isinstance(chunk, dict) and "error" in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        raise _error_class(int(error.get("code") or 500))(str(error.get("message")), error.get("code"), chunk)
    return chunk


def _chunk_items(chunk: dict) -> list[str | Answer]:
    out: list[str | Answer] = []
    for choice in chunk.get("choices") or []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            out.append(content)
    if chunk.get("qa") is not None:
        out.append(Answer.model_validate(chunk["qa"]))
    return out


def _document_request(path: str | Path | None, text: str | None, doc_id: str | None, title: str | None,
                      metadata: dict | None = None, collection: str | None = None) -> dict:
    if (path is None) == (text is None):
        raise ValueError("give either a file path or text=")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        data = {"id": doc_id} if doc_id else {}
        if metadata:
            data["metadata"] = json.dumps(metadata, ensure_ascii=False)
        return {"files": {"file": (path.name, path.read_bytes())}, "data": data or None, **_in(collection)}
    body: dict[str, Any] = {"text": text}
    if doc_id:
        body["id"] = doc_id
    if title:
        body["title"] = title
    if metadata:
        body["metadata"] = metadata
    return {"json": body, **_in(collection)}


def _doc_url(name: str, kind: str = "documents") -> str:
    from urllib.parse import quote

    return f"/v1/{kind}/{quote(name, safe='')}"


def _collections(data: dict) -> list[CollectionInfo]:
    return [CollectionInfo.model_validate(c) for c in data["collections"]]


def _headers(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


# sync ----------------------------------------------------------------------------------------------------------
class Client:
    """Blocking client. token defaults to $QA_API_TOKEN; base_url to $QA_API_URL or http://127.0.0.1:8000.

    Use it as a context manager (or call `close()`). Every method raises a `QAClientError` subclass on failure.
    """

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None):
        self.base_url = (base_url or os.environ.get("QA_API_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("QA_API_TOKEN")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=_headers(token),
                                  transport=transport)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc
        _raise_for(response)
        return response

    def ready(self) -> Readiness:
        """Readiness (never raises for 503: .ready is False while the server loads)."""
        try:
            response = self._http.get("/ready")
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc
        if response.status_code not in (200, 503):
            _raise_for(response)
        return Readiness.model_validate(response.json())

    def wait_ready(self, timeout: float = 300.0, interval: float = 0.5) -> Readiness:
        """Poll /ready until the server is ready (or failed to load); QATimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.ready()
                if state.ready or state.status == "failed":
                    return state
            except QAConnectionError:
                pass
            if time.monotonic() > deadline:
                raise QATimeoutError(f"the server was not ready within {timeout:.0f}s")
            time.sleep(interval)

    def ask(self, question: str, top_k: int | None = None, history: list[str] | None = None,
            collection: str | None = None, filters: dict | None = None) -> Answer:
        """Ask one question (POST /v1/ask). `answer.answer` is None when the articles don't say.

        Args:
            question: the question, in Chinese (at most 500 characters).
            top_k: passages the reader reads (server default: 3).
            history: earlier turns, oldest first, alternating question and answer text, for follow-ups.
            collection: the collection to ask (default: the server's default one).
            filters: metadata filters, as in the HTTP API's `filters` (see the collections page).
        """
        body = _ask_body(question, top_k, history, collection, filters)
        return Answer.model_validate(self._request("POST", "/v1/ask", json=body).json())

    def chat(self, question: str, history: list[str] | None = None, top_k: int | None = None,
             collection: str | None = None, filters: dict | None = None) -> ChatReply:
        """One chat turn. history: earlier turns, oldest first, alternating question and answer text."""
        body = _chat_body(question, history, top_k, False, collection, filters)
        return _chat_reply(self._request("POST", "/v1/chat/completions", json=body).json())

    def stream_chat(self, question: str, history: list[str] | None = None, top_k: int | None = None,
                    collection: str | None = None, filters: dict | None = None) -> Iterator[str | Answer]:
        """Yield the reply's text pieces as they arrive, then the final Answer."""
        body = _chat_body(question, history, top_k, True, collection, filters)
        try:
            with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for(response)
                for line in response.iter_lines():
                    chunk = _parse_event(line)
                    if chunk is not None:
                        yield from _chunk_items(chunk)
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        """The documents of a collection (default: the default one)."""
        data = self._request("GET", "/v1/documents", **_in(collection)).json()
        return [DocumentInfo.model_validate(d) for d in data["documents"]]

    def add_document(self, path: str | Path | None = None, *, text: str | None = None, id: str | None = None,
                     title: str | None = None, metadata: dict | None = None,
                     collection: str | None = None) -> DocumentsChanged:
        """Upload a file (.txt .md .html .pdf), or add text=; metadata= beats the file's own. Returns the ids
        added or skipped. A collection that does not exist yet is created."""
        request = _document_request(path, text, id, title, metadata, collection)
        return DocumentsChanged.model_validate(self._request("POST", "/v1/documents", **request).json())

    def update_document(self, doc_id: str, metadata: dict, collection: str | None = None) -> DocumentInfo:
        """Change a document's metadata (given keys replace, None removes); nothing is embedded again."""
        response = self._request("PATCH", _doc_url(doc_id), json=metadata, **_in(collection))
        return DocumentInfo.model_validate(response.json())

    def remove_document(self, doc_id: str, collection: str | None = None) -> DocumentsChanged:
        """Remove a document by id (NotFoundError if there is none)."""
        return DocumentsChanged.model_validate(self._request("DELETE", _doc_url(doc_id), **_in(collection)).json())

    def collections(self) -> list[CollectionInfo]:
        """The collections with their sizes."""
        return _collections(self._request("GET", "/v1/collections").json())

    def create_collection(self, name: str) -> CollectionInfo:
        """Create an empty collection (ConflictError if it exists)."""
        return CollectionInfo.model_validate(self._request("POST", "/v1/collections", json={"name": name}).json())

    def drop_collection(self, name: str) -> None:
        """Drop a collection and its documents."""
        self._request("DELETE", _doc_url(name, "collections"))


# async ---------------------------------------------------------------------------------------------------------
class AsyncClient:
    """The same API for asyncio: `async with AsyncClient(url) as qa: await qa.ask(...)`."""

    def __init__(self, base_url: str | None = None, token: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = (base_url or os.environ.get("QA_API_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("QA_API_TOKEN")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, headers=_headers(token),
                                       transport=transport)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc
        _raise_for(response)
        return response

    async def ready(self) -> Readiness:
        try:
            response = await self._http.get("/ready")
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc
        if response.status_code not in (200, 503):
            _raise_for(response)
        return Readiness.model_validate(response.json())

    async def ask(self, question: str, top_k: int | None = None, history: list[str] | None = None,
                  collection: str | None = None, filters: dict | None = None) -> Answer:
        body = _ask_body(question, top_k, history, collection, filters)
        return Answer.model_validate((await self._request("POST", "/v1/ask", json=body)).json())

    async def chat(self, question: str, history: list[str] | None = None, top_k: int | None = None,
                   collection: str | None = None, filters: dict | None = None) -> ChatReply:
        body = _chat_body(question, history, top_k, False, collection, filters)
        return _chat_reply((await self._request("POST", "/v1/chat/completions", json=body)).json())

    async def stream_chat(self, question: str, history: list[str] | None = None, top_k: int | None = None,
                          collection: str | None = None, filters: dict | None = None) -> AsyncIterator[str | Answer]:
        body = _chat_body(question, history, top_k, True, collection, filters)
        try:
            async with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    chunk = _parse_event(line)
                    if chunk is not None:
                        for item in _chunk_items(chunk):
                            yield item
        except httpx.HTTPError as exc:
            raise _Transport.wrap(exc) from exc

    async def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        data = (await self._request("GET", "/v1/documents", **_in(collection))).json()
        return [DocumentInfo.model_validate(d) for d in data["documents"]]

    async def add_document(self, path: str | Path | None = None, *, text: str | None = None, id: str | None = None,
                           title: str | None = None, metadata: dict | None = None,
                           collection: str | None = None) -> DocumentsChanged:
        request = _document_request(path, text, id, title, metadata, collection)
        return DocumentsChanged.model_validate((await self._request("POST", "/v1/documents", **request)).json())

    async def update_document(self, doc_id: str, metadata: dict, collection: str | None = None) -> DocumentInfo:
        response = await self._request("PATCH", _doc_url(doc_id), json=metadata, **_in(collection))
        return DocumentInfo.model_validate(response.json())

    async def remove_document(self, doc_id: str, collection: str | None = None) -> DocumentsChanged:
        response = await self._request("DELETE", _doc_url(doc_id), **_in(collection))
        return DocumentsChanged.model_validate(response.json())

    async def collections(self) -> list[CollectionInfo]:
        return _collections((await self._request("GET", "/v1/collections")).json())

    async def create_collection(self, name: str) -> CollectionInfo:
        response = await self._request("POST", "/v1/collections", json={"name": name})
        return CollectionInfo.model_validate(response.json())

    async def drop_collection(self, name: str) -> None:
        await self._request("DELETE", _doc_url(name, "collections"))
