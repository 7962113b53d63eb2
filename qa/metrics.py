"""CMRC 2018 scoring: strip whitespace and punctuation, EM and character F1, best over accepted answers."""

from __future__ import annotations

import unicodedata
from collections import Counter


def _is_punct_or_space(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith(("P", "S"))


def normalize_answer(text: str) -> str:
    return "".join(ch for ch in text.lower() if not _is_punct_or_space(ch))


def exact_match(prediction: str | None, answers: list[str]) -> float:
    if not answers:  # unanswerable: right only when refused
        return float(prediction is None)
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def char_f1(prediction: str | None, answers: list[str]) -> float:
    if not answers:
        return float(prediction is None)
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction)
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer)
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
