"""Chinese sentence-aware chunking over normalised text; every chunk keeps offsets into the original."""

from __future__ import annotations

import re
from dataclasses import dataclass

from retriever.documents import Document
from retriever.normalize import NormalizedText, normalize

# A sentence ends at 。！？；… (or a line end), taking any closing quotes/brackets with it. ASCII '.' never
# ends a sentence, so "28.4%" and "U.S." stay whole; '·' in names is untouched.
_SENTENCE = re.compile(r"[^。！？!?；;…\n]*(?:[。！？!?；;…]+[”’」』）)】]*|\n|$)")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    text: str  # normalised text of the chunk
    start: int  # offsets into the original document text
    end: int
    norm_start: int  # offsets into the normalised text
    norm_end: int
    sentences: tuple[int, ...]  # sentence ids within the document


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in normalised text, whitespace-only pieces dropped."""
    spans = []
    for m in _SENTENCE.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def _pieces(text: str, s: int, e: int, size: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at commas (else hard) so no piece exceeds size."""
    out = []
    while e - s > size:
        cut = max(text.rfind(c, s, s + size) for c in "，,、：:")
        cut = cut + 1 if cut > s + size // 3 else s + size
        out.append((s, cut))
        s = cut
    out.append((s, e))
    return out


def chunk_normalized(doc_id: str, norm: NormalizedText, size: int = 200, overlap: int = 60) -> list[Chunk]:
    sentences = split_sentences(norm.text)
    units: list[tuple[int, int, int]] = []  # (start, end, sentence id)
    for sid, (s, e) in enumerate(sentences):
        units.extend((a, b, sid) for a, b in _pieces(norm.text, s, e, size))
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j < len(units) and units[j][1] - units[i][0] <= size:
            j += 1
        j = max(j, i + 1)
        s, e = units[i][0], units[j - 1][1]
        start, end = norm.to_original(s, e)
        chunks.append(
            Chunk(doc_id, norm.text[s:e], start, end, s, e, tuple(sorted({u[2] for u in units[i:j]})))
        )
        if j >= len(units):
            break
        # step forward, keeping up to `overlap` characters of trailing sentences for context
        k = j
        while k - 1 > i and units[j - 1][1] - units[k - 1][0] <= overlap:
            k -= 1
        i = k
    return chunks


def chunk_document(doc: Document, size: int = 200, overlap: int = 60) -> tuple[NormalizedText, list[Chunk]]:
    norm = normalize(doc.text)
    return norm, chunk_normalized(doc.id, norm, size, overlap)
