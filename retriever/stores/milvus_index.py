"""The corpus index on Milvus: the same interface as CorpusIndex, shared by every process that opens the URI.

    index = MilvusCorpusIndex.open("./qa-milvus.db", embedder, bundled_documents)   # milvus-lite, in-process
    index = MilvusCorpusIndex.open("http://milvus:19530", embedder, seed)            # a server or a cluster

Collections (prefix "qa" by default, one prefix per corpus):
    qa_meta               one row "live": format, model, dimension, chunking, the live chunk collection and a
                          random token that every write replaces
    qa_documents          original text (in parts of PART_CHARS), title, fingerprint, source; no real vector
    qa_metadata           one row per document: its metadata as JSON (outlet, date, tags…), replaced in
                          place by a metadata change (one upsert, then the token): nothing is embedded again
    qa_chunks_g000001     one row per chunk: the vector, document id, text, offsets, sentence ids, BM25 tokens

Several API workers share one store. Each keeps an in-memory snapshot (State: documents, chunks, BM25) like
CorpusIndex does, so one question sees one consistent corpus. `refresh()` reads the single meta row and
reloads only when the token changed: one primary-key lookup per question. Writes go chunks -> documents ->
token, and removals documents -> chunks -> token, so a reader that reloads in the middle of a write sees a
chunk only when its document is there too (others are left out of the snapshot and filtered from results).
Chunk ids come from Milvus (auto_id), so concurrent writers in different processes never collide.

Model or chunking change: as CorpusIndex, `open()` rebuilds from the stored originals, into a new chunk
collection (the next generation) that the meta row then points to; the previous generation is kept until the
one after, so a worker still on the old snapshot can finish its question. A dimension that contradicts the
store (the same model name with another vector size, or a collection whose vector field disagrees with the
meta row) is an error, never a silent rebuild: MilvusStoreError, like an unreachable URI. Both subclass
IndexError_, the index error the pipeline reports. In production let one process build or rebuild (the
compose file runs `qa index` once before the workers start); N workers starting on an empty store at once
would each seed it.

BM25 stays per process: bm25s over the project's own tokens (jieba search mode + character bigrams, OpenCC
t2s), which are stored with each chunk and rebuilt into bm25s when the snapshot reloads. Measured on the dev
questions (111 answerable, passage hit rates @1/@5/@20):
    bm25s, project tokenizer                        0.892 / 0.964 / 0.973    0.1 ms per query
    milvus-lite BM25 function, jieba analyzer        0.829 / 0.937 / 0.973    3.3 ms per query
    milvus-lite BM25 function, project tokens        0.892 / 0.964 / 0.973    7.3 ms per query
Milvus's own full-text search needs either its jieba analyzer (worse: no bigrams for unknown names, no
Traditional -> Simplified) or our tokens pre-joined with a whitespace tokenizer, which milvus-lite lacks (its
`standard` \\w+ analyzer happens to work; the server's `standard` splits CJK into characters), so the two
back ends would rank differently and the fused weights were tuned on bm25s. The snapshot holds every chunk in
memory anyway, so bm25s costs little more. The price: each worker rebuilds bm25s after a write (15 s for 100k
chunks on 2 cores) and holds all chunks in memory; past a few million chunks switch to the server's sparse
BM25 over pre-joined tokens with the whitespace tokenizer (see docs/scale.md).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from retriever.chunking import Chunk, chunk_document
from retriever.documents import Document, DocumentError
from retriever.embedder import Embedder
from retriever.index import IndexError_, Manifest, SnapshotSearch, State
from retriever.lexical import LexicalIndex, tokenize

FORMAT_VERSION = 1
PART_CHARS = 8000  # document text per row: 8000 characters stay under VARCHAR's 65535 bytes in UTF-8
BATCH = 512  # rows per insert / per query page
CONNECT_TIMEOUT = float(os.environ.get("QA_MILVUS_TIMEOUT", "5"))


class _NoMvccWarning(logging.Filter):
    """milvus-lite has no MVCC timestamp for iterators; pymilvus warns on every scan. Harmless here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_NoMvccWarning())


class MilvusStoreError(IndexError_):
    """The Milvus store cannot be used: unreachable, locked, or holding vectors of another dimension."""


def _strings(values) -> str:
    """A list of strings as a Milvus expression literal (milvus-lite has no filter templates)."""
    return json.dumps(list(values), ensure_ascii=False)


def is_milvus_uri(store: str) -> bool:
    return store.endswith(".db") or store.startswith(("http://", "https://", "tcp://", "grpc://"))


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


def connect(uri: str, timeout: float = CONNECT_TIMEOUT):
    """A MilvusClient, or MilvusStoreError naming the URI (fails within `timeout` seconds)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - an optional extra
        raise MilvusStoreError("a Milvus store needs pymilvus: pip install 'qa-zh[milvus]'") from exc
    if is_lite(uri):
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    try:
        return MilvusClient(uri=uri, timeout=timeout)
    except Exception as exc:
        hint = (" (milvus-lite lets one process open a .db at a time; several workers need a Milvus server)"
                if is_lite(uri) else "")
        raise MilvusStoreError(f"cannot reach the Milvus store at {uri}: {exc}{hint}") from exc


def keyed_schema(client, fields: list[tuple]) -> dict:
    """create_collection arguments for a table of rows by key (fields: (name, DataType, params)), with the
    2-d dummy vector Milvus wants in every collection."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False)
    for field, dtype, params in fields:
        schema.add_field(field, dtype, **params)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    return {"schema": schema, "index_params": index, "consistency_level": "Strong"}


class MilvusVectors:
    """The `store` of a snapshot: one chunk collection, searched by inner product."""

    def __init__(self, client, collection: str, dim: int, index_type: str, count: int):
        self.client, self.collection, self.dim, self.index_type, self.count = client, collection, dim, index_type, count

    def __len__(self) -> int:
        return self.count

    def describe(self) -> str:
        return f"Milvus {self.index_type} ({self.collection}), {self.count} vectors"

    def search(self, vector: np.ndarray, k: int, chunk_ids=None, doc_ids: list[str] | None = None) -> list[tuple[int, float]]:
        """Top k (id, score); with doc_ids, only those documents' chunks (a scalar filter expression on
        doc_id, applied by Milvus inside the search)."""
        if self.count == 0 or k <= 0 or (doc_ids is not None and not doc_ids):
            return []
        params = {"metric_type": "IP", "params": {"ef": max(64, k)} if self.index_type == "HNSW" else {}}
        where = {} if doc_ids is None else {"filter": f"doc_id in {_strings(doc_ids)}"}
        try:
            hits = self.client.search(self.collection, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                      anns_field="vector", limit=min(k, 16384), search_params=params, **where)
        except Exception as exc:
            raise MilvusStoreError(f"Milvus search in {self.collection} failed: {exc}") from exc
        return [(int(h["id"]), float(h["distance"])) for h in hits[0]]


class MilvusCorpusIndex(SnapshotSearch):
    """CorpusIndex on Milvus: documents, chunks and vectors in collections, snapshots in memory."""

    dense_slack = 16  # the collection also holds chunks written after this snapshot: look deeper, keep ours

    def __init__(self, uri: str, embedder: Embedder, chunk_size: int = 200, overlap: int = 60,
                 prefix: str = "qa", client=None):
        self.uri = str(uri)
        self.root = self.uri  # what the CLI prints as "index at ..."
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.prefix = prefix
        self.client = client or connect(self.uri)
        self.index_type = "FLAT" if is_lite(self.uri) else "HNSW"
        self.state: State | None = None
        self.generation: str | None = None  # the token of the loaded snapshot
        self._lock = threading.Lock()  # one writer at a time in this process
        self._loaded: set[str] = set()  # collections this client has loaded

    @property
    def meta_collection(self) -> str:
        return f"{self.prefix}_meta"

    @property
    def documents_collection(self) -> str:
        return f"{self.prefix}_documents"

    @property
    def metadata_collection(self) -> str:
        return f"{self.prefix}_metadata"

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        uri: str,
        embedder: Embedder,
        seed: Callable[[], list[Document]],
        chunk_size: int = 200,
        overlap: int = 60,
        progress: bool = False,
        prefix: str = "qa",
        client=None,
    ) -> "MilvusCorpusIndex":
        """Load the live snapshot; create and seed an empty store; rebuild when model or chunking changed."""
        index = cls(uri, embedder, chunk_size, overlap, prefix, client)
        with index._lock:
            meta = index._read_meta()
            wanted = index._settings()
            if meta is None:
                index._create_base_collections()
                index._build(seed(), progress, previous=None)
            elif (meta["format"], meta["model"], meta["dim"], meta["chunk_size"], meta["overlap"]) != wanted:
                if meta["model"] == embedder.name and meta["dim"] != embedder.dim:
                    raise MilvusStoreError(
                        f"the store at {uri} holds {meta['dim']}-d vectors of {meta['model']}, but this "
                        f"{embedder.name} gives {embedder.dim}-d vectors: a misconfigured model? (not rebuilding)")
                index._check_dimension(meta)
                index._create_base_collections()
                documents = index._load_documents()
                index._build(list(documents.values()), progress, previous=meta)
            else:
                index._check_dimension(meta)
                if index._create_base_collections():  # a store from before metadata: the seed's, once
                    index._adopt_seed_metadata(seed)
                index._load(meta)
        return index

    def _adopt_seed_metadata(self, seed: Callable[[], list[Document]]) -> None:
        try:
            by_print = {d.fingerprint: d.meta for d in seed()}
        except (DocumentError, OSError):
            return
        stored = self._load_documents()
        self._put_metadata({i: by_print[d.fingerprint] for i, d in stored.items() if by_print.get(d.fingerprint)})

    def refresh(self) -> bool:
        """Pick up writes of other processes: one meta lookup, a reload only when its token changed."""
        meta = self._read_meta()
        if meta is None or meta["token"] == self.generation:
            return False
        if (meta["model"], meta["dim"]) != (self.embedder.name, self.embedder.dim):
            raise MilvusStoreError(f"the store at {self.uri} was rebuilt for {meta['model']} ({meta['dim']}-d); "
                                   f"this process embeds with {self.embedder.name}: restart it with that model")
        self._load(meta)
        return True

    # ---------------------------------------------------------------- writing
    def add(self, documents: list[Document], progress: bool = False) -> tuple[list[str], list[str]]:
        """Index new documents. Returns (added ids, skipped ids: same content or id already indexed)."""
        with self._lock:
            self.refresh()
            state = self.state
            known = {d["fingerprint"] for d in state.manifest.documents.values()}
            added, skipped, fresh = [], [], []
            for doc in documents:
                if doc.fingerprint in known or doc.id in state.documents or doc.id in added:
                    skipped.append(doc.id)
                    continue
                known.add(doc.fingerprint)
                added.append(doc.id)
                fresh.append(doc)
            if fresh:
                chunks, tokens = self._insert(state.store.collection, fresh, progress)
                self._put_metadata({d.id: d.meta for d in fresh})
                self._put_documents(fresh)
                new = self._derive(state, {**state.chunks, **chunks}, {**state.tokens, **tokens},
                                   {**state.documents, **{d.id: d for d in fresh}})
                self._publish(new)
            return added, skipped

    def remove(self, doc_ids: list[str]) -> list[str]:
        """Drop documents by id; returns the ids that were there."""
        with self._lock:
            self.refresh()
            state = self.state
            present = [d for d in dict.fromkeys(doc_ids) if d in state.documents]
            if not present:
                return []
            gone = [cid for d in present for cid in state.manifest.documents[d]["chunk_ids"]]
            self._call("delete", self.documents_collection, filter=f"doc_id in {json.dumps(present)}")
            for b in range(0, len(gone), BATCH):
                self._call("delete", state.store.collection, ids=gone[b : b + BATCH])
            self._call("delete", self.metadata_collection, filter=f"key in {_strings(present)}")
            gone_set, present_set = set(gone), set(present)
            new = self._derive(state, {i: c for i, c in state.chunks.items() if i not in gone_set},
                               {i: t for i, t in state.tokens.items() if i not in gone_set},
                               {i: d for i, d in state.documents.items() if i not in present_set})
            self._publish(new)
            return present

    def set_meta(self, changes: dict[str, dict]) -> list[str]:
        """Replace documents' metadata ({id: metadata}): one upsert of their metadata rows, then the token;
        chunks and vectors stay. Returns the ids that were there."""
        with self._lock:
            self.refresh()
            state = self.state
            present = {d: changes[d] for d in changes if d in state.documents}
            if present:
                self._put_metadata(present)
                documents = {**state.documents, **{d: replace(state.documents[d], meta=m) for d, m in present.items()}}
                self._publish(self._derive(state, state.chunks, state.tokens, documents))
            return list(present)

    def drop(self) -> None:
        """Drop every Milvus collection of this corpus, the meta row's collection first (without it the corpus
        is gone for every reader at once; a crash later leaves only leftovers, which drop_leftovers clears)."""
        with self._lock:
            self.drop_leftovers(self.client, self.prefix, self.uri)

    @staticmethod
    def drop_leftovers(client, prefix: str, uri: str = "") -> None:
        """Drop the collections named prefix_*, the meta one first."""
        try:
            names = [n for n in client.list_collections() if n.startswith(prefix + "_")]
            for name in sorted(names, key=lambda n: n != f"{prefix}_meta"):
                client.drop_collection(name)
        except Exception as exc:
            raise MilvusStoreError(f"dropping {prefix} at {uri} failed: {exc}") from exc

    def rebuild(self, progress: bool = False) -> None:
        """Re-embed every stored document into a new chunk collection (after a model or chunking change)."""
        with self._lock:
            self.refresh()
            self._build(list(self.state.documents.values()), progress, previous=self._read_meta())

    # ---------------------------------------------------------------- internals: schema
    def _settings(self) -> tuple:
        return (FORMAT_VERSION, self.embedder.name, self.embedder.dim, self.chunk_size, self.overlap)

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except MilvusStoreError:
            raise
        except Exception as exc:
            raise MilvusStoreError(f"Milvus {method} on {self.uri} failed: {exc}") from exc

    def _create_base_collections(self) -> bool:
        """Create the meta, documents and metadata collections that are missing; True when the metadata one was."""
        from pymilvus import DataType

        created = False
        for name, fields in (
            (self.meta_collection, [("key", DataType.VARCHAR, {"max_length": 64, "is_primary": True}),
                                    ("value", DataType.VARCHAR, {"max_length": 65535})]),
            (self.documents_collection, [("key", DataType.VARCHAR, {"max_length": 1100, "is_primary": True}),
                                         ("doc_id", DataType.VARCHAR, {"max_length": 1024}),
                                         ("part", DataType.INT64, {}),
                                         ("title", DataType.VARCHAR, {"max_length": 4096}),
                                         ("fingerprint", DataType.VARCHAR, {"max_length": 64}),
                                         ("source", DataType.VARCHAR, {"max_length": 8192}),
                                         ("text", DataType.VARCHAR, {"max_length": 65535})]),
            (self.metadata_collection, [("key", DataType.VARCHAR, {"max_length": 1024, "is_primary": True}),
                                        ("value", DataType.VARCHAR, {"max_length": 65535})]),
        ):
            if self._call("has_collection", name):
                continue
            created = created or name == self.metadata_collection
            self._call("create_collection", name, **keyed_schema(self.client, fields))
        return created

    def _create_chunk_collection(self, name: str) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.embedder.dim)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("text", DataType.VARCHAR, max_length=65535)
        for field in ("start", "end", "norm_start", "norm_end"):
            schema.add_field(field, DataType.INT64)
        schema.add_field("sentences", DataType.VARCHAR, max_length=65535)
        schema.add_field("tokens", DataType.VARCHAR, max_length=65535)
        index = self.client.prepare_index_params()
        if self.index_type == "HNSW":
            index.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
        else:
            index.add_index("vector", index_type="FLAT", metric_type="IP")
        self._call("create_collection", name, schema=schema, index_params=index, consistency_level="Strong")

    def _check_dimension(self, meta: dict) -> None:
        name = meta["chunks"]
        if not self._call("has_collection", name):
            raise MilvusStoreError(f"the store at {self.uri} names chunk collection {name}, which is missing")
        fields = self._call("describe_collection", name)["fields"]
        dim = next((int(f["params"]["dim"]) for f in fields if f["name"] == "vector"), None)
        if dim != meta["dim"]:
            raise MilvusStoreError(f"collection {name} at {self.uri} holds {dim}-d vectors, its meta row says "
                                   f"{meta['dim']}-d ({meta['model']}): not a store this version can use")

    # ---------------------------------------------------------------- internals: reading
    def _ensure_loaded(self, name: str) -> None:
        """Collections come back released after a restart (server) or in a new process (milvus-lite)."""
        if name not in self._loaded:
            self._call("load_collection", name)
            self._loaded.add(name)

    def _read_meta(self) -> dict | None:
        if self.meta_collection not in self._loaded:
            if not self._call("has_collection", self.meta_collection):
                return None
            self._ensure_loaded(self.meta_collection)
        rows = self._call("get", self.meta_collection, ids=["live"], output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else None

    def _scan(self, collection: str, fields: list[str]) -> list[dict]:
        try:
            iterator = self.client.query_iterator(collection, batch_size=BATCH, filter="", output_fields=fields)
            rows: list[dict] = []
            while batch := iterator.next():
                rows.extend(batch)
            iterator.close()
            return rows
        except Exception as exc:
            raise MilvusStoreError(f"reading {collection} from {self.uri} failed: {exc}") from exc

    def _load_documents(self) -> dict[str, Document]:
        self._ensure_loaded(self.documents_collection)
        self._ensure_loaded(self.metadata_collection)
        metas = {r["key"]: json.loads(r["value"]) for r in self._scan(self.metadata_collection, ["key", "value"])}
        parts: dict[str, list[dict]] = defaultdict(list)
        for row in self._scan(self.documents_collection, ["doc_id", "part", "title", "fingerprint", "source", "text"]):
            parts[row["doc_id"]].append(row)
        documents = {}
        for doc_id, rows in parts.items():
            rows.sort(key=lambda r: r["part"])
            doc = Document(doc_id, rows[0]["title"], "".join(r["text"] for r in rows), rows[0]["source"],
                           metas.get(doc_id, {}))
            if doc.fingerprint == rows[0]["fingerprint"]:  # all parts there (not mid-write)
                documents[doc_id] = doc
        return documents

    def _load(self, meta: dict) -> None:
        self._ensure_loaded(meta["chunks"])
        documents = self._load_documents()
        chunks, tokens = {}, {}
        fields = ["id", "doc_id", "text", "start", "end", "norm_start", "norm_end", "sentences", "tokens"]
        for row in self._scan(meta["chunks"], fields):
            if row["doc_id"] not in documents:
                continue  # a write in progress, or leftovers of a removal
            cid = int(row["id"])
            chunks[cid] = Chunk(row["doc_id"], row["text"], row["start"], row["end"], row["norm_start"],
                                row["norm_end"], tuple(json.loads(row["sentences"])))
            tokens[cid] = json.loads(row["tokens"])
        store = MilvusVectors(self.client, meta["chunks"], meta["dim"], meta.get("index_type", self.index_type), 0)
        empty = State(Manifest(meta["model"], meta["dim"], meta["chunk_size"], meta["overlap"]), {}, {}, {},
                      store, LexicalIndex.build({}))
        self.state = self._derive(empty, chunks, tokens, documents)
        self.generation = meta["token"]

    def _derive(self, old: State, chunks: dict[int, Chunk], tokens: dict, documents: dict[str, Document]) -> State:
        """A snapshot from chunks and documents: manifest (chunk ids per document), store size, BM25."""
        by_doc: dict[str, list[int]] = defaultdict(list)
        for cid, chunk in sorted(chunks.items(), key=lambda kv: (kv[1].doc_id, kv[1].norm_start, kv[0])):
            by_doc[chunk.doc_id].append(cid)
        manifest = Manifest(old.manifest.model, old.manifest.dim, old.manifest.chunk_size, old.manifest.overlap,
                            next_id=max(chunks, default=-1) + 1)
        manifest.documents = {
            i: {"title": d.title, "fingerprint": d.fingerprint, "source": d.source, "meta": d.meta,
                "chunk_ids": by_doc.get(i, [])}
            for i, d in sorted(documents.items())
        }
        s = old.store
        store = MilvusVectors(s.client, s.collection, s.dim, s.index_type, len(chunks))
        return State(manifest, documents, chunks, tokens, store, LexicalIndex.build(tokens))

    # ---------------------------------------------------------------- internals: writing
    def _insert(self, collection: str, documents: list[Document], progress: bool):
        """Chunk, tokenise, embed and insert; returns the new chunks and tokens under Milvus's ids."""
        pending: list[tuple[Chunk, list[str]]] = []
        for doc in documents:
            for chunk in chunk_document(doc, self.chunk_size, self.overlap)[1]:
                pending.append((chunk, tokenize(chunk.text)))
        vectors = self.embedder.embed_passages([c.text for c, _ in pending], progress=progress)
        chunks, tokens = {}, {}
        for b in range(0, len(pending), BATCH):
            rows = [
                {"vector": vectors[b + j].tolist(), "doc_id": c.doc_id, "text": c.text, "start": c.start,
                 "end": c.end, "norm_start": c.norm_start, "norm_end": c.norm_end,
                 "sentences": json.dumps(list(c.sentences)), "tokens": json.dumps(t, ensure_ascii=False)}
                for j, (c, t) in enumerate(pending[b : b + BATCH])
            ]
            ids = list(self._call("insert", collection, rows)["ids"])
            for cid, (c, t) in zip(ids, pending[b : b + BATCH]):
                chunks[int(cid)], tokens[int(cid)] = c, t
        return chunks, tokens

    def _put_documents(self, documents: list[Document]) -> None:
        rows = []
        for doc in documents:
            pieces = [doc.text[i : i + PART_CHARS] for i in range(0, len(doc.text), PART_CHARS)] or [""]
            rows.extend(
                {"key": f"{doc.id}#{n}", "doc_id": doc.id, "part": n, "title": doc.title, "source": doc.source,
                 "fingerprint": doc.fingerprint, "text": piece, "v": [0.0, 0.0]}
                for n, piece in enumerate(pieces)
            )
        for b in range(0, len(rows), BATCH):
            self._call("upsert", self.documents_collection, rows[b : b + BATCH])

    def _put_metadata(self, metas: dict[str, dict]) -> None:
        rows = [{"key": i, "value": json.dumps(m, ensure_ascii=False), "v": [0.0, 0.0]} for i, m in metas.items()]
        for b in range(0, len(rows), BATCH):
            self._call("upsert", self.metadata_collection, rows[b : b + BATCH])

    def _write_meta(self, meta: dict) -> None:
        self._call("upsert", self.meta_collection,
                   [{"key": "live", "value": json.dumps(meta, ensure_ascii=False), "v": [0.0, 0.0]}])

    def _publish(self, state: State) -> None:
        """Replace the token (readers reload) and swap in the new snapshot."""
        meta = self._read_meta()
        seen = meta["token"] == self.generation  # nobody else wrote since our snapshot
        meta["token"] = secrets.token_hex(8)
        meta["updated"] = time.time()
        self._write_meta(meta)
        if seen:
            self.state, self.generation = state, meta["token"]
        else:
            self._load(meta)  # merge in the other writer's changes

    def _build(self, documents: list[Document], progress: bool, previous: dict | None) -> None:
        """A new generation: a fresh chunk collection for `documents`, then the meta row points to it."""
        unique, seen, ids = [], set(), set()
        for doc in documents:  # same content twice is indexed once
            if doc.fingerprint not in seen and doc.id not in ids:
                seen.add(doc.fingerprint)
                ids.add(doc.id)
                unique.append(doc)
        number = int(previous["chunks"].rsplit("_g", 1)[1]) + 1 if previous else 1
        name = f"{self.prefix}_chunks_g{number:06d}"
        if self._call("has_collection", name):
            self._call("drop_collection", name)  # a crashed build
        self._create_chunk_collection(name)
        self._ensure_loaded(name)
        chunks, tokens = self._insert(name, unique, progress) if unique else ({}, {})
        stored = self._load_documents()
        self._put_metadata({d.id: d.meta for d in unique if stored.get(d.id) != d})
        self._put_documents([d for d in unique if stored.get(d.id) != d])
        stale = [d for d in stored if d not in ids]
        if stale:
            self._call("delete", self.documents_collection, filter=f"doc_id in {json.dumps(stale)}")
            self._call("delete", self.metadata_collection, filter=f"key in {_strings(stale)}")
        meta = {"format": FORMAT_VERSION, "model": self.embedder.name, "dim": self.embedder.dim,
                "chunk_size": self.chunk_size, "overlap": self.overlap, "chunks": name,
                "index_type": self.index_type, "token": secrets.token_hex(8), "updated": time.time()}
        self._write_meta(meta)
        store = MilvusVectors(self.client, name, self.embedder.dim, self.index_type, 0)
        empty = State(Manifest(self.embedder.name, self.embedder.dim, self.chunk_size, self.overlap), {}, {}, {},
                      store, LexicalIndex.build({}))
        self.state = self._derive(empty, chunks, tokens, {d.id: d for d in unique})
        self.generation = meta["token"]
        # keep the previous generation for workers still answering on it; drop the ones before
        for old in self._call("list_collections"):
            tail = old.removeprefix(f"{self.prefix}_chunks_g")
            if tail != old and tail.isdigit() and int(tail) < number - 1:
                self._call("drop_collection", old)
