"""Settings from flags and QA_* environment variables, in one object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default, cast=str):
    value = os.environ.get(f"QA_{name}")
    return cast(value) if value not in (None, "") else default


def default_home() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qa-zh"))


@dataclass
class Settings:
    home: Path = field(default_factory=lambda: Path(_env("HOME", default_home())).expanduser())
    top_k: int = field(default_factory=lambda: _env("TOP_K", 3, int))
    no_answer_threshold: float | None = field(default_factory=lambda: _env("NO_ANSWER_THRESHOLD", None, float))
    # the reader's early stop: a margin, "off" (read every passage at once), or unset (shipped with the reader)
    early_stop: str | None = field(default_factory=lambda: _env("EARLY_STOP", None))
    chunk_size: int = field(default_factory=lambda: _env("CHUNK_SIZE", 200, int))
    overlap: int = field(default_factory=lambda: _env("CHUNK_OVERLAP", 60, int))
    retrieval: str = field(default_factory=lambda: _env("RETRIEVAL", "hybrid"))
    # reciprocal-rank fusion: weight of each half and the rank constant, chosen on the tune split with 7,180
    # distractor articles by `python -m benchmarks.fusion --distractors`
    dense_weight: float = field(default_factory=lambda: _env("DENSE_WEIGHT", 1.0, float))
    lexical_weight: float = field(default_factory=lambda: _env("LEXICAL_WEIGHT", 3.0, float))
    rrf_k: int = field(default_factory=lambda: _env("RRF_K", 1, int))
    # a third ranking fused in: BM25 among the chunks of the fused ranking's first `article_depth` articles
    # (0 weight turns it off); chosen the same way
    article_depth: int = field(default_factory=lambda: _env("ARTICLE_DEPTH", 2, int))
    article_weight: float = field(default_factory=lambda: _env("ARTICLE_WEIGHT", 3.0, float))
    # the cross-encoder (models.txt `reranker`) reorders the fused top `rerank_depth`: its rank and the fused
    # rank are fused again, 1/(k + fused rank) + weight/(k + its rank); chosen on the tune split
    rerank_depth: int = field(default_factory=lambda: _env("RERANK_DEPTH", 10, int))
    rerank_weight: float = field(default_factory=lambda: _env("RERANK_WEIGHT", 1.0, float))
    rerank_k: int = field(default_factory=lambda: _env("RERANK_K", 5, int))
    api_token: str | None = field(default_factory=lambda: _env("API_TOKEN", None))
    # where the index lives: "faiss" (folders under home), a milvus-lite path ending in .db, or http://host:19530
    store: str = field(default_factory=lambda: _env("STORE", "faiss"))
    # the collection questions and writes go to when none is named ("default": the index under home/index)
    collection: str = field(default_factory=lambda: _env("COLLECTION", "default"))
    max_question_chars: int = 500

    def index_dir(self, corpus: Path | None = None) -> Path:
        """The default index, or one per ad-hoc corpus folder (ask --corpus DIR)."""
        if corpus is None:
            return self.home / "index"
        import hashlib

        key = hashlib.sha256(str(Path(corpus).resolve()).encode()).hexdigest()[:16]
        return self.home / "corpora" / key
