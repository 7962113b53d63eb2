"""Smoothed int8 (retriever.smoothing): the smoothing leaves the fp32 function as it was, the shipped reader carries
scales for every Linear layer, and its int8 copy gives fp32's answers on the dev questions (the plain dynamic int8
copy, without the scales, changed about one in ten)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.reader import Reader, encode_windows
from retriever.smoothing import SCALES_FILE, apply_smoothing, load_scales
from tests.conftest import CORPUS, DOC_002, ROOT, original

READER = ROOT / "qa" / "weights" / "reader-v5"  # the reader that ships scales (v6, the default, has none)


def _qa_model():
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering.from_pretrained(str(READER), dtype=torch.float32).eval()


def test_reader_v5_has_scales_for_every_linear_layer():
    scales = load_scales(READER)
    model = _qa_model()
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(scales) == set(linears)
    for name, s in scales.items():
        assert s.shape == (linears[name].in_features,) and bool(torch.all(s > 0))
    assert max(float(s.max() / s.min()) for s in scales.values()) > 10  # outlier channels are there to move
    assert load_scales(ROOT / "qa") is None  # a folder without them: plain int8


def test_smoothing_keeps_the_fp32_function():
    model, smoothed = _qa_model(), _qa_model()
    assert apply_smoothing(smoothed, load_scales(READER)) == len(load_scales(READER))
    enc = encode_windows(Reader.load(READER, "torch").tokenizer, ["中关村论坛是哪一年诞生的？"],
                         [original(DOC_002)], 256, 96)
    batch = {k: torch.from_numpy(enc[k][:2]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        a, b = model(**batch), smoothed(**batch)
    assert torch.allclose(a.start_logits, b.start_logits, atol=1e-3)
    assert torch.allclose(a.end_logits, b.end_logits, atol=1e-3)
    with pytest.raises(ValueError, match="not a Linear layer"):
        apply_smoothing(_qa_model(), {"bert.encoder.layer.0.attention.self.query": torch.ones(7)})


def test_smoothed_int8_reader_gives_fp32_answers_where_fp32_is_not_torn(tmp_path):
    """Every dev question over its article's paragraph (the reader alone), int8 against ONNX fp32 (which reads
    what torch fp32 reads, tests/test_onnx.py): wherever fp32's best span leads its runner-up by 0.5 or more, the
    same span and the same answer/refusal decision; the few others are near-ties any precision can flip."""
    fp32, int8 = Reader.load(READER, "onnx-fp32", tmp_path), Reader.load(READER, "onnx-int8", tmp_path)
    items = [json.loads(line) for line in (ROOT / "tests" / "data" / "dev_questions.jsonl").open(encoding="utf-8")]
    items = [item for item in items if item.get("doc")]  # the two about no article have no passage to read
    paragraphs = {p.stem: [t for t in p.read_text(encoding="utf-8").split("\n") if t.strip()]
                  for p in CORPUS.glob("*.txt")}

    def passage(item):  # the paragraph holding the gold answer; the article's first for a question it cannot answer
        found = [t for t in paragraphs[item["doc"]] for answer in item["answers"] if answer in t]
        return (found or paragraphs[item["doc"]])[0]

    clear, same, shifts = 0, 0, []
    for item in items:
        a, b = (r.read(item["question"], [passage(item)], 3) for r in (fp32, int8))
        agree = a[0].text == b[0].text and (a[0].margin > fp32.no_answer_threshold) == (
            b[0].margin > int8.no_answer_threshold)
        same += agree
        shifts.append(abs(a[0].margin - b[0].margin))
        if len(a) < 2 or a[0].margin - a[1].margin >= 0.5:
            clear += 1
            assert agree, (item["id"], a[0].text, b[0].text)
    assert clear >= 0.6 * len(items) and same >= 0.95 * len(items)  # reader v5: 89 clear, 127 the same of 129
    assert np.median(shifts) < 0.5


def test_smoothed_int8_pipeline_gives_fp32_answers_on_the_dev_questions(pipeline, session_home, monkeypatch):
    """The issue's yardstick: the whole pipeline's answers to all 131 dev questions with the reader on smoothed int8
    (`auto` on a CPU with VNNI) against the same pipeline on fp32: at least 98% the same, EM within a point."""
    from qa.metrics import exact_match
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    items = [json.loads(line) for line in (ROOT / "tests" / "data" / "dev_questions.jsonl").open(encoding="utf-8")]
    answers = {}
    monkeypatch.setenv("QA_READER_MODEL", str(READER))
    for runtime in ("onnx-fp32", "onnx-int8"):
        monkeypatch.setenv("QA_READER_RUNTIME", runtime)
        settings = Settings()
        settings.home = session_home  # the suite's index: only the reader differs
        p = QAPipeline(settings)
        assert p.reader.runtime == runtime
        answers[runtime] = [p.ask(item["question"]).answer for item in items]
    a, b = answers["onnx-fp32"], answers["onnx-int8"]
    assert sum(x == y for x, y in zip(a, b)) >= 0.98 * len(items)
    em = [sum(exact_match(x, item["answers"]) for x, item in zip(run, items) if item["answers"]) for run in (a, b)]
    assert abs(em[0] - em[1]) <= 0.01 * len(items)


def test_an_int8_window_reads_the_same_whatever_is_batched_with_it(tmp_path):
    """Dynamic int8 takes its activation scales from the whole batch, so the int8 reader runs each window alone and
    unpadded: a passage's spans and margins are the same read alone or beside longer passages."""
    reader = Reader.load(READER, "onnx-int8", tmp_path)
    reader.early_stop = None  # every passage in one batch
    assert reader.onnx.one_window_at_a_time
    text = original(DOC_002).replace("\n", "")
    short, others = text[:150], [text[600:1400], text[1400:2600]]
    question = "中关村论坛是哪一年诞生的？"
    alone = {(s.start, s.end): s.margin for s in reader.read(question, [short], 5)}
    together = {(s.start, s.end): s.margin for s in reader.read(question, [short, *others], 20) if s.passage == 0}
    assert alone and all(together[k] == alone[k] for k in alone.keys() & together.keys())
    assert len(alone.keys() & together.keys()) >= 3


def test_ship_keeps_int8_scales_only_when_the_int8_copy_agrees(pipeline, tmp_path):
    """qa.training.ship writes smoothing scales, then keeps them only when the int8 copy answers as fp32 does on the
    bar's share of the questions checked (`auto` would serve that copy): reader v5's copy clears a 90% bar on dev
    tune questions and passages, and the same check with a bar no runtime can clear drops the file."""
    import shutil

    from qa.training.data import Example
    from qa.training.int8_scales import int8_agreement, keep_if_agrees

    folder = tmp_path / "reader"
    shutil.copytree(READER, folder)
    items = [json.loads(line) for line in (ROOT / "tests" / "data" / "dev_questions.jsonl").open(encoding="utf-8")]
    tune = [item for item in items if item["split"] == "tune"][:12]
    passage = original(DOC_002)[:400]
    examples = [Example("t", "t", 0, "中关村论坛在哪里举办？", passage, []),
                Example("t", "t", 1, "火星表面的平均温度是多少？", passage, [])]
    own = pipeline.reader
    same, n = int8_agreement(folder, pipeline, tune, examples, tmp_path / "cache")
    assert n == len(tune) + len(examples) and same >= 0.9 * n
    assert pipeline.reader is own  # the pipeline reads with its own reader again
    lines = []
    assert keep_if_agrees(folder, pipeline, tune, examples, tmp_path / "cache", bar=0.9, log=lines.append)
    assert (folder / SCALES_FILE).exists() and "scales kept" in lines[-1]
    assert not keep_if_agrees(folder, pipeline, tune, examples, tmp_path / "cache", bar=1.01, log=lines.append)
    assert not (folder / SCALES_FILE).exists() and "no int8 scales ship" in lines[-1]
