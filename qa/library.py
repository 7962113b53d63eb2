"""The collections and documents a pipeline answers from: list, create, drop, add, remove, re-tag, follow a folder.

QAPipeline inherits these (qa.pipeline keeps the question's flow on one screen); they need its `settings`, its
default `index` and `retriever`, and open named collections on use.
"""

from __future__ import annotations

from pathlib import Path

from qa.settings import Settings
from qa.types import CollectionInfo, DocumentInfo, Metadata
from retriever import metadata
from retriever.collections import DEFAULT, CollectionNotFound, Collections, is_default
from retriever.documents import Document, iter_files, read_document
from retriever.hybrid import HybridRetriever
from retriever.local_models import resolve_model_path


def build_retriever(index, settings: Settings) -> HybridRetriever:
    """Fusion as settings say, with the cross-encoder reranker when models.txt names one."""
    from qa.models import optional_model_for

    name = optional_model_for("reranker")
    reranker = None
    if name:
        from retriever.rerank import Reranker

        reranker = Reranker(resolve_model_path(name))
    s = settings
    return HybridRetriever(index, s.dense_weight, s.lexical_weight, s.rrf_k,
                           article_depth=s.article_depth, article_weight=s.article_weight, reranker=reranker,
                           rerank_depth=s.rerank_depth, rerank_weight=s.rerank_weight, rerank_k=s.rerank_k)


class DocumentLibrary:
    # collections ---------------------------------------------------------------------------------------
    @property
    def collections(self) -> Collections:
        """The named collections of this pipeline's store, opened on use (made again when a copy of the
        pipeline is given another home or store, as the tests' isolated pipelines are)."""
        where = (str(self.settings.home), self.settings.store)
        if self.__dict__.get("_collections_at") != where:
            self._collections = Collections(self.settings, self.index.embedder)
            self._named: dict[str, tuple] = {}  # name -> (index, retriever)
            self._collections_at = where
        return self._collections

    def collection_name(self, collection: str | None) -> str:
        name = collection or self.settings.collection or DEFAULT
        return DEFAULT if is_default(name) else name

    def collection(self, collection: str | None, create: bool = False):
        """(index, retriever) of a collection; CollectionNotFound unless it exists (or create is set)."""
        name = self.collection_name(collection)
        if name == DEFAULT:
            return self.index, self.retriever
        exists = self.collections.exists(name)  # (also makes self._named for this store)
        opened = self._named.get(name)
        if opened is not None and exists:  # dropped elsewhere meanwhile: not served
            return opened
        self._named.pop(name, None)
        if not exists and not create:
            raise CollectionNotFound(name)
        index = self.collections.open(name, create=create)
        self._named[name] = (index, build_retriever(index, self.settings))
        return self._named[name]

    def collection_infos(self) -> list[CollectionInfo]:
        out = []
        for name in [DEFAULT, *self.collections.names()]:
            try:
                state = self.collection(name)[0].state
            except LookupError:  # dropped between listing and opening
                continue
            out.append(CollectionInfo(name=name, documents=len(state.documents), chunks=len(state.chunks)))
        return out

    def create_collection(self, name: str) -> bool:
        """Create an empty collection; False when it already exists."""
        if self.collections.exists(name):
            return False
        self.collection(name, create=True)
        return True

    def drop_collection(self, name: str) -> None:
        self.collections.drop(name)
        self._named.pop(name, None)  # (self.collections made it)

    # documents -----------------------------------------------------------------------------------------
    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        # one snapshot: a write meanwhile must not make the list disagree with itself
        state = self.collection(collection)[0].state
        return [
            DocumentInfo(id=i, title=m["title"], source=m.get("source", ""),
                         characters=len(state.documents[i].text), chunks=len(m["chunk_ids"]),
                         metadata=Metadata(**state.documents[i].meta))
            for i, m in sorted(state.manifest.documents.items())
        ]

    def add_documents(self, documents: list[Document], progress: bool = False,
                      collection: str | None = None) -> tuple[list[str], list[str]]:
        """Index documents; a named collection that does not exist yet is created."""
        return self.collection(collection, create=True)[0].add(documents, progress)

    def remove_documents(self, doc_ids: list[str], collection: str | None = None) -> list[str]:
        return self.collection(collection)[0].remove(doc_ids)

    def update_metadata(self, doc_id: str, changes: dict, collection: str | None = None) -> DocumentInfo | None:
        """Change one document's metadata (retriever.metadata.patch: given keys replace, None removes), without
        embedding anything again; None when there is no such document. A bad value raises MetadataError."""
        index = self.collection(collection)[0]
        index.refresh()
        doc = index.documents.get(doc_id)
        if doc is None:
            return None
        if not index.set_meta({doc_id: metadata.patch(doc.meta, changes)}):
            return None
        return next(d for d in self.documents(collection) if d.id == doc_id)

    def sync_folder(self, folder: Path, progress: bool = False) -> None:
        wanted = {d.id: d for d in (read_document(p) for p in iter_files([folder]))}
        have = self.index.documents
        stale = [i for i, d in have.items() if i not in wanted or wanted[i].fingerprint != d.fingerprint]
        self.index.remove(stale)
        self.index.add([d for i, d in wanted.items() if i not in self.index.documents], progress)
        retagged = {i: d.meta for i, d in wanted.items() if i in have and i not in stale and have[i].meta != d.meta}
        if retagged:  # a sidecar or front matter changed: metadata only
            self.index.set_meta(retagged)
