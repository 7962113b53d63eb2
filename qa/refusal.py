"""Refusal checks: the articles do not say what is asked, however well a span scores."""

from __future__ import annotations

import re

from qa.answer_shape import SENTENCE_END
from qa.asked import ASKS_DURATION, fits_asked_unit
from retriever.text import load_jieba, lower_ascii, tagged_words

# words that ask rather than say: a question made only of these and unknown words is about nothing in the articles
_QUESTION_WORDS = set("什么 哪个 哪些 哪家 哪位 哪一年 哪年 哪里 多少 为什么 怎样 如何 怎么 名字 什么样 是不是 有没有".split())


def off_topic(question: str, texts: list[str]) -> bool:
    """True when none of the question's content words (jieba words of two or more characters, question words
    aside) occurs in the texts: the articles are not about what is asked ("火星表面的平均温度是多少？"), however well
    some span about another figure scores."""
    words = [w for w in load_jieba().lcut(lower_ascii(question))
             if len(w) >= 2 and re.search(r"\w", w) and w not in _QUESTION_WORDS and not re.match(r"[哪多几什谁怎]", w)]
    text = lower_ascii("".join(texts))
    return bool(words) and not any(w in text for w in words)


FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def missing_numbers(question: str, texts: list[str]) -> list[str]:
    """The figures a question names ("2024年", "第五届") that none of the texts has (the pipeline passes the
    whole articles its passages come from: a passage may well not repeat the year its article is about).

    A question about a year or a figure the articles never mention cannot be answered from them, however well a
    span about the neighbouring year scores: the reader's no-answer score is weak exactly there.
    """
    question = question.translate(FULLWIDTH_DIGITS)
    text = "".join("".join(t.split()) for t in texts).translate(FULLWIDTH_DIGITS)
    missing = [n for n in re.findall(r"\d+(?:\.\d+)?", question)
               if not re.search(r"(?<![\d.])" + re.escape(n) + r"(?![\d]|\.\d)", text)]
    # ordinals in Chinese numerals: "第五届" asks about an edition the articles may never mention
    return missing + [n for n in re.findall(r"第[一二三四五六七八九十百]+[届次期批个]", question) if n not in text]


_NAME_TAGS = ("nr", "nrt", "nrfg", "nt", "nz", "ns", "eng")


def question_names(question: str) -> list[str]:
    """The people, organisations, places and Latin-letter names a question is about (jieba's tags)."""
    return [word for _, word, flag in tagged_words(lower_ascii(question))
            if flag in _NAME_TAGS and len(word) >= 2 and not word.isdigit()]


def names_far_from(question: str, text: str, start: int, end: int, window: int = 200) -> list[str]:
    """The names of the question that the text does not mention within `window` characters of an answer at
    text[start:end]: "李彦宏…展示了哪款大模型产品？" answered from a passage about technology trading, far from
    where the article mentions 李彦宏, is an answer about something else."""
    near = lower_ascii(text[max(0, start - window): end + window]).replace("\n", "")
    return [name for name in question_names(question) if name not in near]


# what a "多少" question counts: the words after 多少 and its measure word ("多少个量子比特" -> 量子 比特)
_COUNTED = re.compile(r"多少(?:人次|亿元|万元|美元|元|[个家名项份位件条种所座台只篇部次人例核届])?([\u4e00-\u9fff]*)")


def counted_far_from(question: str, text: str, start: int, end: int, window: int = 30) -> list[str]:
    """The words for what a "多少" question counts, when none of them stands near the answer text[start:end]
    (within `window` characters, in its sentence): "Quafu…有多少注册用户？" answered "136 个" of "136 个量子比特"
    counts something else. [] when the question counts nothing nameable or one of its words is near."""
    counted = _COUNTED.search(question)
    if not counted or not counted.group(1) or ASKS_DURATION.search(question):
        return []
    words = [w for w in load_jieba().lcut(counted.group(1)) if len(w) >= 2][:2]
    lo, hi = max(0, start - window), end + window
    ends_before = list(SENTENCE_END.finditer(text, lo, start))
    lo = ends_before[-1].end() if ends_before else lo
    stop = SENTENCE_END.search(text, end, hi)
    near = text[lo: stop.start() if stop else hi].replace("\n", "")
    return [] if any(w in near for w in words) else words


def checks(question: str, articles: list[str], answer: str | None = None, article: str | None = None,
           start: int = 0, end: int = 0) -> dict[str, bool]:
    """Every refusal check, by name, on one answer: True where it refuses. articles: the whole articles read from (a
    passage may not repeat its article's year); answer: the span's text; article: the whole article it stands in,
    article[start:end] being the answer. A check whose input is missing (no span) is left out. The pipeline refuses
    when any fires; qa.training.refusal_check weighs each one on held-back slices."""
    fired = {
        # the articles never mention a figure ("2025年") or the topic ("火星") asked about
        "figure never mentioned": bool(missing_numbers(question, articles)),
        "topic never mentioned": off_topic(question, articles),
    }
    if answer is not None:  # a figure in another unit than the one asked for ("多少人次" answered "约650家")
        fired["unit not the asked one"] = not fits_asked_unit(question, answer)
    if article is not None:  # the answer stands far from the names asked about, or counts something else
        fired["name far from the answer"] = bool(names_far_from(question, article, start, end))
        fired["counts something else"] = bool(counted_far_from(question, article, start, end))
    return fired
