"""Collections: named, separate sets of documents, each with its own index, in the same store.

    FAISS    the default collection is QA_HOME/index (as always); collection NAME is QA_HOME/collections/NAME
    Milvus   the default collection uses prefix "qa" (as always); NAME uses prefix qa_c_<hash of NAME>, and
             the registry collection qa_collections lists the names

Creating builds the empty collection first and makes it visible last (FAISS: one folder rename; Milvus: one
registry row); dropping hides it first (FAISS: one rename; Milvus: deleting the registry row and the meta
collection), then deletes the rest. A crash leaves the old or the new state; leftovers of a crashed drop are
cleared when the name is created again.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path

DEFAULT = "default"
NAME_PATTERN = re.compile(r"^[^\W][\w.\-]{0,127}$")  # letters (Chinese too), digits, _ . - ; no leading dot
REGISTRY = "qa_collections"


class CollectionError(ValueError):
    """A collection name that cannot be used (the message says why)."""


class CollectionNotFound(LookupError):
    def __init__(self, name: str):
        super().__init__(f"no collection named {name!r}")
        self.name = name


def is_default(name: str | None) -> bool:
    return name in (None, "", DEFAULT)


def check_name(name: str) -> str:
    """A valid collection name, checked like document ids; 'default' names the default collection."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise CollectionError(f"invalid collection name {name!r}: use up to 128 letters, digits, '_', '-' or "
                              "'.' (not first)")
    return name


def milvus_prefix(name: str) -> str:
    return "qa_c_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def faiss_root(home: Path, name: str) -> Path:
    return Path(home) / "collections" / name


class Collections:
    """The named collections of one store (settings.store, settings.home)."""

    def __init__(self, settings, embedder):
        self.settings, self.embedder = settings, embedder
        self.store = (settings.store or "faiss").strip()
        self._client = None
        self._registry_loaded = False

    @property
    def milvus(self) -> bool:
        return self.store != "faiss"

    # ---------------------------------------------------------------- reading
    def names(self) -> list[str]:
        if self.milvus:
            rows = self._registry_call("query", REGISTRY, filter='key != ""', output_fields=["key"])
            return sorted(r["key"] for r in rows)
        folder = Path(self.settings.home) / "collections"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / "CURRENT").exists())

    def exists(self, name: str) -> bool:
        if is_default(name):
            return True
        check_name(name)
        if self.milvus:
            return bool(self._registry_call("get", REGISTRY, ids=[name], output_fields=["key"]))
        return (faiss_root(self.settings.home, name) / "CURRENT").exists()

    # ---------------------------------------------------------------- opening, creating, dropping
    def open(self, name: str, create: bool = False, progress: bool = False):
        """The index of collection `name`; CollectionNotFound unless it exists or create is set."""
        check_name(name)
        if is_default(name):
            raise CollectionError("the default collection is opened by the pipeline itself")
        if not self.exists(name):
            if not create:
                raise CollectionNotFound(name)
            return self._create(name, progress)
        return self._open(name, progress)

    def _open(self, name: str, progress: bool):
        s = self.settings
        if self.milvus:
            from retriever.stores.milvus_index import MilvusCorpusIndex

            return MilvusCorpusIndex.open(self.store, self.embedder, list, s.chunk_size, s.overlap, progress,
                                          milvus_prefix(name), client=self.client)
        from retriever.index import CorpusIndex

        return CorpusIndex.open(faiss_root(s.home, name), self.embedder, list, s.chunk_size, s.overlap, progress)

    def _create(self, name: str, progress: bool):
        if self.milvus:
            from retriever.stores.milvus_index import MilvusCorpusIndex

            MilvusCorpusIndex.drop_leftovers(self.client, milvus_prefix(name), self.store)
            index = self._open(name, progress)
            self._registry_call("upsert", REGISTRY, [{"key": name, "v": [0.0, 0.0]}])  # visible from here on
            return index
        from retriever.index import CorpusIndex

        root = faiss_root(self.settings.home, name)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.parent / f".new-{secrets.token_hex(6)}"
        CorpusIndex.open(tmp, self.embedder, list, self.settings.chunk_size, self.settings.overlap)
        try:
            os.rename(tmp, root)  # visible from here on, whole
        except OSError:  # another process made it meanwhile (or a leftover folder without CURRENT)
            shutil.rmtree(tmp, ignore_errors=True)
            if not (root / "CURRENT").exists():
                shutil.rmtree(root, ignore_errors=True)
                return self._create(name, progress)
        return self._open(name, progress)

    def drop(self, name: str) -> None:
        check_name(name)
        if is_default(name):
            raise CollectionError("the default collection cannot be dropped; remove its documents instead")
        if not self.exists(name):
            raise CollectionNotFound(name)
        if self.milvus:
            from retriever.stores.milvus_index import MilvusCorpusIndex

            self._registry_call("delete", REGISTRY, ids=[name])  # gone for everyone from here on
            MilvusCorpusIndex.drop_leftovers(self.client, milvus_prefix(name), self.store)
            return
        root = faiss_root(self.settings.home, name)
        gone = root.parent / f".dropped-{secrets.token_hex(6)}"
        os.rename(root, gone)  # gone for everyone from here on
        shutil.rmtree(gone, ignore_errors=True)
        for leftover in root.parent.glob(".dropped-*"):  # of an earlier crash
            shutil.rmtree(leftover, ignore_errors=True)

    # ---------------------------------------------------------------- Milvus registry
    @property
    def client(self):
        if self._client is None:
            from retriever.stores.milvus_index import connect

            self._client = connect(self.store)
        return self._client

    def _registry_call(self, method: str, *args, **kwargs):
        from retriever.stores.milvus_index import MilvusStoreError

        try:
            if not self._registry_loaded:
                if not self.client.has_collection(REGISTRY):
                    if method in ("get", "query", "delete"):
                        return []
                    self._create_registry()
                self.client.load_collection(REGISTRY)  # released in a new process (milvus-lite) or after a restart
                self._registry_loaded = True
            return getattr(self.client, method)(*args, **kwargs)
        except MilvusStoreError:
            raise
        except Exception as exc:
            raise MilvusStoreError(f"the collection registry at {self.store}: {method} failed: {exc}") from exc

    def _create_registry(self) -> None:
        from pymilvus import DataType

        from retriever.stores.milvus_index import keyed_schema

        fields = [("key", DataType.VARCHAR, {"max_length": 1024, "is_primary": True})]
        self.client.create_collection(REGISTRY, **keyed_schema(self.client, fields))
