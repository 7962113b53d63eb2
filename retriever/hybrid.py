"""Hybrid retrieval: dense (FAISS) and BM25 results fused by reciprocal rank; the chunks of the articles that
fusion puts first ranked again by BM25 among themselves and fused in; then (when models.txt names a reranker)
the fused top candidates reordered by a cross-encoder."""

from __future__ import annotations

from dataclasses import dataclass

from retriever.chunking import Chunk
from retriever.index import CorpusIndex
from retriever.rerank import Reranker

MODES = ("hybrid", "fused", "dense", "bm25")  # hybrid = fused, then reranked when there is a reranker


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


@dataclass
class HybridRetriever:
    index: CorpusIndex
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    rrf_k: int = 60
    candidates: int = 30  # how deep each half looks before fusing
    # DrQA's article-then-passage idea as a third ranking: BM25 among the chunks of the first `article_depth`
    # articles of the fused ranking (see CorpusIndex.search_lexical_within), fused in with this weight
    article_depth: int = 2
    article_weight: float = 3.0
    reranker: Reranker | None = None
    rerank_depth: int = 10  # fused candidates the cross-encoder reads (its cost grows with this)
    rerank_weight: float = 1.0  # its rank's weight against the fused rank's (1.0)
    rerank_k: int = 5

    def retrieve(self, question: str, k: int, mode: str = "hybrid", state=None,
                 docs: set[str] | None = None) -> list[tuple[Chunk, float]]:
        """Top-k chunks; pass one index state to keep a whole question on one consistent snapshot, and `docs`
        (document ids, from a filter) to search only those documents' chunks."""
        state = state or self.index.state
        check_mode(mode)
        if docs is not None and not docs:
            return []
        if mode == "hybrid" and self.reranker is not None:
            fused = [chunk for chunk, _ in self.retrieve(question, max(k, self.rerank_depth), "fused", state, docs)]
            head = fused[: self.rerank_depth]
            logits = self.reranker.scores(question, [chunk.text for chunk in head])
            by_logit = [head[i] for i in sorted(range(len(head)), key=lambda i: -logits[i])]
            # fused again with the fused order: only the head gets the cross-encoder's term, so it stays ahead
            # and past it the fused order stands
            return reciprocal_rank_fusion([(1.0, fused), (self.rerank_weight, by_logit)], self.rerank_k)[:k]
        depth = max(k, self.candidates)
        if mode == "dense":
            return self.index.search_dense(question, k, state, docs)
        if mode == "bm25":
            return self.index.search_lexical(question, k, state, docs)
        dense = self.index.search_dense(question, depth, state, docs)
        lexical = self.index.search_lexical(question, depth, state, docs)
        return self.fuse(question, dense, lexical, depth, state, docs)[:k]

    def fuse(self, question: str, dense, lexical, depth: int, state, docs=None) -> list[tuple[Chunk, float]]:
        """The rankings fused (benchmarks.fusion calls this with the halves computed once, to try many settings)."""
        return reciprocal_rank_fusion(self.rankings(question, dense, lexical, depth, state, docs), self.rrf_k)

    def rankings(self, question: str, dense, lexical, depth: int, state,
                 docs=None) -> list[tuple[float, list[Chunk]]]:
        """(weight, chunks) for each ranking fusion adds up: dense, BM25 and, when it runs, the article stage."""
        halves = [(self.dense_weight, [chunk for chunk, _ in dense]),
                  (self.lexical_weight, [chunk for chunk, _ in lexical])]
        first = reciprocal_rank_fusion(halves, self.rrf_k)
        articles = list(dict.fromkeys(chunk.doc_id for chunk, _ in first))[: self.article_depth]
        # when those articles are the whole index (or filtered slice) the ranking among them is the BM25 half
        # again: skip it
        if self.article_weight <= 0 or len(articles) >= len(state.documents if docs is None else docs):
            return halves
        within = self.index.search_lexical_within(question, articles, depth, state)
        return halves + [(self.article_weight, [chunk for chunk, _ in within])]


def reciprocal_rank_fusion(rankings: list[tuple[float, list[Chunk]]], k: int) -> list[tuple[Chunk, float]]:
    """Each ranking adds weight / (k + rank) to its chunks (rank 1 first); best total first."""
    fused: dict[tuple[str, int], list] = {}
    for weight, chunks in rankings:
        for rank, chunk in enumerate(chunks, 1):
            entry = fused.setdefault((chunk.doc_id, chunk.start), [chunk, 0.0])
            entry[1] += weight / (k + rank)
    return [(chunk, score) for chunk, score in sorted(fused.values(), key=lambda e: e[1], reverse=True)]
