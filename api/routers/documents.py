"""Documents: list, show, add (multipart file upload or JSON text), change metadata (PATCH) and delete; in the
default collection or the one named by `?collection=NAME`.

Writes go one at a time (a lock, plus the index's own file lock across processes); reads and questions keep
running meanwhile, because the index swaps its whole state in one step.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import ready_service, require_token
from api.errors import ApiError
from api.service import Service
from qa.types import DocumentDetail, DocumentInfo, DocumentsChanged, DocumentText
from retriever import metadata
from retriever.collections import NAME_PATTERN as ID_PATTERN  # document ids and collection names alike
from retriever.collections import check_name
from retriever.documents import MAX_FILE_BYTES, SUPPORTED, Document, DocumentError, parse_bytes, title_of

router = APIRouter(tags=["documents"])
MAX_FILES = 20
COLLECTION = Query(None, description="the collection (default: the default one)")


def safe_id(raw: str, fallback: str) -> str:
    """A document id from a file name: the base name without folders or suffix, unsafe characters -> '_'."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name  # drop a/b/ and a\\b\\ alike
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    stem = unicodedata.normalize("NFC", stem)
    stem = re.sub(r"[^\w.\-]+", "_", stem).strip("._-")[:128]
    return stem if stem and ID_PATTERN.match(stem) else fallback


def check_id(doc_id: str) -> str:
    if not ID_PATTERN.match(doc_id) or ".." in doc_id:
        raise ApiError(422, f"invalid document id {doc_id!r}: use up to 128 letters, digits, '_', '-' or '.' "
                            "(not first)")
    return doc_id


def _info(service: Service, doc_id: str, collection: str | None) -> DocumentInfo:
    return next(d for d in service.pipeline.documents(collection) if d.id == doc_id)


@router.get("/v1/documents")
def list_documents(collection: str | None = COLLECTION, service: Service = Depends(ready_service)) -> dict:
    """The documents of a collection (default: the default one): `{"documents": [DocumentInfo…], "count",
    "collection"}`."""
    service.refresh(collection)
    docs = service.pipeline.documents(collection)
    return {"documents": [d.model_dump() for d in docs], "count": len(docs),
            "collection": service.pipeline.collection_name(collection)}


@router.get("/v1/documents/{doc_id}", response_model=DocumentDetail)
def get_document(doc_id: str, collection: str | None = COLLECTION,
                 service: Service = Depends(ready_service)) -> DocumentDetail:
    """One document's metadata and its original text (the text citation offsets index); 404 if unknown."""
    doc = service.pipeline.collection(collection)[0].documents.get(doc_id)
    if doc is None:
        raise ApiError(404, f"no document with id {doc_id!r}")
    return DocumentDetail(**_info(service, doc_id, collection).model_dump(), text=doc.text)


def _metadata_field(raw) -> dict:
    """The multipart field 'metadata': a JSON object of metadata for the uploaded file."""
    if raw is None:
        return {}
    if not isinstance(raw, str):
        raise ApiError(422, "the field 'metadata' is a JSON object as text")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the field 'metadata' is not valid JSON: {exc}") from exc
    return metadata.clean(value, "metadata")


async def _from_multipart(request: Request) -> list[Document]:
    form = await request.form(max_files=MAX_FILES, max_fields=20)
    files = [f for f in form.getlist("file") + form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise ApiError(422, "no file in the upload: send it as the multipart field 'file'")
    given_id = form.get("id")
    if given_id is not None and (not isinstance(given_id, str) or len(files) > 1):
        raise ApiError(422, "the field 'id' names one uploaded file; upload files one at a time to choose ids")
    explicit = _metadata_field(form.get("metadata"))
    documents = []
    for upload in files:
        name = PureWindowsPath(PurePosixPath(upload.filename or "upload.txt").name).name or "upload.txt"
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in SUPPORTED:
            raise ApiError(415, f"{name}: unsupported file type {suffix or '(none)'}; use "
                                f"{', '.join(sorted(SUPPORTED))}")
        data = await upload.read()
        if len(data) > MAX_FILE_BYTES:
            raise ApiError(413, f"{name}: {len(data)} bytes is over the {MAX_FILE_BYTES} byte limit")
        if not data.strip():
            raise ApiError(400, f"{name}: the file is empty")
        text, own, title = await run_in_threadpool(parse_bytes, data, name)  # DocumentError -> 400
        import hashlib

        fallback = "doc_" + hashlib.sha256(text.encode()).hexdigest()[:16]
        doc_id = check_id(given_id) if given_id else safe_id(name, fallback)
        documents.append(Document(doc_id, title or title_of(text) or name, text, f"upload:{name}",
                                  metadata.merge(own, explicit)))
    return documents


async def _from_json(request: Request) -> list[Document]:
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON in the request body: {exc}") from exc
    try:
        body = DocumentText.model_validate(payload)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        raise ApiError(422, f"invalid document: {summary}", details=details) from exc
    if not body.text.strip():
        raise ApiError(422, "the document text is empty")
    if "\x00" in body.text:
        raise ApiError(400, "the document text contains NUL characters; send plain text")
    for field, value in (("text", body.text), ("title", body.title or "")):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # JSON escapes like "\ud800": not text, and not storable as UTF-8
            raise ApiError(400, f"the document {field} is not valid Unicode (lone surrogate characters)") from None
    import hashlib

    fingerprint = hashlib.sha256(body.text.encode("utf-8")).hexdigest()[:16]
    doc_id = check_id(body.id) if body.id is not None else f"doc_{fingerprint}"
    title = (body.title or "").strip()[:200] or title_of(body.text)
    return [Document(doc_id, title, body.text, "api", metadata.clean(body.metadata, "metadata"))]


@router.post("/v1/documents", response_model=DocumentsChanged, status_code=201,
             dependencies=[Depends(require_token)])
async def add_documents(request: Request, collection: str | None = COLLECTION,
                        service: Service = Depends(ready_service)):
    """Add a file (multipart 'file', optional 'id' and 'metadata' JSON) or JSON {text, id?, title?, metadata?};
    a collection that does not exist yet is created. 201 when added, 200 with `skipped` when the same content is
    already indexed, 409 when another document has the id. Needs the bearer token when QA_API_TOKEN is set."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        documents = await _from_multipart(request)
    elif content_type == "application/json" or content_type.endswith("+json"):
        documents = await _from_json(request)
    else:
        raise ApiError(415, "send a file as multipart/form-data (field 'file') or JSON {\"text\", \"id\"?, "
                            f"\"title\"?}}, not {content_type or 'a body without Content-Type'}")

    if collection is not None:
        check_name(collection)  # CollectionError -> 422, before anything is written

    def write() -> DocumentsChanged:
        with service.write_lock:
            index = service.pipeline.collection(collection, create=True)[0]
            index.refresh()
            have = index.documents
            for doc in documents:
                if doc.id in have and have[doc.id].fingerprint != doc.fingerprint:
                    raise ApiError(409, f"a different document already has the id {doc.id!r}; delete it first "
                                        "or choose another id")
            added, skipped = service.pipeline.add_documents(documents, collection=collection)
            infos = [d for d in service.pipeline.documents(collection) if d.id in set(added)]
            return DocumentsChanged(added=added, skipped=skipped, documents=infos)

    result = await run_in_threadpool(write)
    return JSONResponse(result.model_dump(), status_code=201 if result.added else 200)


@router.patch("/v1/documents/{doc_id}", response_model=DocumentInfo, dependencies=[Depends(require_token)])
def update_metadata(doc_id: str, changes: dict = Body(..., examples=[{"source": "新华社", "tags": ["科技"]}]),
                    collection: str | None = COLLECTION, service: Service = Depends(ready_service)) -> DocumentInfo:
    """Change a document's metadata without embedding anything again: the keys given replace theirs (null
    removes one; free keys as themselves or under "extra"), the others stay."""
    if not isinstance(changes, dict) or not changes:
        raise ApiError(422, "send the metadata to change as a JSON object, e.g. {\"tags\": [\"科技\"]}")
    with service.write_lock:
        info = service.pipeline.update_metadata(doc_id, changes, collection)  # MetadataError -> 422
    if info is None:
        raise ApiError(404, f"no document with id {doc_id!r}")
    return info


@router.delete("/v1/documents/{doc_id}", response_model=DocumentsChanged, dependencies=[Depends(require_token)])
def remove_document(doc_id: str, collection: str | None = COLLECTION,
                    service: Service = Depends(ready_service)) -> DocumentsChanged:
    """Remove a document (404 if unknown). Needs the bearer token when QA_API_TOKEN is set."""
    with service.write_lock:
        removed = service.pipeline.remove_documents([doc_id], collection)
    if not removed:
        raise ApiError(404, f"no document with id {doc_id!r}")
    return DocumentsChanged(removed=removed)
