"""Which index to open: FAISS folders on this machine (QA_STORE=faiss, the default) or a Milvus URI.

    QA_STORE=faiss                   CorpusIndex under QA_HOME/index (or one folder per --corpus)
    QA_STORE=./qa-milvus.db          milvus-lite, in this process (any path ending in .db)
    QA_STORE=http://milvus:19530     a Milvus server or cluster, shared by every worker
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from retriever.documents import Document
from retriever.embedder import Embedder
from retriever.index import CorpusIndex, IndexError_


def open_index(settings, corpus: Path | None, embedder: Embedder, seed: Callable[[], list[Document]],
               progress: bool = False):
    """CorpusIndex or MilvusCorpusIndex, as settings.store says; both answer the same calls."""
    store = (settings.store or "faiss").strip()
    if store == "faiss":
        return CorpusIndex.open(settings.index_dir(corpus), embedder, seed, settings.chunk_size, settings.overlap,
                                progress)
    from retriever.stores.milvus_index import MilvusCorpusIndex, is_milvus_uri

    if not is_milvus_uri(store):
        raise IndexError_(f"unknown store {store!r}: use faiss, a milvus-lite path ending in .db, "
                          "or a Milvus URI such as http://localhost:19530")
    prefix = "qa"
    if corpus is not None:  # an ad-hoc folder gets its own collections, like its own FAISS folder
        prefix += "_" + hashlib.sha256(str(Path(corpus).resolve()).encode()).hexdigest()[:12]
    return MilvusCorpusIndex.open(store, embedder, seed, settings.chunk_size, settings.overlap, progress, prefix)
