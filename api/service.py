"""The app's state: the pipeline (loaded once, in a background thread), its readiness and the write lock."""

from __future__ import annotations

import logging
import threading
import time
import weakref

from qa.settings import Settings

log = logging.getLogger("qa.api")
MODEL_ID = "qa-zh"

# one write lock per pipeline, so two apps over the same pipeline (tests, mounts) still write one at a time
_WRITE_LOCKS: "weakref.WeakKeyDictionary[object, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


class Service:
    def __init__(self, settings: Settings, pipeline=None):
        self.settings = settings
        self.pipeline = pipeline
        self.error: str | None = None
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        if pipeline is not None:
            self._loaded.set()

    # ------------------------------------------------------------------ loading
    def start(self) -> None:
        """Load the models and the index in a background thread (so /health answers at once)."""
        if self._loaded.is_set() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, name="qa-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        started = time.monotonic()
        try:
            from qa.pipeline import QAPipeline

            self.pipeline = QAPipeline(self.settings)
            log.info("models and index loaded in %.1fs", time.monotonic() - started)
        except Exception as exc:  # reported by /ready; the server keeps answering /health
            log.exception("loading the pipeline failed")
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self._loaded.set()

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    @property
    def status(self) -> str:
        return "ready" if self.ready else ("failed" if self.error else "loading")

    def wait(self, timeout: float | None = None) -> bool:
        self._loaded.wait(timeout)
        return self.ready

    @property
    def write_lock(self) -> threading.Lock:
        with _LOCKS_GUARD:
            lock = _WRITE_LOCKS.get(self.pipeline)
            if lock is None:
                lock = _WRITE_LOCKS[self.pipeline] = threading.Lock()
            return lock

    # ------------------------------------------------------------------ reading
    def refresh(self, collection: str | None = None) -> None:
        """Pick up documents added by another process (`qa add` while the server runs); skipped during our writes.
        An unknown collection raises CollectionNotFound (404)."""
        index = self.pipeline.collection(collection)[0]
        lock = self.write_lock
        if lock.acquire(blocking=False):
            try:
                index.refresh()
            except Exception:  # a half-written generation from elsewhere: keep serving the current one
                log.warning("could not refresh the index", exc_info=True)
            finally:
                lock.release()

    def ask(self, question: str, top_k: int | None = None, history: list[str] | None = None,
            collection: str | None = None, filters: dict | None = None):
        self.refresh(collection)
        # one index snapshot per question
        return self.pipeline.ask(question, top_k=top_k, history=history, collection=collection, filters=filters)

    def check(self, collection: str | None, filters: dict | None) -> None:
        """CollectionNotFound (404) or FilterError (422) now, before a reply starts streaming."""
        from retriever.filters import matching

        matching(self.pipeline.collection(collection)[0].state, filters)

    def model_names(self) -> dict:
        from qa.models import model_for

        names = {}
        for role in ("embedder", "reader"):
            try:
                names[role] = model_for(role)
            except Exception:
                names[role] = None
        return names
