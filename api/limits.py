"""Request body limits, enforced before the app parses anything (Content-Length or counted while reading)."""

from __future__ import annotations

import json

MB = 1024 * 1024
DEFAULT_UPLOAD_BYTES = 25 * MB  # POST /v1/documents (files or JSON text)
DEFAULT_JSON_BYTES = 1 * MB  # everything else: questions and chats are small


class BodyLimit:
    """Pure ASGI middleware: buffer the body up to the route's limit, answer 413 beyond it."""

    def __init__(self, app, json_limit: int = DEFAULT_JSON_BYTES, upload_limit: int = DEFAULT_UPLOAD_BYTES,
                 upload_paths: tuple[str, ...] = ("/v1/documents",)):
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.upload_paths = upload_paths

    def limit_for(self, path: str) -> int:
        return self.upload_limit if path.rstrip("/") in self.upload_paths else self.json_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _reject(send, 400, "invalid Content-Length header")
            if size > limit:
                return await _reject(send, 413, _too_large(size, limit))
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > limit:
                return await _reject(send, 413, _too_large(None, limit))
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # afterwards: wait for the client to go away

        return await self.app(scope, replay, send)


def _too_large(size: int | None, limit: int) -> str:
    got = f"{size} bytes" if size is not None else "the request body"
    return f"{got} is over the {limit} byte limit for this endpoint"


async def _reject(send, status: int, message: str) -> None:
    from api.errors import error_body

    body = json.dumps(error_body(status, message), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
