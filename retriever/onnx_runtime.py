"""ONNX Runtime int8 for the reader and the query embedder: exported once from the PyTorch weights, cached.

The int8 files are not committed (every weight file stays in git history for good): on first use the
PyTorch model is exported with torch.onnx, dynamically quantised to int8 (the CPU has AVX-512 VNNI), and
cached under QA_HOME/onnx/<hash of the weights>/. Later processes load the cached file in ~0.2 s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from retriever.embedder import mean_pooled

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _weights_hash(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*")):
        if path.suffix in (".safetensors", ".bin", ".json", ".txt") and path.is_file():
            digest.update(path.name.encode())
            digest.update(str(path.stat().st_size).encode())
            with open(path, "rb") as f:
                digest.update(f.read(1 << 20))  # head of each file: enough to tell weights apart, fast
    return digest.hexdigest()[:16]


def _export(model, out: Path, output_names: list[str]) -> None:
    import torch

    model.eval()
    dummy = {k: torch.ones((1, 16), dtype=torch.long) for k in INPUTS}
    dynamic = {k: {0: "batch", 1: "sequence"} for k in (*INPUTS, *output_names)}
    torch.onnx.export(
        model, (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]), str(out),
        input_names=list(INPUTS), output_names=output_names, dynamic_axes=dynamic, opset_version=17,
        dynamo=False,
    )


def int8_model(model_dir: Path, kind: str, cache_root: Path) -> Path:
    """Path of the cached int8 ONNX file for a QA model (kind='qa') or an encoder (kind='encoder')."""
    model_dir = Path(model_dir)
    target = cache_root / "onnx" / f"{kind}-{_weights_hash(model_dir)}" / "model.int8.onnx"
    if target.exists():
        return target
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoModelForQuestionAnswering

    from retriever.local_models import quiet_transformers

    quiet_transformers()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        if kind == "qa":
            model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32)

            class _Logits(torch.nn.Module):  # plain tensors out, for the exporter
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, input_ids, attention_mask, token_type_ids):
                    out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                    return out.start_logits, out.end_logits

            _export(_Logits(model), fp32, ["start_logits", "end_logits"])
        else:
            model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32)

            class _Hidden(torch.nn.Module):
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, input_ids, attention_mask, token_type_ids):
                    return self.m(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

            _export(_Hidden(model), fp32, ["last_hidden_state"])
        partial = Path(tmp) / "model.int8.onnx"
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        os.replace(partial, target)  # atomic: a crash never leaves half a model in the cache
    return target


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxQA:
    """Start/end logits from an int8 ONNX QA model (same inputs as the PyTorch one)."""

    def __init__(self, path: Path):
        self.session = session(path)

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        feed = {k: batch[k].astype(np.int64) for k in INPUTS if k in batch}
        if "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        start, end = self.session.run(["start_logits", "end_logits"], feed)
        return start, end


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an int8 ONNX BERT encoder."""

    def __init__(self, path: Path, tokenizer, max_length: int = 512):
        self.session = session(path)
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for b in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[b : b + batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in INPUTS if k in enc}
            if "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            out.append(mean_pooled(self.session.run(["last_hidden_state"], feed)[0], feed["attention_mask"]))
        return np.concatenate(out)
