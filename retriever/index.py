"""The corpus index on disk: original documents, chunks, FAISS vectors and BM25, in atomic generations.

Layout under the index folder:
    documents/<fingerprint>.txt     original texts (content-addressed, never rewritten)
    gen-000007/manifest.json        model, dimension, chunking, documents and their chunk ids
    gen-000007/chunks.jsonl         one chunk per line (text, offsets, sentence ids, BM25 tokens)
    gen-000007/vectors.faiss        FAISS IndexIDMap2 over the chunk ids
    CURRENT                         the name of the live generation (replaced atomically)

A write builds a whole new generation in a temporary folder, renames it into place, then swaps CURRENT: a
crash leaves either the old or the new index, never half of one. In memory, a write builds a new State
and swaps one reference, so searches running meanwhile see the old or the new state, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from retriever.chunking import Chunk, chunk_document
from retriever.documents import Document, DocumentError
from retriever.embedder import Embedder
from retriever.lexical import LexicalIndex, tokenize
from retriever.stores.faiss_store import FaissStore

FORMAT_VERSION = 3


@dataclass
class Manifest:
    model: str
    dim: int
    chunk_size: int
    overlap: int
    next_id: int = 0
    # id -> {title, fingerprint, source, meta, chunk_ids}; meta (retriever.metadata) changes without re-embedding
    documents: dict[str, dict] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def settings(self) -> tuple:
        return (self.version, self.model, self.dim, self.chunk_size, self.overlap)


@dataclass
class State:
    manifest: Manifest
    documents: dict[str, Document]
    chunks: dict[int, Chunk]
    tokens: dict[int, list[str]]
    store: FaissStore
    lexical: LexicalIndex


class IndexError_(RuntimeError):
    pass


def _fsync_write(path: Path, data: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# A filtered question's BM25 ranks its slice with the slice's own word statistics (what an index of just those
# documents would do) up to this many chunks; a larger slice is ranked by the whole index's statistics, masked
# to the slice, instead of rebuilding BM25 over most of the index for one question.
SLICE_BM25_MAX = 20_000


def _with_meta(old: State, changes: dict[str, dict]) -> State:
    """The state with these documents' metadata replaced; chunks, vectors and BM25 shared, not copied."""
    manifest = Manifest(**{**asdict(old.manifest), "documents": dict(old.manifest.documents)})
    documents = dict(old.documents)
    for doc_id, meta in changes.items():
        manifest.documents[doc_id] = {**manifest.documents[doc_id], "meta": meta}
        documents[doc_id] = replace(documents[doc_id], meta=meta)
    return State(manifest, documents, old.chunks, old.tokens, old.store, old.lexical)


class SnapshotSearch:
    """Searches over one State (the live one unless given): the same for every vector store. `docs` (a set of
    document ids, from retriever.filters) limits a search to those documents' chunks, inside the search."""

    state: State
    embedder: Embedder
    # how many more vectors to ask the store for than wanted: a shared store (Milvus) also holds chunks written
    # after this snapshot, which are dropped
    dense_slack = 0

    @property
    def documents(self) -> dict[str, Document]:
        return self.state.documents

    def search_dense(self, query: str, k: int, state: State | None = None,
                     docs: set[str] | None = None) -> list[tuple[Chunk, float]]:
        state = state or self.state
        vector = self.embedder.embed_queries([query])[0]
        if docs is None:
            hits = state.store.search(vector, k + self.dense_slack)
        else:
            ids = np.fromiter(self.chunk_ids(state, docs), dtype=np.int64)
            hits = state.store.search(vector, k + self.dense_slack, chunk_ids=ids, doc_ids=sorted(docs))
        return [(state.chunks[i], s) for i, s in hits if i in state.chunks][:k]

    def search_lexical(self, query: str, k: int, state: State | None = None,
                       docs: set[str] | None = None) -> list[tuple[Chunk, float]]:
        state = state or self.state
        if docs is None:
            hits = state.lexical.search(query, k)
        else:
            ids = list(self.chunk_ids(state, docs))
            if len(ids) <= SLICE_BM25_MAX:
                hits = self._slice_lexical(state, docs, ids).search(query, k)
            else:
                hits = state.lexical.search(query, k, only=np.asarray(ids, dtype=np.int64))
        return [(state.chunks[i], s) for i, s in hits if i in state.chunks]

    @staticmethod
    def chunk_ids(state: State, docs) -> Iterator[int]:
        for d in docs:
            if d in state.manifest.documents:
                yield from (i for i in state.manifest.documents[d]["chunk_ids"] if i in state.chunks)

    def _slice_lexical(self, state: State, docs: set[str], ids: list[int]) -> LexicalIndex:
        """BM25 over one slice, kept for the next questions with the same filter on the same snapshot."""
        cache = self.__dict__.setdefault("_slices", {})
        key = frozenset(docs)
        hit = cache.get(key)
        if hit is not None and hit[0] is state:
            return hit[1]
        lexical = LexicalIndex.build({i: state.tokens[i] for i in ids})
        if len(cache) >= 16:
            cache.pop(next(iter(cache)))
        cache[key] = (state, lexical)
        return lexical

    def search_lexical_within(self, query: str, doc_ids: list[str], k: int,
                              state: State | None = None) -> list[tuple[Chunk, float]]:
        """BM25 over the chunks of these documents only, with word statistics of those chunks: among an
        article's chunks the words every chunk shares (its subject's name) weigh little and the rest decide,
        where the whole index would rate the subject's name rare and rank by it."""
        state = state or self.state
        ids = [i for d in doc_ids if d in state.manifest.documents
               for i in state.manifest.documents[d]["chunk_ids"] if i in state.chunks]
        local = LexicalIndex.build({i: state.tokens[i] for i in ids})
        return [(state.chunks[i], s) for i, s in local.search(query, k)]


class CorpusIndex(SnapshotSearch):
    def __init__(self, root: Path, embedder: Embedder, chunk_size: int = 200, overlap: int = 60):
        self.root = Path(root)
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.state: State | None = None
        self.generation: str | None = None

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        root: Path,
        embedder: Embedder,
        seed: Callable[[], list[Document]],
        chunk_size: int = 200,
        overlap: int = 60,
        progress: bool = False,
    ) -> "CorpusIndex":
        """Load the live generation; rebuild when missing or built with other settings (seeding if empty)."""
        index = cls(root, embedder, chunk_size, overlap)
        index.root.mkdir(parents=True, exist_ok=True)
        with index._write_lock():
            loaded = index._load_current()
            wanted = (FORMAT_VERSION, embedder.name, embedder.dim, chunk_size, overlap)
            if loaded is None or loaded.manifest.settings() != wanted:
                documents = list(loaded.documents.values()) if loaded else seed()
                index._commit(index._build(documents, progress=progress))
            else:
                index.state = loaded
                index._adopt_seed_metadata(seed)
        return index

    def _adopt_seed_metadata(self, seed: Callable[[], list[Document]]) -> None:
        """An index written before documents had metadata: give its seed documents (the bundled articles)
        the metadata their files now carry, once, without re-embedding."""
        untouched = [i for i, m in self.state.manifest.documents.items() if "meta" not in m]
        if not untouched:
            return
        try:
            by_print = {d.fingerprint: d.meta for d in seed()}
        except (DocumentError, OSError):  # a folder that no longer reads: they stay without metadata
            by_print = {}
        self._commit(_with_meta(self.state, {i: by_print.get(self.state.documents[i].fingerprint, {})
                                             for i in untouched}))

    def refresh(self) -> bool:
        """Pick up a generation written by another process (e.g. `qa add` while the server runs)."""
        current = self._read_current_name()
        if current and current != self.generation:
            state = self._load_current()
            if state is not None:
                self.state = state
                return True
        return False

    # ---------------------------------------------------------------- writing
    def add(self, documents: list[Document], progress: bool = False) -> tuple[list[str], list[str]]:
        """Index new documents. Returns (added ids, skipped ids: same content or id already indexed)."""
        with self._write_lock():
            self.refresh()
            state = self.state
            known = {d["fingerprint"]: i for i, d in state.manifest.documents.items()}
            added, skipped, fresh = [], [], []
            for doc in documents:
                if doc.fingerprint in known or doc.id in state.documents or doc.id in added:
                    skipped.append(doc.id)
                    continue
                known[doc.fingerprint] = doc.id
                added.append(doc.id)
                fresh.append(doc)
            if fresh:
                self._commit(self._extend(state, fresh, progress))
            return added, skipped

    def remove(self, doc_ids: list[str]) -> list[str]:
        """Drop documents by id; returns the ids that were there."""
        with self._write_lock():
            self.refresh()
            old = self.state
            present = [d for d in doc_ids if d in old.documents]
            if not present:
                return []
            manifest = Manifest(**{**asdict(old.manifest), "documents": dict(old.manifest.documents)})
            gone: list[int] = []
            for doc_id in present:
                gone.extend(manifest.documents.pop(doc_id)["chunk_ids"])
            store = old.store.copy()
            store.remove(gone)
            gone_set = set(gone)
            chunks = {i: c for i, c in old.chunks.items() if i not in gone_set}
            tokens = {i: t for i, t in old.tokens.items() if i not in gone_set}
            documents = {i: d for i, d in old.documents.items() if i not in present}
            self._commit(State(manifest, documents, chunks, tokens, store, LexicalIndex.build(tokens)))
            return present

    def set_meta(self, changes: dict[str, dict]) -> list[str]:
        """Replace documents' metadata ({id: metadata}) in one new generation: chunks and vectors are reused,
        nothing is embedded again. Returns the ids that were there."""
        with self._write_lock():
            self.refresh()
            old = self.state
            present = [d for d in changes if d in old.documents]
            if present:
                self._commit(_with_meta(old, {d: changes[d] for d in present}))
            return present

    def rebuild(self, progress: bool = False) -> None:
        with self._write_lock():
            self.refresh()
            self._commit(self._build(list(self.state.documents.values()), progress))

    # ---------------------------------------------------------------- internals
    def _build(self, documents: list[Document], progress: bool) -> State:
        manifest = Manifest(self.embedder.name, self.embedder.dim, self.chunk_size, self.overlap)
        empty = State(manifest, {}, {}, {}, FaissStore(self.embedder.dim), LexicalIndex.build({}))
        unique, seen = [], set()
        for doc in documents:  # same content twice is indexed once
            if doc.fingerprint not in seen and doc.id not in {d.id for d in unique}:
                seen.add(doc.fingerprint)
                unique.append(doc)
        return self._extend(empty, unique, progress)

    def _extend(self, old: State, documents: list[Document], progress: bool) -> State:
        manifest = Manifest(**{**asdict(old.manifest), "documents": dict(old.manifest.documents)})
        chunks, tokens, docs = dict(old.chunks), dict(old.tokens), dict(old.documents)
        new_ids, new_texts = [], []
        for doc in documents:
            _, doc_chunks = chunk_document(doc, self.chunk_size, self.overlap)
            ids = list(range(manifest.next_id, manifest.next_id + len(doc_chunks)))
            manifest.next_id += len(doc_chunks)
            for cid, chunk in zip(ids, doc_chunks):
                chunks[cid] = chunk
                tokens[cid] = tokenize(chunk.text)
            manifest.documents[doc.id] = {
                "title": doc.title, "fingerprint": doc.fingerprint, "source": doc.source, "meta": doc.meta,
                "chunk_ids": ids,
            }
            docs[doc.id] = doc
            new_ids.extend(ids)
            new_texts.extend(c.text for c in doc_chunks)
        store = old.store.copy()
        store.add(np.array(new_ids, dtype=np.int64), self.embedder.embed_passages(new_texts, progress=progress))
        store.upgrade_if_large()  # exact search while small, IVF once the corpus crosses the line
        return State(manifest, docs, chunks, tokens, store, LexicalIndex.build(tokens))

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """One writer at a time across processes (the server and a `qa add` in a terminal)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_current_name(self) -> str | None:
        try:
            return (self.root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _load_current(self) -> State | None:
        name = self._read_current_name()
        if not name or not (self.root / name / "manifest.json").exists():
            return None
        folder = self.root / name
        try:
            manifest = Manifest(**json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
            documents = {}
            for doc_id, meta in manifest.documents.items():
                text = (self.root / "documents" / f"{meta['fingerprint']}.txt").read_text(encoding="utf-8")
                documents[doc_id] = Document(doc_id, meta["title"], text, meta.get("source", ""), meta.get("meta", {}))
            chunks, tokens = {}, {}
            with open(folder / "chunks.jsonl", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    cid = row.pop("id")
                    tokens[cid] = row.pop("tokens")
                    row["sentences"] = tuple(row["sentences"])
                    chunks[cid] = Chunk(**row)
            store = FaissStore.load(folder / "vectors.faiss")
        except (OSError, ValueError, TypeError, KeyError, RuntimeError):
            return None  # unreadable or from an older format: rebuilt by open()
        self.generation = name
        return State(manifest, documents, chunks, tokens, store, LexicalIndex.build(tokens))

    def _commit(self, state: State) -> None:
        """Write state as a new generation, atomically switch CURRENT to it, then drop older ones."""
        docs_dir = self.root / "documents"
        docs_dir.mkdir(exist_ok=True)
        for doc in state.documents.values():
            target = docs_dir / f"{doc.fingerprint}.txt"
            if not target.exists():
                tmp = docs_dir / f".{doc.fingerprint}.{os.getpid()}.tmp"
                _fsync_write(tmp, doc.text)
                os.replace(tmp, target)
        previous = self._read_current_name()
        number = int(previous.split("-")[1]) + 1 if previous else 1
        name = f"gen-{number:06d}"
        tmp_dir = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        _fsync_write(tmp_dir / "manifest.json", json.dumps(asdict(state.manifest), ensure_ascii=False))
        lines = []
        for cid, chunk in state.chunks.items():
            row = {"id": cid, **asdict(chunk), "tokens": state.tokens[cid]}
            lines.append(json.dumps(row, ensure_ascii=False))
        _fsync_write(tmp_dir / "chunks.jsonl", "\n".join(lines) + ("\n" if lines else ""))
        state.store.save(tmp_dir / "vectors.faiss")
        if (self.root / name).exists():
            shutil.rmtree(self.root / name)
        os.replace(tmp_dir, self.root / name)
        _fsync_write(self.root / "CURRENT.tmp", name)
        os.replace(self.root / "CURRENT.tmp", self.root / "CURRENT")
        self.state, self.generation = state, name
        self._collect_garbage(keep={name})

    def _collect_garbage(self, keep: set[str]) -> None:
        live = {d.fingerprint for d in self.state.documents.values()}
        for path in self.root.iterdir():
            if path.is_dir() and (path.name.startswith("gen-") or path.name.startswith(".tmp-")) and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        for path in (self.root / "documents").glob("*.txt"):
            if path.stem not in live:
                path.unlink(missing_ok=True)
        # half-written texts of a writer killed mid-commit (only writers make them, under this same lock)
        for path in (self.root / "documents").glob(".*.tmp"):
            path.unlink(missing_ok=True)
