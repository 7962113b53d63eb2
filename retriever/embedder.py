"""Sentence embeddings with sentence-transformers, for the model named in models.txt."""

from __future__ import annotations

import numpy as np

from qa.models import quiet_transformers, resolve_model_path
from qa.reader import lower_ascii
from retriever.script import to_simplified


class Embedder:
    """Loads a sentence-transformers model from a local folder; vectors are L2-normalised float32."""

    def __init__(self, name: str):
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        self.name = name
        self.model = SentenceTransformer(str(resolve_model_path(name)), device="cpu")
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # m3e's tokenizer does not lowercase: "Quafu" would be [UNK] otherwise; one script for both sides
        vectors = self.model.encode(
            [to_simplified(lower_ascii(t)) for t in texts],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
