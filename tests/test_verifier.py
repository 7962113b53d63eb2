"""The answer verifier (qa.verifier): its log-odds replace a span's margin, it is fitted on the reader's own spans,
and a reader folder that ships one uses it."""

import shutil
from pathlib import Path

import numpy as np

from qa.reader import Reader
from qa.verifier import EVIDENCE, Verifier, evidence, span_features
from retriever.tokens import Windows

ROOT = Path(__file__).resolve().parent.parent


class OneCharacterTokens:
    """A window per passage: [CLS] 问 [SEP] then one token per character of the passage."""

    def windows(self, questions, contexts, max_length, stride):
        n = max(len(c) for c in contexts) + 4
        offsets = np.zeros((len(contexts), n, 2), np.int64)
        ids = []
        for w, context in enumerate(contexts):
            offsets[w, 3 : 3 + len(context)] = [(i, i + 1) for i in range(len(context))]
            ids.append([None, 0, None] + [1] * len(context) + [None] * (n - 3 - len(context)))
        mask = np.array([[s is not None or k == 0 for k, s in enumerate(row)] for row in ids], np.int64)
        return Windows({"input_ids": np.zeros((len(contexts), n), np.int64), "attention_mask": mask,
                        "offset_mapping": offsets, "overflow_to_sample_mapping": np.arange(len(contexts))}, ids)


def test_the_verifier_output_is_the_margin_and_reorders_the_spans():
    """Passage 0's span has the larger raw margin, but its start token's hidden state tells the verifier it is
    wrong: with the verifier, passage 1's span comes first and each margin is the verifier's log-odds."""
    passages = ["甲乙丙丁", "戊己庚辛"]
    width = 3
    hidden = np.zeros((2, 8, width), np.float32)
    hidden[0, 3, 1] = 1.0  # passage 0's answer token: "looks wrong"

    class Fixed(Reader):
        def logits(self, encoding):
            s, e = np.full((2, 8), -50.0), np.full((2, 8), -50.0)
            s[:, 0] = e[:, 0] = 0.0  # the null span
            s[0, 3] = e[0, 3] = 4.0  # passage 0: margin 8
            s[1, 4] = e[1, 4] = 3.0  # passage 1: margin 6
            return s, e, hidden

    plain = Fixed(model=None, tokenizer=OneCharacterTokens(), lowercase=False)
    assert [(s.passage, s.text, s.margin) for s in plain.read("问", passages, n_best=1)] == [(0, "甲", 8.0)]

    weight = np.zeros(3 * width + 1, np.float32)
    weight[width + 1] = -10.0  # the start token's feature 1
    weight[-1] = 0.5  # the raw margin still counts
    verified = Fixed(model=None, tokenizer=OneCharacterTokens(), lowercase=False, verifier=Verifier(weight, -1.0))
    margins = {(s.passage, s.text): s.margin for s in verified.read("问", passages, n_best=5)}
    assert max(margins, key=margins.get) == (1, "己")
    assert margins[1, "己"] == 0.5 * 6 - 1.0 and margins[0, "甲"] == -10.0 + 0.5 * 8 - 1.0
    features = span_features(hidden[0], 3, 3, 8.0)
    assert features.shape == (3 * width + 1,) and features[-1] == 8.0


def test_fitting_finds_what_the_margin_misses():
    """Rows whose label follows a hidden feature more than the margin: the fitted head beats the margin alone on
    rows it did not see, and its weights apply to raw (unstandardised) features."""
    from qa.training.verifier import fit_logistic, log_loss

    rng = np.random.default_rng(0)
    n, width = 4000, 5
    x = rng.normal(size=(n, width + 1)) * [1, 1, 1, 1, 20, 3]  # a wide hidden feature, then the margin
    logit = 0.3 * x[:, 4] + 0.2 * x[:, -1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    train, held = slice(0, 3000), slice(3000, None)
    weight, bias = fit_logistic(x[train], y[train], penalty=1.0)
    margin_only = fit_logistic(x[train][:, -1:], y[train], penalty=0.0)
    assert log_loss(weight, bias, x[held], y[held]) < log_loss(*margin_only, x[held][:, -1:], y[held]) - 0.1
    assert abs(weight[4] - 0.3) < 0.05 and abs(weight[-1] - 0.2) < 0.05


def test_a_reader_folder_with_a_verifier_uses_it(tmp_path):
    """The shipped reader with a verifier.safetensors beside it (zero weights, bias 2.5): every margin is 2.5."""
    folder = tmp_path / "reader"
    shutil.copytree(ROOT / "qa" / "weights" / "reader", folder)
    (folder / "verifier.safetensors").unlink(missing_ok=True)
    width = 3 * Reader.load(folder, "torch").model.config.hidden_size + 1
    Verifier(np.zeros(width, np.float32), 2.5).save(folder)
    reader = Reader.load(folder, "torch")
    assert reader.verifier is not None
    spans = reader.read("中关村论坛是哪一年诞生的？", ["中关村论坛诞生于2007年，至今已举办多届。"], n_best=3)
    assert spans and all(s.margin == 2.5 for s in spans)
    assert Reader.load(folder, "torch", verifier=None).verifier is None  # switched off by the caller


def test_collect_labels_the_readers_own_spans():
    """Real reader, real passages: every n-best span becomes a row of 3 hidden states, the margin and its lexical
    evidence, with its char-F1 against the gold answers, 0 for an unanswerable question; fitting then gives a
    working head."""
    from qa.training.data import Example
    from qa.training.verifier import collect, fit_logistic

    passage = "中关村论坛诞生于2007年，至今已举办多届。2023年论坛于5月25日至30日在北京举办。"
    examples = [Example("a", "t", 0, "中关村论坛是哪一年诞生的？", passage, [("2007年", 8)]),
                Example("b", "t", 0, "2023年论坛在哪里举办？", passage, [("北京", passage.index("北京"))]),
                Example("c", "t", 1, "火星表面的平均温度是多少？", passage, [])]
    reader = Reader.load(ROOT / "qa" / "weights" / "reader", "torch", verifier=None)
    x, y, owner = collect(reader, examples, n_best=3)
    width = reader.model.config.hidden_size
    assert x.shape[1] == 3 * width + 1 + EVIDENCE and len(x) == len(y) == len(owner)
    assert set(owner) == {0, 1, 2} and y[owner == 2].sum() == 0
    assert y[owner == 0][0] == 1.0 and y[owner == 1][0] >= 0.5  # the reader's best spans hold the answers
    assert ((0 <= y) & (y <= 1)).all() and len(set(y.tolist())) > 2  # F1 itself, not a 0/1 label
    assert reader.verifier is None and not reader.keep_features  # the reader is left as it was
    weight, bias = fit_logistic(x, y, penalty=100.0)
    assert weight.shape == (3 * width + 1 + EVIDENCE,) and np.isfinite(bias)


def test_the_f1_target_ranks_the_nearer_of_two_overlapping_spans_first(tmp_path):
    """Rows kept in a file (as `--rows` keeps them): spans with F1 1.0 carry feature 0, spans with F1 0.6 (a span
    that holds the answer and more) feature 1. Target "right" (F1 >= 0.5) cannot tell them apart; target "f1" puts
    the exact span above the longer one, which is what reorders a reader's nested n-best spans."""
    import pytest

    from qa.training.data import Example
    from qa.training.verifier import fit

    rng = np.random.default_rng(1)
    n = 3000
    kind = rng.integers(0, 3, n)  # 0: exact, 1: overlapping, 2: wrong
    x = rng.normal(size=(n, 4)) * 0.3
    x[:, 0] += kind == 0
    x[:, 1] += kind == 1
    f1 = np.where(kind == 0, 1.0, np.where(kind == 1, 0.6, 0.0))
    owner = np.arange(n) // 3
    examples = [Example(str(i), "set.json", i, "问", "文", [("文", 0)]) for i in range(n // 3)]
    rows = tmp_path / "rows.npz"
    np.savez(rows, x=x, y=f1, owner=owner)
    exact, longer = np.array([1.0, 0, 0, 0], np.float32), np.array([0, 1.0, 0, 0], np.float32)
    right, _ = fit(None, examples, log=lambda _: None, rows=rows, target="right")
    soft, _ = fit(None, examples, log=lambda _: None, rows=rows, target="f1")
    assert abs(right(exact) - right(longer)) < 1.0  # both "right"
    assert soft(exact) > soft(longer) + 1.0
    with pytest.raises(ValueError, match="target"):
        fit(None, examples, rows=rows, target="em")


def test_evidence_sees_names_and_figures_far_from_the_span_and_the_asked_type():
    """The signs of an answer about something else: the question's name only in another sentence far away, its
    year missing from the span's sentence, a figure asked and a name given; and the asked type met."""
    question = "2021年李彦宏在论坛上展示了多少款产品？"
    filler = "与会者参观了展览。" * 15
    passage = "2021年，李彦宏在论坛上展示了3款产品。" + filler + "2022年，另一家公司展示了5款产品。"
    near, far = passage.index("3款"), passage.index("5款")
    e_near, e_far = evidence(question, passage, near, near + 2), evidence(question, passage, far, far + 2)
    assert e_near.shape == (EVIDENCE,)
    assert e_near[0] == 1.0 and e_far[0] == 0.0 and e_near[1] == 1.0  # the name within 100 characters, or not
    assert e_near[2] == 1.0 and e_far[2] == 0.0 and e_near[3] == 1.0  # 2021 in the span's sentence, or not
    assert e_near[4] == 1.0 and e_near[5] == 1.0  # a figure is asked and "3款" is one
    name = passage.index("李彦宏")
    assert evidence(question, passage, name, name + 3)[5] == 0.0  # a name is not a figure
    assert e_near[6] > e_far[6]  # the question's words stand in the near sentence
    person = "谁在论坛上展示了产品？"
    assert evidence(person, passage, name, name + 3)[10:12].tolist() == [1.0, 1.0]  # a person asked, and given
    assert evidence(person, passage, near, near + 2)[10:12].tolist() == [1.0, 0.0]


def test_a_verifier_that_reads_evidence_is_saved_as_one_and_weighs_it(tmp_path):
    """A verifier fitted with evidence keeps that in its file, and the reader then computes the evidence for every
    span: with all its weight on "the question's name is near", the span far from the name scores lowest."""
    folder = tmp_path / "reader"
    shutil.copytree(ROOT / "qa" / "weights" / "reader", folder)
    width = 3 * Reader.load(folder, "torch", verifier=None).model.config.hidden_size + 1
    weight = np.zeros(width + EVIDENCE, np.float32)
    weight[width] = 5.0  # name_share
    Verifier(weight, -1.0, reads_evidence=True).save(folder)
    reader = Reader.load(folder, "torch")
    assert reader.verifier.reads_evidence
    passages = ["百度创始人李彦宏在论坛上展示了文心一言。", "另一家公司在论坛上展示了通义千问。"]
    spans = reader.read("李彦宏展示了哪款大模型产品？", passages, n_best=20)
    assert {s.passage for s in spans} == {0, 1}  # both passages give spans
    assert all(s.margin == (4.0 if s.passage == 0 else -1.0) for s in spans)  # 李彦宏 only in passage 0


def test_rows_without_evidence_cannot_fit_a_verifier_that_reads_it(tmp_path):
    import pytest

    from qa.training.data import Example
    from qa.training.verifier import fit

    rows = tmp_path / "rows.npz"
    np.savez(rows, x=np.zeros((30, 4)), y=np.zeros(30), owner=np.arange(30) // 3)
    examples = [Example(str(i), "set.json", i, "问", "文", [("文", 0)]) for i in range(10)]
    with pytest.raises(ValueError, match="evidence"):
        fit(None, examples, rows=rows, reads_evidence=True)


def test_retrieved_passages_bring_the_look_alikes_retrieval_would():
    """Each question is read over the BM25 top 3 of its own set's paragraphs (the right chunk and two look-alikes),
    never another set's; a synthetic unanswerable twin keeps its own passage (its article's answerable copy, with
    the sentence cut from the twin, is in the haystack)."""
    from qa.training.data import Example
    from qa.training.verifier import retrieved_passages

    towns = ["北京", "上海", "广州", "深圳", "杭州"]
    haystack = [Example(f"h{i}", "set-a.json", i, "问", f"{t}的科技论坛于{2000 + i}年诞生，每年举办一次。", [])
                for i, t in enumerate(towns)]
    other = Example("o", "set-b.json", 9, "问", "杭州的科技论坛于1999年诞生，每年举办一次。", [])
    asked = Example("q", "set-a.json", 2, "广州的科技论坛是哪一年诞生的？", haystack[2].context, [("2002年", 10)])
    twin = Example("t", "inews-synthetic", 0, "论坛是哪一年诞生的？", "论坛每年举办一次。", [])
    lists = retrieved_passages([asked, twin], haystack + [other])
    assert lists[1] is None
    assert len(lists[0]) == 3 and lists[0][0] == haystack[2].context
    assert other.context not in lists[0] and all(p in [h.context for h in haystack] for p in lists[0])
