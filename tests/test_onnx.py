"""The ONNX runtimes agree with PyTorch (exported once into the data directory, then cached): fp32 exactly, int8
closely; the boundary head reads the ONNX model's hidden states as it reads torch's."""

import json

import numpy as np
import pytest
import torch

from qa.models import model_for
from qa.reader import Reader, boundary_cuts, context_mask, encode_windows
from retriever.cpu import native_bf16
from retriever.local_models import resolve_model_path
from retriever.embedder import Embedder
from tests.conftest import DOC_002, original


def test_int8_embedder_matches_fp32(tmp_path, embedder, monkeypatch):
    monkeypatch.delenv("QA_ONNX_CACHE", raising=False)  # the export goes into the data directory by default
    fast = Embedder("m3e-small", "onnx-int8", tmp_path)
    assert fast.name == "m3e-small@onnx-int8"  # the index records the runtime, so a switch rebuilds
    texts = ["量子计算云平台Quafu亮相", "中关村论坛在京举行", "今天天气晴朗", "邓鸿森说，中国的创新成就令世人瞩目。"]
    cosine = (embedder.embed_passages(texts) * fast.embed_queries(texts)).sum(axis=1)
    assert cosine.min() > 0.97
    assert list(tmp_path.glob("onnx/encoder-*/model.int8.onnx"))  # cached for the next process
    assert fast.model is None  # the torch weights stay on disk: the int8 copy is all it runs


def test_int8_runtime_refuses_an_encoder_it_would_pool_wrongly(tmp_path):
    # a sentence-transformers folder with CLS pooling: the ONNX path only mean-pools, so it must say so
    import json

    folder = tmp_path / "cls-model"
    folder.mkdir()
    for f in resolve_model_path("m3e-small").iterdir():  # the same weights, linked not copied
        (folder / f.name).symlink_to(f)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 512, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    with pytest.raises(ValueError, match="mean-pooling encoders only"):
        Embedder(str(folder), "onnx-int8", tmp_path)
    with pytest.raises(ValueError, match="mean-pooling encoders only"):
        Embedder(str(folder), "onnx-fp32", tmp_path)
    assert Embedder(str(folder), "auto", tmp_path).runtime == "torch"  # auto falls back instead
    with pytest.raises(ValueError, match="unknown embedder runtime"):
        Embedder("m3e-small", "tensorrt", tmp_path)


def assert_same_spans(reference: Reader, other: Reader) -> None:
    """Five questions over the 002 article: the same best span for at least four, margins within 2 or 12%
    (reader v3's margins reach 20, where quantisation moves them by a little over 2)."""
    context = original(DOC_002).replace("\n", "")[:1200]
    questions = ["中关村论坛是哪一年诞生的？", "比尔·盖茨在哪个基金会任职？", "经典计算机需要多长时间？",
                 "量子计算机需要多少秒？", "中关村是中国第几个国家自主创新示范区？"]
    same = 0
    for q in questions:
        a, b = reference.read(q, [context], 1)[0], other.read(q, [context], 1)[0]
        same += a.text == b.text
        assert abs(a.margin - b.margin) < max(2.0, 0.12 * abs(a.margin))
    assert same >= len(questions) - 1


def test_fp32_embedder_gives_torch_vectors_and_keeps_the_index_name(tmp_path, embedder, monkeypatch):
    monkeypatch.delenv("QA_ONNX_CACHE", raising=False)
    fast = Embedder("m3e-small", "onnx-fp32", tmp_path)
    assert fast.name == "m3e-small" and fast.model is None  # same vectors: an index built with torch stays valid
    texts = ["量子计算云平台Quafu亮相", "中关村论坛在京举行", "今天天气晴朗" * 100]  # the last one is truncated
    assert np.abs(embedder.embed_queries(texts) - fast.embed_queries(texts)).max() < 1e-5
    assert list(tmp_path.glob("onnx/encoder-*/model.onnx"))


def test_passages_are_embedded_in_length_order_and_returned_in_theirs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("QA_ONNX_CACHE", raising=False)
    fast = Embedder("m3e-small", "onnx-fp32", tmp_path)
    texts = ["中关村论坛在京举行，吸引了来自全球的科学家" * (1 + i % 4) for i in range(280)] + ["量子计算"] * 20
    vectors = fast.embed_passages(texts, progress=True)
    out, err = capsys.readouterr()
    assert vectors.shape == (300, fast.dim) and out == ""  # stdout stays free for `qa eval --json`
    assert "embedding" in err
    # batched by length, each vector is still its own text's, in the order given
    for i in (0, 1, 3, 299):
        assert np.abs(vectors[i] - fast.embed_passages([texts[i]])[0]).max() < 1e-5
    assert np.abs(vectors[:8] - fast.embed_passages(texts[:8])).max() < 1e-5


def test_fp32_reader_reads_what_torch_reads(tmp_path):
    path = resolve_model_path(model_for("reader"))
    torch_reader, onnx_reader = Reader.load(path, "torch"), Reader.load(path, "onnx-fp32", tmp_path)
    assert onnx_reader.model is None and onnx_reader.runtime == "onnx-fp32"
    context = original(DOC_002).replace("\n", "")
    passages = [context[:700], context[700:1500], context[1500:]]  # windows of different lengths, padded together
    for q in ["中关村论坛是哪一年诞生的？", "量子计算机需要多少秒？", "邓鸿森是谁？"]:
        a, b = torch_reader.read(q, passages, 5), onnx_reader.read(q, passages, 5)
        assert [(s.passage, s.start, s.end) for s in a] == [(s.passage, s.start, s.end) for s in b]
        assert np.allclose([s.margin for s in a], [s.margin for s in b], atol=1e-3)


def test_the_boundary_head_cuts_alike_on_onnx(tmp_path):
    """A reader folder with a boundary head (seeded weights, the shape training gives it): the cuts come from the
    last hidden states, which the ONNX export returns beside the logits."""
    from safetensors.numpy import save_file

    from qa.training.train import BOUNDARY_CLASSES

    folder = tmp_path / "reader"
    folder.mkdir()
    for f in resolve_model_path(model_for("reader")).iterdir():
        (folder / f.name).symlink_to(f)
    rng = np.random.default_rng(0)
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    save_file({"weight": rng.standard_normal((2 * BOUNDARY_CLASSES, hidden)).astype(np.float32),
               "bias": np.zeros(2 * BOUNDARY_CLASSES, np.float32)}, str(folder / "boundary.safetensors"))
    torch_reader, onnx_reader = Reader.load(folder, "torch"), Reader.load(folder, "onnx-fp32", tmp_path)
    assert onnx_reader.boundary is not None
    context = original(DOC_002).replace("\n", "")[:1200]
    questions = ["中关村论坛是哪一年诞生的？", "比尔·盖茨在哪个基金会任职？", "经典计算机需要多长时间？"]
    for q in questions:
        a, b = torch_reader.read(q, [context], 3), onnx_reader.read(q, [context], 3)
        assert [(s.start, s.end) for s in a] == [(s.start, s.end) for s in b]
    # the cuts themselves, at every token of several characters (a word piece such as "2007"), from both runtimes
    enc = encode_windows(onnx_reader.tokenizer, questions[:1], [context], 256, 96)
    (_, _, torch_hidden), (_, _, onnx_hidden) = torch_reader.logits(enc), onnx_reader.logits(enc)
    assert np.allclose(torch_hidden, onnx_hidden, atol=1e-3)
    offsets = enc["offset_mapping"][0]
    wide = [t for t in np.flatnonzero(context_mask(enc, 0)) if offsets[t][1] - offsets[t][0] > 1]
    cuts = [boundary_cuts(onnx_reader.boundary, onnx_hidden[0], offsets, t, t) for t in wide]
    assert wide and cuts == [boundary_cuts(torch_reader.boundary, torch_hidden[0], offsets, t, t) for t in wide]
    assert any(c != (0, 0) for c in cuts)  # the seeded head does cut: the comparison means something


def test_int8_reader_gives_the_same_answers(tmp_path):
    path = resolve_model_path(model_for("reader"))
    assert_same_spans(Reader.load(path, "torch"), Reader.load(path, "onnx-int8", tmp_path))


def test_bf16_reader_agrees_with_fp32():
    """torch-bf16 (autocast on CPUs with AVX-512 BF16 / AMX) reads the same spans as fp32."""
    path = resolve_model_path(model_for("reader"))
    fp32, bf16 = Reader.load(path, "torch"), Reader.load(path, "torch-bf16")
    assert bf16.bf16 == (native_bf16() and torch.ops.mkldnn._is_mkldnn_bf16_supported()) and not fp32.bf16
    assert_same_spans(fp32, bf16)


def test_unknown_reader_runtime_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown reader runtime"):
        Reader.load(resolve_model_path(model_for("reader")), "tensorrt")


def test_the_cache_folder_changes_with_the_export_version(tmp_path, monkeypatch):
    """A cached export made by an older export or quantisation step is not reused (the folder name includes it)."""
    from retriever import onnx_runtime

    path = resolve_model_path(model_for("reader"))
    before = onnx_runtime._weights_hash(path)
    assert onnx_runtime._weights_hash(path) == before  # stable for the same weights and code
    monkeypatch.setattr(onnx_runtime, "EXPORT_VERSION", "another export")
    assert onnx_runtime._weights_hash(path) != before


def test_the_int8_export_mutes_only_the_quantisers_advice():
    import importlib.util
    import logging

    from retriever.onnx_runtime import quiet_quantiser

    quantiser = importlib.util.find_spec("onnxruntime.quantization.quantize").origin  # where its advice comes from

    def record(path: str, level: int) -> logging.LogRecord:
        return logging.getLogger().makeRecord("root", level, path, 1, "advice", None, None)

    assert not quiet_quantiser(record(quantiser, logging.WARNING))  # "pre-process the model" advice
    assert quiet_quantiser(record(quantiser, logging.ERROR))  # a real failure still shows
    assert quiet_quantiser(record(__file__, logging.WARNING))  # another thread's warning on the root logger


@pytest.mark.parametrize("exact", [True, False])
def test_a_vocabulary_table_is_stored_in_fp16_only_when_that_is_exact(tmp_path, exact):
    """The e5 reader's 250,037 x 384 table is most of its ONNX file; stored in fp16 (its shipped precision) with a
    Cast after the Gather, the outputs stay the same to the bit. A table fp16 cannot hold exactly stays fp32."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from retriever.onnx_runtime import half_word_embeddings

    rng = np.random.default_rng(0)
    table = rng.standard_normal((30_000, 4)).astype(np.float16 if exact else np.float32).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"]), helper.make_node("Relu", ["rows"], ["out"])],
        "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4])], [numpy_helper.from_array(table, "table")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ids = np.array([0, 7, 29_999], dtype=np.int64)
    before = ort.InferenceSession(str(path)).run(None, {"ids": ids})[0]
    size = path.stat().st_size
    assert half_word_embeddings(path) is exact
    assert np.array_equal(ort.InferenceSession(str(path)).run(None, {"ids": ids})[0], before)
    assert (path.stat().st_size < 0.6 * size) is exact


def test_the_cache_folder_tells_apart_side_files_that_differ_past_their_head(tmp_path, monkeypatch):
    """int8 weights of two students can share their size and first megabyte: the export must not be shared."""
    from retriever import onnx_runtime
    from retriever.onnx_runtime import _weights_hash

    monkeypatch.setattr(onnx_runtime, "WHOLE", 2 << 20)  # the 3 MB file below is "big": read by head and tail

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, last in ((first, 1), (second, 2)):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"w" * (3 << 20))
        (folder / "int8_weights.safetensors").write_bytes(b"q" * (2 << 20) + bytes([last]))
    assert _weights_hash(first) != _weights_hash(second)
    (second / "int8_weights.safetensors").write_bytes(b"q" * (2 << 20) + bytes([1]))
    assert _weights_hash(first) == _weights_hash(second)  # same bytes: one export, wherever the folder is
    (second / "model.safetensors").write_bytes(b"w" * ((3 << 20) - 1) + b"x")  # a big file's tail counts too
    assert _weights_hash(first) != _weights_hash(second)
