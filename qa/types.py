"""Result types shared by the CLI (--json), the HTTP API and the Python client: the JSON shape is defined once."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Passage(BaseModel):
    """A retrieved chunk of a document; offsets are character offsets into the original file."""

    document: str
    title: str
    text: str
    start: int
    end: int
    score: float
    sentence_ids: list[int] = Field(default_factory=list)


class Citation(BaseModel):
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


class Answer(BaseModel):
    question: str
    searched_question: str  # the question after follow-up rewriting (what retrieval saw)
    answer: str | None  # None: the articles don't say
    score: float
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.answer is not None


class DocumentInfo(BaseModel):
    id: str
    title: str
    source: str = ""
    characters: int
    chunks: int
