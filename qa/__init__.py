"""Question answering over Chinese articles: exact answer spans with citations."""

from qa.types import Answer, Citation, DocumentInfo, Passage

__all__ = ["Answer", "Citation", "DocumentInfo", "Passage", "QAPipeline", "Client", "AsyncClient"]


def __getattr__(name):  # heavy imports (torch, faiss) only when asked for
    if name == "QAPipeline":
        from qa.pipeline import QAPipeline

        return QAPipeline
    if name in ("Client", "AsyncClient"):
        from qa import client

        return getattr(client, name)
    raise AttributeError(name)
