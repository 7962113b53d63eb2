"""The reading-comprehension loader: every set's quirks (README of the data folder) handled, slices by article."""

import json
from pathlib import Path

import pytest

from qa.training.data import Example, load_all, load_set, split_of


def write(path, paragraphs_by_article):
    path.write_text(json.dumps({"data": [{"title": f"a{i}", "paragraphs": ps}
                                         for i, ps in enumerate(paragraphs_by_article)]}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def test_answers_are_located_by_text_when_offsets_are_off(tmp_path):
    context = "新华社北京5月31日电，会议在北京举行。"
    qas = [
        {"id": "1", "question": "会议在哪里举行？", "answers": [{"text": "北京", "answer_start": 16}]},  # 1-based
        {"id": "2", "question": "哪天？", "answers": [{"text": 31, "answer_start": 8}]},  # a number, not a string
        {"id": "3", "question": "谁？", "answers": [{"text": None, "answer_start": 0}]},  # text lost: dropped
        {"id": "4", "question": "何时？", "answers": [{"text": "6月1日", "answer_start": 5}]},  # not in context
    ]
    examples, dropped = load_set(write(tmp_path / "news_security_train.json", [[{"context": context, "qas": qas}]]),
                                 t2s=False)
    assert [(e.id, e.answers) for e in examples] == [("1", [("北京", 15)]), ("2", [("31", 7)])]
    assert dropped == 2


def test_unanswerable_comes_from_the_answers_and_yes_no_is_dropped(tmp_path):
    context = "经审理查明：原告张x1与被告李x2于2001年结婚。"
    qas = [
        # CAIL2019's is_impossible is a string and disagrees with its answers: the answers decide
        {"id": "1", "question": "何时结婚？", "is_impossible": "true", "answers": [{"text": "2001年", "answer_start": 18}]},
        {"id": "2", "question": "原告是谁的母亲？", "is_impossible": "false", "answers": [{"text": "", "answer_start": -1}]},
        {"id": "3", "question": "二人是否结婚？", "is_impossible": "false", "answers": [{"text": "YES", "answer_start": -1}]},
    ]
    examples, dropped = load_set(write(tmp_path / "cail2019_dev.json", [[{"context": context, "qas": qas}]]), t2s=False)
    assert [(e.id, e.answerable) for e in examples] == [("1", True), ("2", False)]
    assert dropped == 1


def test_traditional_sets_are_simplified_with_offsets_kept(tmp_path):
    context = "臺灣大學創立於1928年。"
    qas = [{"id": "1", "question": "臺灣大學何時創立？", "answers": [{"text": "1928年", "answer_start": 7}]}]
    (example,), _ = load_set(write(tmp_path / "DRCD_dev.json", [[{"context": context, "qas": qas}]]), t2s=True)
    assert example.context == "台湾大学创立于1928年。" and example.question == "台湾大学何时创立？"
    assert example.context[7:12] == "1928年"


def test_xquad_shares_its_squad_articles_slice(tmp_path):
    # article 9 of squad2 is in its report slice (9 % 9 == 0); the xquad article with the same question id follows it
    squad = [[{"context": f"第{i}段。", "qas": [{"id": f"s{i}", "question": "?", "answers": [{"text": "段", "answer_start": 2}]}]}]
             for i in range(10)]
    write(tmp_path / "squad2_dev_zh.json", squad)
    xquad = [[{"context": "第9段。", "qas": [{"id": "s9", "question": "?", "answers": [{"text": "段", "answer_start": 2}]}]}],
             [{"context": "别的。", "qas": [{"id": "x", "question": "?", "answers": [{"text": "别", "answer_start": 0}]}]}]]
    write(tmp_path / "xquad_zh.json", xquad)
    splits = load_all(tmp_path)
    where = {e.id + e.source: name for name, items in splits.items() for e in items}
    assert where["s9squad2_dev_zh.json"] == where["s9xquad_zh.json"] == "report"
    assert split_of("xquad_zh.json", 1000 + 1) == "train"  # an article of its own (1001 % 9 == 2)
    assert where["xxquad_zh.json"] == "train"


def test_checkpoints_are_scored_at_thresholds_beyond_the_old_minus_2_to_3_grid():
    """A reader whose unanswerable questions sit at margins 4-5 and right answers at 8.5-9 is scored at a threshold
    between them, where it refuses the unanswerable ones and nothing else."""
    from types import SimpleNamespace

    from qa.training.train import checkpoint_score, evaluate

    margins = {"q1": 9.0, "q2": 8.5, "q3": 5.0, "q4": 4.0}

    class Reader:
        def read(self, question, contexts, n_best=1):
            return [SimpleNamespace(text="北京", margin=margins[question])]

    examples = [Example("1", "s", 0, "q1", "北京", [("北京", 0)]), Example("2", "s", 0, "q2", "北京", [("北京", 0)]),
                Example("3", "s", 0, "q3", "上海", []), Example("4", "s", 0, "q4", "上海", [])]
    score, threshold = checkpoint_score(evaluate(Reader(), examples))
    assert threshold in (6.0, 7.0, 8.0) and score == 200.0
    old = evaluate(Reader(), examples, thresholds=(-2.0, -1.0, 0.0, 1.0, 2.0, 3.0))
    assert checkpoint_score(old)[0] == 100.0  # nothing refused: no-answer accuracy 0


def test_repeat_weighs_a_set_and_rejects_what_it_cannot_read():
    """`train --repeat SET=K` reads a set K times; a malformed or unknown set is a clear usage error, not a crash."""
    import subprocess
    import sys

    from qa.training.train import parse_repeats

    assert parse_repeats("cmrc2018_train.json=2, news_security_train.json=3") == {
        "cmrc2018_train.json": 2, "news_security_train.json": 3}
    assert parse_repeats("") == {}
    for bad in ("cmrc2018_train.json", "cmrc2018_train.json=0", "=2", "a.json=x"):
        with pytest.raises(ValueError, match="SET=K"):
            parse_repeats(bad)
    for bad, said in (("cmrc2018_train.json=two", "SET=K"), ("wiki.json=2", "names no set")):
        run = subprocess.run([sys.executable, "-m", "qa.training.train", "--data", "x", "--out", "y", "--repeat", bad],
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        assert run.returncode == 2 and said in run.stderr
