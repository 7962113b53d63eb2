"""Filtered questions at scale: 100k chunks (synthetic 512-d vectors and synthetic BM25 tokens, 10 chunks per
document), a filter on `source` matching 1% of them, searched through the same code a question uses
(retriever.filters.matching, then SnapshotSearch.search_dense / search_lexical with the matching documents),
on FAISS and on milvus-lite. Each filtered top 10 is checked against an unfiltered search over an index of just
those documents (exact FAISS over their vectors; BM25 built over their chunks alone).

    python -m benchmarks --parts filtered            (or: python -m benchmarks.filtered --chunks 100000)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNKS_PER_DOC = 10
TARGET = "目标社"


class _QueryVectors:
    """An 'embedder' that returns the synthetic query vector registered for a query string."""

    name, dim = "synthetic", 512

    def __init__(self):
        self.vectors: dict[str, np.ndarray] = {}

    def embed_queries(self, texts, **_):
        return np.stack([self.vectors[t] for t in texts])


def _corpus(n: int, dim: int, fraction: float, seed: int = 0):
    """(state pieces, query vectors, query texts) for n chunks; `fraction` of the documents are from TARGET."""
    import faiss

    from retriever.chunking import Chunk
    from retriever.documents import Document

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(64, n // 100), dim)).astype(np.float32)
    vectors = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(vectors)
    vocab = [f"词{i}" for i in range(20_000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1)  # Zipf-like word frequencies
    weights /= weights.sum()
    n_docs = n // CHUNKS_PER_DOC
    target_docs = set(rng.choice(n_docs, size=max(1, int(n_docs * fraction)), replace=False).tolist())
    documents, chunks, tokens, manifest_docs = {}, {}, {}, {}
    for d in range(n_docs):
        doc_id = f"d{d:06d}"
        source = TARGET if d in target_docs else f"社{d % 37}"
        documents[doc_id] = Document(doc_id, doc_id, "x", "bench", {"source": source, "published": "2023-05-01"})
        ids = list(range(d * CHUNKS_PER_DOC, (d + 1) * CHUNKS_PER_DOC))
        manifest_docs[doc_id] = {"title": doc_id, "fingerprint": doc_id, "source": "bench",
                                 "meta": documents[doc_id].meta, "chunk_ids": ids}
        for i in ids:
            chunks[i] = Chunk(doc_id, f"chunk {i}", 0, 1, 0, 1, ())
            tokens[i] = rng.choice(len(vocab), size=40, p=weights).tolist()
    tokens = {i: [vocab[t] for t in ts] for i, ts in tokens.items()}
    queries = vectors[rng.integers(0, n, 50)] + 0.05 * rng.standard_normal((50, dim)).astype(np.float32)
    faiss.normalize_L2(queries)
    texts = [" ".join(vocab[t] for t in rng.choice(2000, size=4, replace=False)) for _ in range(50)]
    return vectors, documents, chunks, tokens, manifest_docs, queries, texts


def _snapshot(store, documents, chunks, tokens, manifest_docs, embedder, lexical):
    from retriever.index import Manifest, SnapshotSearch, State

    manifest = Manifest("synthetic", embedder.dim, 200, 60, next_id=len(chunks), documents=manifest_docs)
    search = SnapshotSearch()
    search.state = State(manifest, documents, chunks, tokens, store, lexical)
    search.embedder = embedder
    return search


def _milvus_store(vectors, chunks, folder: Path):
    """The chunk vectors in a milvus-lite FLAT collection, ids = chunk ids (as MilvusCorpusIndex stores them)."""
    from pymilvus import DataType, MilvusClient

    from retriever.stores.milvus_index import MilvusVectors

    client = MilvusClient(str(folder / "bench.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection("bench_chunks", schema=schema, index_params=index, consistency_level="Strong")
    for b in range(0, len(vectors), 2000):
        client.insert("bench_chunks", [{"id": i, "vector": vectors[i].tolist(), "doc_id": chunks[i].doc_id}
                                       for i in range(b, min(b + 2000, len(vectors)))])
    client.load_collection("bench_chunks")
    return MilvusVectors(client, "bench_chunks", vectors.shape[1], "FLAT", len(vectors))


def bench_filtered(lines: list[str], n: int = 100_000, dim: int = 512, fraction: float = 0.01,
                   milvus: bool = True) -> dict:
    import faiss

    from retriever.filters import matching
    from retriever.lexical import LexicalIndex
    from retriever.stores.faiss_store import FaissStore

    vectors, documents, chunks, tokens, manifest_docs, queries, texts = _corpus(n, dim, fraction)
    embedder = _QueryVectors()
    for text, q in zip(texts, queries):
        embedder.vectors[text] = q
    started = time.perf_counter()
    lexical = LexicalIndex.build(tokens)
    bm25_build = time.perf_counter() - started
    store = FaissStore(dim)
    store.add(np.arange(n, dtype=np.int64), vectors)
    store.upgrade_if_large()  # as the index would: exact (flat) up to 100k
    stores = {"FAISS " + store.describe().split(",")[0]: store}
    with tempfile.TemporaryDirectory(prefix="qa-bench-milvus-") as folder:
        if milvus:
            started = time.perf_counter()
            stores["milvus-lite FLAT"] = _milvus_store(vectors, chunks, Path(folder))
            milvus_load = time.perf_counter() - started
        filters = {"source": TARGET}
        first = _snapshot(store, documents, chunks, tokens, manifest_docs, embedder, lexical)
        docs = matching(first.state, filters)
        slice_ids = np.fromiter(first.chunk_ids(first.state, docs), dtype=np.int64)
        # the reference: an index of just the matching documents
        exact = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        exact.add_with_ids(vectors[slice_ids], slice_ids)
        truth_dense = [exact.search(q[None], 10)[1][0].tolist() for q in queries]
        own_bm25 = LexicalIndex.build({i: tokens[i] for i in slice_ids.tolist()})
        truth_bm25 = [[i for i, _ in own_bm25.search(t, 10)] for t in texts]
        lines += ["", f"### Filtered questions: {n:,} chunks ({len(documents):,} documents), a filter matching "
                      f"{len(slice_ids):,} chunks ({100 * len(slice_ids) / n:.1f}%)", "",
                  f"BM25 over all chunks built in {bm25_build:.1f} s"
                  + (f"; milvus-lite loaded in {milvus_load:.0f} s" if milvus else "") + ".", "",
                  "| store | filter → documents | dense top 10, filtered | unfiltered dense | BM25 top 10, filtered "
                  "(first / same filter again) | same top 10 as an index of just those documents |",
                  "|---|---|---|---|---|---|"]
        figures = {}
        for name, vector_store in stores.items():
            search = _snapshot(vector_store, documents, chunks, tokens, manifest_docs, embedder, lexical)
            resolve, dense, plain, bm25, same = [], [], [], [], 0
            for text, truth_d, truth_b in zip(texts, truth_dense, truth_bm25):
                t0 = time.perf_counter()
                docs = matching(search.state, filters)
                t1 = time.perf_counter()
                hits = search.search_dense(text, 10, docs=docs)
                t2 = time.perf_counter()
                search.search_dense(text, 10)
                t3 = time.perf_counter()
                lex = search.search_lexical(text, 10, docs=docs)
                t4 = time.perf_counter()
                resolve.append(t1 - t0)
                dense.append(t2 - t1)
                plain.append(t3 - t2)
                bm25.append(t4 - t3)
                ids_d = [_cid(search, c) for c, _ in hits]
                ids_b = [_cid(search, c) for c, _ in lex]
                same += ids_d == truth_d and ids_b == truth_b
                assert all(c.doc_id in docs for c, _ in hits + lex), "a filtered search left the filter"
            figures[name] = {"resolve_ms": 1000 * statistics.median(resolve),
                             "dense_p50_ms": 1000 * statistics.median(dense),
                             "dense_p95_ms": 1000 * float(np.percentile(dense, 95)),
                             "unfiltered_p50_ms": 1000 * statistics.median(plain),
                             "bm25_first_ms": 1000 * bm25[0], "bm25_p50_ms": 1000 * statistics.median(bm25[1:]),
                             "same": same, "questions": len(texts)}
            f = figures[name]
            lines.append(f"| {name} | {f['resolve_ms']:.1f} ms | p50 {f['dense_p50_ms']:.1f} ms, p95 "
                         f"{f['dense_p95_ms']:.1f} ms | p50 {f['unfiltered_p50_ms']:.1f} ms | "
                         f"{f['bm25_first_ms']:.0f} ms / p50 {f['bm25_p50_ms']:.1f} ms | {same}/{len(texts)} |")
    return figures


def _cid(search, chunk) -> int:
    """A chunk's id (chunks are unique objects here)."""
    ids = search.__dict__.setdefault("_ids", {id(c): i for i, c in search.state.chunks.items()})
    return ids[id(chunk)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--no-milvus", action="store_true")
    args = parser.parse_args(argv)
    lines: list[str] = []
    bench_filtered(lines, args.chunks, fraction=args.fraction, milvus=not args.no_milvus)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
