"""Documents: an id, a title, the original text and metadata, read from .txt/.md/.html/.pdf files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from retriever import metadata
from retriever.metadata import MetadataError

SUPPORTED = {".txt", ".md", ".html", ".htm", ".pdf"}
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "qa" / "data" / "corpus"
MAX_FILE_BYTES = 20 * 1024 * 1024


class DocumentError(ValueError):
    """A file that cannot be read as an article (clear message for the user)."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str  # the original text: every offset we report points into it
    source: str = ""  # where it came from (file path, "api", "upload:NAME"); the outlet is meta["source"]
    meta: dict = field(default_factory=dict, hash=False)  # retriever.metadata: source, published, url, tags…

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def title_of(text: str) -> str:
    """The headline: the first non-empty line, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def decode_bytes(data: bytes, name: str) -> str:
    """Decode UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030/Big5; refuse binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:  # odd length, lone surrogates: say so rather than crash
            raise DocumentError(f"{name}: broken UTF-16 text ({exc.reason} at byte {exc.start})") from None
    if b"\x00" in data[:4096]:
        raise DocumentError(f"{name}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # GB18030 decodes almost any bytes, Big5 text included: decode both and keep the one that reads as
    # ordinary Chinese (common hanzi, ASCII, punctuation) rather than private-use or rare characters
    candidates = []
    for encoding in ("gb18030", "big5"):
        try:
            candidates.append((_plausibility(data.decode(encoding)), encoding))
        except UnicodeDecodeError:
            continue
    if not candidates or max(candidates)[0] < 0.5:
        raise DocumentError(f"{name}: cannot decode as UTF-8, UTF-16, GB18030 or Big5 text")
    return data.decode(max(candidates)[1])


def _plausibility(text: str) -> float:
    def ordinary(ch: str) -> bool:
        o = ord(ch)
        return 0x4E00 <= o <= 0x9FFF or 0x20 <= o < 0x7F or ch in "\n\r\t" or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF

    return sum(map(ordinary, text)) / max(len(text), 1)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: scripts and styles dropped, block elements end lines."""
    return parse_html(html)[0]


def parse_html(html: str) -> tuple[str, list[tuple[str, str]], str | None, str | None]:
    """(visible text, <meta> (name or property, content) pairs, canonical link, <title>) of an HTML page."""
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        BLOCK = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "title", "section", "article"}

        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skip = 0
            self.meta: list[tuple[str, str]] = []
            self.canonical: str | None = None
            self.title: list[str] | None = None
            self.in_title = False

        def handle_starttag(self, tag, attrs):
            a = {k.lower(): v or "" for k, v in attrs}
            if tag == "meta" and (a.get("property") or a.get("name")) and "content" in a:
                self.meta.append(((a.get("property") or a.get("name")).strip(), a["content"]))
            elif tag == "link" and "canonical" in a.get("rel", "").lower().split() and a.get("href"):
                self.canonical = self.canonical or a["href"].strip()
            self.in_title = tag == "title" and self.title is None
            if self.in_title:
                self.title = []
            if tag in ("script", "style", "noscript", "template"):
                self.skip += 1
            elif tag in self.BLOCK:
                self.parts.append("\n")

        def handle_endtag(self, tag):
            self.in_title = False
            if tag in ("script", "style", "noscript", "template"):
                self.skip = max(0, self.skip - 1)
            elif tag in self.BLOCK:
                self.parts.append("\n")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)
                if self.in_title:
                    self.title.append(data)

    parser = _Text()
    parser.feed(html)
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    title = " ".join("".join(parser.title or []).split())[:200] or None
    return "\n".join(line for line in lines if line), parser.meta, parser.canonical, title


def pdf_to_text(data: bytes, name: str) -> str:
    return parse_pdf(data, name)[0]


def parse_pdf(data: bytes, name: str):
    """(text, document information dictionary) of a PDF."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a declared dependency
        raise DocumentError("reading PDFs needs the pypdf package") from exc
    import io

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted")
        return "\n".join(page.extract_text() or "" for page in reader.pages), reader.metadata
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{name}: broken PDF ({exc.__class__.__name__})") from exc


def text_from_bytes(data: bytes, name: str) -> str:
    return parse_bytes(data, name)[0]


def parse_bytes(data: bytes, name: str) -> tuple[str, dict, str | None]:
    """(text, the file's own metadata, its title or None) of a file's bytes. Front matter in .md/.txt is read
    and taken off the text (offsets count from the body); malformed front matter is a DocumentError."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise DocumentError(f"{name}: unsupported file type {suffix or '(none)'}; use {', '.join(sorted(SUPPORTED))}")
    if len(data) > MAX_FILE_BYTES:
        raise DocumentError(f"{name}: {len(data)} bytes is over the {MAX_FILE_BYTES} byte limit")
    meta, title = {}, None
    try:
        if suffix == ".pdf":
            text, info = parse_pdf(data, name)
            meta, title = metadata.pdf_meta(info, name)
        else:
            text = decode_bytes(data, name)
            if suffix in (".html", ".htm"):
                text, pairs, canonical, title = parse_html(text)
                meta = metadata.html_meta(pairs, canonical, name)
            else:
                meta, text, title = metadata.split_front_matter(text, name)
    except MetadataError as exc:
        raise DocumentError(str(exc)) from None
    if not text.strip():
        raise DocumentError(f"{name}: no text in the file")
    return text, meta, title


def read_document(path: Path, doc_id: str | None = None, meta: dict | None = None) -> Document:
    """A file as a Document, its metadata from the file, then a sidecar NAME.meta.json, then `meta` (each
    overriding the one before, key by key)."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DocumentError(f"{path.name}: {path.stat().st_size} bytes is over the {MAX_FILE_BYTES} byte limit")
    text, own, title = parse_bytes(path.read_bytes(), path.name)
    sidecar, sidecar_title = {}, None
    side = metadata.sidecar_of(path)
    try:
        if side is not None:
            sidecar, sidecar_title = metadata.read_sidecar(side)
        explicit = metadata.clean(meta, "given metadata")
    except MetadataError as exc:
        raise DocumentError(str(exc)) from None
    return Document(doc_id or path.stem, sidecar_title or title or title_of(text), text, str(path),
                    metadata.merge(own, sidecar, explicit))


def iter_files(paths: list[Path]) -> list[Path]:
    """Files to index: the given files, and supported files inside given folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        else:
            files.append(path)
    return files


def read_folder(folder: Path) -> list[Document]:
    return [read_document(p) for p in iter_files([folder])]


def bundled_documents() -> list[Document]:
    return read_folder(BUNDLED_CORPUS)
