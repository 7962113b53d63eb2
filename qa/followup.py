"""Follow-up questions: resolve 他/她/它/这家公司/该机构/那里… against the conversation so far.

History is the list of earlier turns, oldest first, alternating question and answer (an answer may be "" when
the articles did not say). The referent is the most recent entity of the right kind: a short answer
("施一公") first, then names in the question before it. Earlier questions that were follow-ups themselves
are resolved first, so a three-turn conversation keeps its subject.

    standalone_question("他认为人才要怎样才能变得更好？", ["西湖大学校长是谁？", "施一公"])
    -> "施一公认为人才要怎样才能变得更好？"
"""

from __future__ import annotations

import re

PERSON = ["他们", "她们", "此人", "这位", "该人", "他", "她"]
THING = ["这家公司", "该公司", "这家企业", "该企业", "这家机构", "该机构", "这个机构", "这所大学", "该大学",
         "这个平台", "该平台", "这个论坛", "该论坛", "这个项目", "该项目", "这个活动", "该活动", "它们", "它"]
PLACE = ["那里", "那儿", "该地", "当地"]
# words that contain a pronoun character but refer to nobody
NOT_PRONOUNS = ["其他", "其它", "吉他", "他人", "他乡", "他国", "他处", "他方", "他日", "利他", "他山", "排他",
                "无他", "他者", "自他"]
# jieba part-of-speech tags for each kind of referent
KIND_TAGS = {"person": ("nr",), "thing": ("nt", "nz", "nrt", "n", "eng"), "place": ("ns",)}
# tags that may extend a noun phrase ("中关村" ns + "论坛" n -> "中关村论坛")
PHRASE_TAGS = ("n", "nr", "ns", "nt", "nz", "nrt", "eng", "vn", "an", "j", "x")

ASKS_WHO = re.compile(r"谁|哪位|哪一位|什么人|何人|哪个人")
ASKS_WHERE = re.compile(r"哪里|哪儿|什么地方|何地|何处|哪座城市|哪个城市|在哪")
WHO_DESCRIPTOR = re.compile(r"^(.{2,30}?)(?:是谁|是哪位|是哪一位|是什么人|叫什么名字|叫什么)$")
ASKS_AMOUNT = re.compile(r"多少|几[个年月日次家项位名届十百千万亿]|哪一?年|何时|什么时候|多大|多长|多远|多高|多久|比重|占比")
# typed demonstratives name what they point at: 这家公司 -> a candidate with 公司/集团/企业 in it
HEADS = {"公司": ("公司", "集团", "企业"), "企业": ("公司", "集团", "企业"),
         "机构": ("机构", "研究院", "研究所", "中心", "大学", "学会", "组织", "协会", "实验室"),
         "大学": ("大学", "学院"), "平台": ("平台",), "论坛": ("论坛",), "项目": ("项目",),
         "活动": ("活动", "大会", "论坛", "大赛", "展览")}
# a date, number or amount is never what 它/他/那里 points at
QUANTITY = re.compile(r"^[\d０-９.,，．%％~～\-—约近超过余多第个年月日号时分秒万亿千百十元美人家项次届名倍位岁年度\s]+$")


def _masked(question: str) -> str:
    """The question with non-pronoun words blanked out (same length, so positions hold)."""
    for word in NOT_PRONOUNS:
        question = question.replace(word, "\0" * len(word))
    return question


def _pronoun(question: str) -> tuple[str, str, int] | None:
    """(kind, word, position) of the first referring word, by kind priority; None when nothing leans back."""
    masked = _masked(question)
    for kind, words in (("thing", THING), ("place", PLACE), ("person", PERSON)):
        for word in words:
            at = masked.find(word)
            if at >= 0:
                return kind, word, at
    return None


def _tokens(text: str):
    from retriever.text import load_posseg

    return load_posseg().lcut(text)


def _entities(text: str, kind: str) -> list[str]:
    """Names of one kind in text; for things also noun phrases ("中关村" + "论坛"), longest first wins later."""
    tokens = _tokens(text)
    out = [t.word for t in tokens if t.flag.startswith(KIND_TAGS[kind]) and len(t.word) >= 2]
    if kind == "thing":
        phrase: list = []
        for token in tokens + [None]:
            if token is not None and token.flag.startswith(PHRASE_TAGS) and token.word.strip():
                phrase.append(token)
                continue
            if len(phrase) >= 2 and any(t.flag.startswith(KIND_TAGS["thing"] + ("ns",)) for t in phrase):
                out.append("".join(t.word for t in phrase))
            phrase = []
    return out


def _strip_question(text: str) -> str:
    return re.sub(r"^[\s，,。？?！!：:]+|[\s？?。！!，,：:]+$", "", text.strip())


def _head(word: str) -> tuple[str, ...]:
    """What a typed demonstrative's referent contains (这家公司 -> 公司/集团/企业); () for 它/他/那里."""
    for head, family in HEADS.items():
        if word.endswith(head):
            return family
    return ()


def _fits_head(candidate: str, word: str, asked: str = "") -> bool:
    family = _head(word)
    return not family or any(h in candidate or ("哪" in asked and h in asked) for h in family)


def _short_answer_fits(answer: str, kind: str, asked: str) -> bool:
    """May a short answer ("施一公", "Quafu", "北京") be what a pronoun of this kind points at?"""
    if len(answer) > 16 or _pronoun(answer) or QUANTITY.match(answer):
        return False
    if ASKS_AMOUNT.search(asked) and not ASKS_WHO.search(asked):
        return False  # "86个国家和地区", "2007年": an amount or a date, not a referent
    if kind == "person":
        return bool(ASKS_WHO.search(asked)) or bool(_entities(answer, "person"))
    if kind == "place":
        return bool(ASKS_WHERE.search(asked)) or bool(_entities(answer, "place"))
    if ASKS_WHO.search(asked):
        return False  # a thing: not the answer to a who-question
    return any(t.flag.startswith(KIND_TAGS["thing"] + ("ns", "j")) for t in _tokens(answer))


def _from_question(turn: str, kind: str, word: str = "") -> str | None:
    names = [n for n in _entities(turn, kind) if _fits_head(n, word)]
    if names:
        return max(names, key=len)
    if kind == "person":  # "西湖大学校长是谁" with no answer: the description stands for the person
        match = WHO_DESCRIPTOR.match(turn)
        if match:
            return match.group(1)
    return None


def _resolve(question: str, history: list[str]) -> str:
    found = _pronoun(question)
    if not found or not history:
        return question
    kind, word, at = found
    # history alternates question, answer from the start; look at the last two exchanges, newest first
    start = max(0, len(history) - 4)
    for i in range(len(history) - 1, start - 1, -1):
        turn = _strip_question(history[i])
        if not turn:
            continue
        if i % 2 == 1:  # an answer
            asked = _strip_question(history[i - 1])
            if _short_answer_fits(turn, kind, asked) and _fits_head(turn, word, asked):
                candidate = turn
            else:
                short = len(turn) <= 16
                if short and (QUANTITY.match(turn) or ASKS_AMOUNT.search(asked)):
                    continue
                names = [n for n in _entities(turn, kind) if _fits_head(n, word)]
                if not names:
                    continue
                candidate = max(names, key=len)
        else:  # a question
            candidate = _from_question(turn, kind, word)
            if not candidate:
                continue
        if candidate and candidate not in question:
            return question[:at] + candidate + question[at + len(word):]
    return question


def standalone_history(history: list[str]) -> list[str]:
    """The history with each earlier follow-up question resolved against the turns before it."""
    out: list[str] = []
    for i, turn in enumerate(history):
        turn = turn if isinstance(turn, str) else ""
        out.append(_resolve(turn, out) if i % 2 == 0 and turn.strip() else turn)
    return out


def standalone_question(question: str, history: list[str]) -> str:
    """The question with its pronoun replaced by what it refers to; unchanged when nothing leans back."""
    if not history or not _pronoun(question):
        return question
    return _resolve(question, standalone_history(list(history)[-8:] if len(history) % 2 == 0 else
                                                 list(history)[-7:]))
