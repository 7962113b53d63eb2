"""Sentence embeddings with sentence-transformers, for the model named in models.txt."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from qa.models import quiet_transformers, resolve_model_path
from qa.reader import lower_ascii
from retriever.script import to_simplified


def model_input(text: str) -> str:
    """Text as the embedder sees it, at indexing, query and training time alike. m3e's tokenizer does not
    lowercase ("Quafu" would be [UNK]); one script for both sides (Traditional questions, Simplified articles)."""
    return to_simplified(lower_ascii(text))


class Embedder:
    """Loads a sentence-transformers model from a local folder; vectors are L2-normalised float32.

    runtime "onnx-int8" runs the same encoder through ONNX Runtime int8 (about 3x the throughput here); the
    index records the name with its runtime, so switching runtimes rebuilds the vectors.
    """

    def __init__(self, name: str, runtime: str = "torch", cache_root: Path | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        path = resolve_model_path(name)
        # a checkpoint saved in fp16 (qa.training.embedder --ship) still computes in fp32: faster and exact on CPU
        self.model = SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.float32})
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.onnx = None
        self.name = name
        if runtime == "onnx-int8":
            from qa.onnx_runtime import OnnxEncoder, int8_model

            cache_root = cache_root or Path(tempfile.gettempdir()) / "qa-zh"
            self.onnx = OnnxEncoder(int8_model(path, "encoder", cache_root), self.model.tokenizer,
                                    self.model.max_seq_length)
            self.name = f"{name}@onnx-int8"
        elif runtime != "torch":
            raise ValueError(f"unknown embedder runtime {runtime!r}: use torch or onnx-int8")

    def embed(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [model_input(t) for t in texts]
        if self.onnx is not None:
            if progress:
                from rich.progress import track

                parts = [self.onnx.encode(texts[b : b + 256], batch_size)
                         for b in track(range(0, len(texts), 256), description="embedding")]
                return np.concatenate(parts)
            return self.onnx.encode(texts, batch_size)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
