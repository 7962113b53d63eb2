"""Result types shared by the CLI (--json), the HTTP API and the Python client: the JSON shape is defined once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, computed_field


class Metadata(BaseModel):
    """A document's metadata: outlet, publication date (YYYY-MM-DD or an ISO date-time), URL, author, tags and
    free key/values (retriever.metadata reads and checks them)."""

    source: str | None = None
    published: str | None = None
    url: str | None = None
    author: str | None = None
    tags: list[str] = Field(default_factory=list)
    extra: dict[str, str] = Field(default_factory=dict)


class Published(BaseModel):
    """Where and when the cited document was published (from its metadata; None when unknown)."""

    source: str | None = None
    published: str | None = None
    url: str | None = None


class Passage(Published):
    """A retrieved chunk of a document; offsets are character offsets into the original file."""

    document: str
    title: str
    text: str
    start: int
    end: int
    score: float
    sentence_ids: list[int] = Field(default_factory=list)


class Citation(Published):
    """Where the answer stands: the passage it came from and the answer's own offsets in the original file."""

    document: str
    title: str
    passage: str
    passage_start: int
    passage_end: int
    start: int  # answer span in the original file: original_text[start:end]
    end: int
    quote: str  # original_text[start:end], exactly as the file has it (PDF line breaks included)
    sentence_ids: list[int] = Field(default_factory=list)

    @computed_field  # the cited passage under the name the first JSON shape used
    @property
    def text(self) -> str:
        return self.passage


class Answer(BaseModel):
    """One question's result: the exact answer span with its citations, or `answer=None` when the articles don't say.
    `passages` are the passages the reader read, best first."""

    question: str
    searched_question: str  # the question after follow-up rewriting (what retrieval saw)
    answer: str | None  # None: the articles don't say
    score: float  # the reader's margin of the best span over "no answer" (refused below the threshold)
    # calibrated probability in [0, 1] that the best span answers the question (sigmoid fitted on the tune split)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)
    collection: str = "default"
    # how many documents the question's filter let through (None: no filter); 0 answers "the articles don't say"
    filtered_documents: int | None = None
    note: str | None = None  # e.g. "the filter matched no document"

    @property
    def found(self) -> bool:
        return self.answer is not None


class DocumentInfo(BaseModel):
    """An indexed document: id, title, where it came from, its length in characters and its number of chunks."""

    id: str
    title: str
    source: str = ""  # where the text came from (file path, "api", "upload:NAME"); the outlet is metadata.source
    characters: int
    chunks: int
    metadata: Metadata = Field(default_factory=Metadata)


# HTTP API requests and replies (shared by api/ and qa/client.py) ------------------------------------------
class AskRequest(BaseModel):
    """POST /v1/ask. history: earlier turns, oldest first, alternating question and answer text."""

    model_config = {"extra": "forbid"}

    question: str
    top_k: int | None = Field(default=None, ge=1, le=20)
    history: list[str] = Field(default_factory=list, max_length=40)
    collection: str | None = None  # None: the default collection
    # on document metadata: source, author, url, id or a free key (a value or a list of values); since / until
    # (YYYY-MM-DD, inclusive); tags (all of them). See retriever.filters
    filters: dict[str, Any] | None = None


class DocumentText(BaseModel):
    """POST /v1/documents as JSON: the article text; id and title are derived when missing."""

    model_config = {"extra": "forbid"}

    text: str
    id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None  # source, published, url, author, tags, and free keys


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int


class CollectionRequest(BaseModel):
    """POST /v1/collections."""

    model_config = {"extra": "forbid"}

    name: str


class DocumentDetail(DocumentInfo):
    """GET /v1/documents/{id}: the document's metadata and its original text."""

    text: str


class DocumentsChanged(BaseModel):
    """What a document write did: ids added, skipped (same content already indexed) and removed."""

    added: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    documents: list[DocumentInfo] = Field(default_factory=list)  # the added documents


class Readiness(BaseModel):
    """GET /ready: ready only when the index and the models are loaded."""

    ready: bool
    status: str  # "ready", "loading" or "failed"
    error: str | None = None
    documents: int | None = None
    chunks: int | None = None
    model: str | None = None


class ChatReply(BaseModel):
    """A chat turn as the Python client returns it: the assistant's text and the structured Answer."""

    text: str
    answer: Answer
