"""retriever.tokens reads tokenizer.json without transformers and gives exactly what transformers' fast tokenizer
gave the reader (windows) and the embedder (padded batches), for the three vocabularies in use."""

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa.reader import encode_windows
from retriever import e5_small
from retriever.local_models import resolve_model_path
from retriever.tokens import Tokenizer
from tests.conftest import DOC_000, DOC_002, ROOT, original

QUESTIONS = [json.loads(line)["question"] for line in open(ROOT / "tests" / "data" / "dev_questions.jsonl")][:6]


def _folders(tmp_path_factory):
    e5 = tmp_path_factory.mktemp("e5-tokenizer")
    e5_small.write_tokenizer(e5)  # the tokenizer files only: no weights needed here
    return {"reader-v5": resolve_model_path("qa/weights/reader-v5"), "m3e-small": resolve_model_path("m3e-small"),
            "e5": e5}


@pytest.fixture(scope="module", params=["reader-v5", "m3e-small", "e5"])
def folder(request, tmp_path_factory):
    return _folders(tmp_path_factory)[request.param]


def test_windows_are_the_ones_transformers_cut(folder):
    ours, theirs = Tokenizer.from_folder(folder), AutoTokenizer.from_pretrained(str(folder))
    assert (ours.pad_id, ours.unk_token_id) == (theirs.pad_token_id, theirs.unk_token_id)
    a, b = original(DOC_000).replace("\n", ""), original(DOC_002).replace("\n", "")
    contexts = [a, b[:300], b, "短", a[:1000]] + [b[:700]]  # long, short and tiny contexts padded together
    for max_length, stride in ((256, 96), (128, 32)):
        expected = theirs(QUESTIONS, contexts, truncation="only_second", max_length=max_length, stride=stride,
                          return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
                          return_tensors="np")
        got = encode_windows(ours, QUESTIONS, contexts, max_length, stride, lowercase=False)
        assert len(expected["input_ids"]) > len(contexts)  # long contexts did overflow into several windows
        for key in expected.keys():
            assert np.array_equal(expected[key], got[key]), key
        assert all(expected.sequence_ids(w) == got.sequence_ids(w) for w in range(len(expected["input_ids"])))
    # a transformers tokenizer given to encode_windows (training does) cuts the same windows
    assert np.array_equal(encode_windows(theirs, QUESTIONS, contexts, 256, 96)["input_ids"],
                          encode_windows(ours, QUESTIONS, contexts, 256, 96)["input_ids"])


def test_batches_are_the_ones_transformers_pads(folder):
    ours, theirs = Tokenizer.from_folder(folder), AutoTokenizer.from_pretrained(str(folder))
    texts = [original(DOC_002)[:900], "中关村论坛是哪一年诞生的？", "Quafu 亮相"]
    expected = theirs(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
    got = ours(texts, max_length=128)
    for key in expected.keys():
        assert np.array_equal(expected[key], got[key]), key
    assert ours.encode("ABC", add_special_tokens=False) == theirs.encode("ABC", add_special_tokens=False)


def test_threads_share_a_tokenizer():
    """The server reads in threads: one Tokenizer, several settings, at once (a backend whose settings change while
    another thread encodes with it fails with "Already borrowed")."""
    from concurrent.futures import ThreadPoolExecutor

    ours = Tokenizer.from_folder(resolve_model_path("qa/weights/reader-v5"))
    context = original(DOC_002)

    def work(i):
        if i % 2:
            return encode_windows(ours, QUESTIONS, [context] * len(QUESTIONS), 128 + 64 * (i % 3), 32)["input_ids"]
        return ours([context] * 8, max_length=64 + i % 5)["input_ids"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(64)))
    assert all(np.array_equal(r, work(i)) for i, r in enumerate(results))


def test_the_first_setting_takes_the_loaded_backend_and_encode_stays_untruncated(monkeypatch):
    """A reader uses one setting: its windows come from the backend loaded from tokenizer.json, not a re-parsed copy
    (half a second for XLM-R's vocabulary); encode() still sees the whole text, before and after."""
    ours = Tokenizer.from_folder(resolve_model_path("qa/weights/reader-v5"))
    long_text = original(DOC_002)
    whole = ours.encode(long_text)
    assert len(whole) > 256
    copies = []
    real_copy = Tokenizer._copy
    monkeypatch.setattr(Tokenizer, "_copy", lambda self: copies.append(1) or real_copy(self))
    first = encode_windows(ours, QUESTIONS[:2], [long_text] * 2, 256, 96)["input_ids"]
    assert copies == [] and first.shape[1] == 256
    assert ours.encode(long_text) == whole and copies == [1]  # an untruncated copy, made once, for encode()
    ours([long_text], max_length=64)
    assert len(copies) == 2  # a second setting gets its own copy
    assert np.array_equal(encode_windows(ours, QUESTIONS[:2], [long_text] * 2, 256, 96)["input_ids"], first)
