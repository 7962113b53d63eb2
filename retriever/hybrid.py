"""Hybrid retrieval: dense (FAISS) and BM25 results fused by reciprocal rank, then (when models.txt names a
reranker) the fused top candidates reordered by a cross-encoder."""

from __future__ import annotations

from dataclasses import dataclass

from retriever.chunking import Chunk
from retriever.index import CorpusIndex
from retriever.rerank import Reranker

MODES = ("hybrid", "fused", "dense", "bm25")  # hybrid = fused, then reranked when there is a reranker


@dataclass
class HybridRetriever:
    index: CorpusIndex
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    rrf_k: int = 60
    candidates: int = 30  # how deep each half looks before fusing
    reranker: Reranker | None = None
    rerank_depth: int = 10  # fused candidates the cross-encoder reads (its cost grows with this)
    rerank_weight: float = 1.0  # its rank's weight against the fused rank's (1.0)
    rerank_k: int = 5

    def retrieve(self, question: str, k: int, mode: str = "hybrid", state=None) -> list[tuple[Chunk, float]]:
        """Top-k chunks; pass one index state to keep a whole question on one consistent snapshot."""
        state = state or self.index.state
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == "hybrid" and self.reranker is not None:
            hits = self.retrieve(question, max(k, self.rerank_depth), "fused", state)
            head = self.reranker.rerank(question, hits[: self.rerank_depth], self.rerank_weight, self.rerank_k)
            # past the reranked head the fused order stands, scored on the same scale (fused rank term only)
            tail = [(chunk, 1 / (self.rerank_k + i + 1)) for i, (chunk, _) in enumerate(hits) if i >= len(head)]
            return (head + tail)[:k]
        depth = max(k, self.candidates)
        if mode == "dense":
            return self.index.search_dense(question, k, state)
        if mode == "bm25":
            return self.index.search_lexical(question, k, state)
        fused: dict[tuple[str, int], list] = {}
        for weight, hits in (
            (self.dense_weight, self.index.search_dense(question, depth, state)),
            (self.lexical_weight, self.index.search_lexical(question, depth, state)),
        ):
            for rank, (chunk, _) in enumerate(hits):
                key = (chunk.doc_id, chunk.start)
                entry = fused.setdefault(key, [chunk, 0.0])
                entry[1] += weight / (self.rrf_k + rank + 1)
        ranked = sorted(fused.values(), key=lambda e: e[1], reverse=True)
        return [(chunk, score) for chunk, score in ranked[:k]]
