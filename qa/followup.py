"""Follow-up questions: resolve 他/她/它/这家公司/该机构/那里… against the conversation so far.

History is the list of earlier turns, oldest first, alternating question and answer. The referent is the
most recent entity of the right kind: a short answer ("施一公") first, then names in the last question.
"""

from __future__ import annotations

import re

PERSON = ["他们", "她们", "此人", "这位", "该人", "他", "她"]
THING = ["这家公司", "该公司", "这家企业", "该企业", "这家机构", "该机构", "这个机构", "这所大学", "该大学",
         "这个平台", "该平台", "这个论坛", "该论坛", "这个项目", "该项目", "这个活动", "该活动", "它们", "它"]
PLACE = ["那里", "那儿", "该地", "当地"]
# jieba part-of-speech tags for each kind of referent
KIND_TAGS = {"person": ("nr",), "thing": ("nt", "nz", "nrt", "n", "eng"), "place": ("ns",)}


def _pronoun(question: str) -> tuple[str, str] | None:
    for kind, words in (("thing", THING), ("place", PLACE), ("person", PERSON)):
        for word in words:
            if word in question:
                return kind, word
    return None


def _entities(text: str, kind: str) -> list[str]:
    import jieba.posseg as pseg

    from retriever.lexical import _jieba

    _jieba()
    out = []
    for token in pseg.lcut(text):
        if token.flag.startswith(KIND_TAGS[kind]) and len(token.word) >= 2:
            out.append(token.word)
    return out


def _strip_question(text: str) -> str:
    return re.sub(r"[？?。！!，,]+$", "", text.strip())


def standalone_question(question: str, history: list[str]) -> str:
    """The question with its pronoun replaced by what it refers to; unchanged when nothing leans back."""
    found = _pronoun(question)
    if not found or not history:
        return question
    kind, word = found
    for turn in reversed(history[-4:]):
        turn = _strip_question(turn)
        if not turn:
            continue
        if len(turn) <= 16 and not _pronoun(turn) and (kind != "person" or _entities(turn, "person")):
            candidate = turn  # a short answer is the entity itself
        else:
            names = _entities(turn, kind)
            if not names:
                continue
            candidate = max(names, key=len)
        if candidate and candidate not in question:
            return question.replace(word, candidate, 1)
    return question
