"""The embedder computes what sentence-transformers computes, without importing it for a plain encoder folder."""

import json

import numpy as np

from retriever.embedder import MeanPoolingEncoder, model_input


def test_vectors_match_sentence_transformers(embedder):
    import torch
    from sentence_transformers import SentenceTransformer

    from retriever.local_models import resolve_model_path

    assert isinstance(embedder.model, MeanPoolingEncoder) and embedder.dim == 512
    texts = ["邓鸿森担任什么职务？", "量子计算云平台 Quafu 最多可同时操控 136 个量子比特。", "中" * 800, "论坛"]
    ours = embedder.embed_passages(texts)
    reference = SentenceTransformer(str(resolve_model_path("m3e-small")), device="cpu",
                                    model_kwargs={"dtype": torch.float32})
    theirs = reference.encode([model_input(t) for t in texts], normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (4, 512)
    assert np.allclose(ours, theirs, atol=1e-5)  # the 800-character text is cut at the same 512 tokens
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # batching (sorted by length, padded) does not change a vector
    assert np.allclose(embedder.embed_queries(texts[:1])[0], ours[0], atol=1e-5)


def _folder(tmp_path, modules, pooling):
    tmp_path.mkdir()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": path, "type": kind} for i, (path, kind) in enumerate(modules)]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return tmp_path


def test_only_mean_pooled_encoders_skip_sentence_transformers(tmp_path):
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    plain = [("", "sentence_transformers.models.Transformer"), ("1_Pooling", "sentence_transformers.models.Pooling")]
    assert MeanPoolingEncoder.handles(_folder(tmp_path / "a", plain, mean))
    normalized = plain + [("2_Normalize", "sentence_transformers.models.Normalize")]
    assert MeanPoolingEncoder.handles(_folder(tmp_path / "b", normalized, mean))
    cls = {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    assert not MeanPoolingEncoder.handles(_folder(tmp_path / "c", plain, cls))
    dense = plain + [("2_Dense", "sentence_transformers.models.Dense")]
    assert not MeanPoolingEncoder.handles(_folder(tmp_path / "d", dense, mean))

