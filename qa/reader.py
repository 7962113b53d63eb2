"""Extractive reader: question + passages -> the best answer span, or no answer.

transformers 5 has no question-answering pipeline, so the windows, the start/end decoding and the
no-answer decision live here. A window's [CLS] logits act as its "no answer" score; a span competes
with its own window's null score (the margin), which keeps scores comparable across windows and
passages.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lower_ascii(text: str) -> str:
    """The bert-base-chinese vocabulary is lowercase; A-Z would be [UNK]. Length-preserving, so offsets hold."""
    return text.translate(ASCII_LOWER)


@dataclass
class Span:
    """A span in one passage: character offsets into that passage, scores from the reader."""

    passage: int  # index into the passages given to read()
    start: int
    end: int
    text: str
    score: float  # start + end logit
    margin: float  # score minus the window's no-answer score: > threshold means "answer"


def encode_windows(tokenizer, questions: list[str], contexts: list[str], max_length: int, stride: int,
                   lowercase: bool = True):
    """Question/context pairs -> overlapping windows of at most max_length tokens (ASCII lowered first for an
    uncased vocabulary).

    Returns the tokenizer's BatchEncoding with offset_mapping, overflow_to_sample_mapping and sequence ids.
    """
    fold = lower_ascii if lowercase else str
    return tokenizer(
        [fold(q) for q in questions],
        [fold(c) for c in contexts],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="longest",
        return_tensors="np",
    )


def context_mask(encoding, window: int) -> np.ndarray:
    ids = encoding.sequence_ids(window)
    return np.array([s == 1 for s in ids], dtype=bool)


def best_spans_in_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    mask: np.ndarray,
    max_answer_chars: int,
    n_best: int = 5,
    offsets: np.ndarray | None = None,
    segments: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """Top (start_token, end_token, score) with start <= end inside the context, at most max_answer_chars long,
    and (given each token's segment: its sentence or clause) start and end in one segment.

    Length is measured in characters of the passage (token offsets), not tokens: a long organisation name such as
    "北京微芯区块链与边缘计算研究院" is never cut, and a run of Latin word pieces is not over-counted.
    """
    s = np.where(mask, start_logits, -np.inf)
    e = np.where(mask, end_logits, -np.inf)
    scores = s[:, None] + e[None, :]
    n = len(s)
    i, j = np.indices((n, n))
    if offsets is None:  # one character per token
        length = j - i + 1
    else:
        length = offsets[:, 1][None, :] - offsets[:, 0][:, None]
    scores[(j < i) | (length > max_answer_chars)] = -np.inf
    if segments is not None:  # masked before the top-n: a window still offers its best span inside one segment
        scores[segments[:, None] != segments[None, :]] = -np.inf
    flat = np.argsort(scores, axis=None)[::-1][:n_best]
    out = []
    for k in flat:
        a, b = divmod(int(k), n)
        if np.isfinite(scores[a, b]):
            out.append((a, b, float(scores[a, b])))
    return out


_SEPARATORS = " \t\r\n\u3000，。、；：！？,.;:!?"
_PAIRS = {"”": "“", "’": "‘", "）": "（", ")": "(", "】": "【", "」": "「", "』": "『", "》": "《"}
_OPENERS = {v: k for k, v in _PAIRS.items()}


def _trim(context: str, start: int, end: int) -> tuple[int, int]:
    """Drop whitespace, separators and unbalanced quotes/brackets at the span edges."""
    changed = True
    while changed and start < end:
        changed = False
        if context[start] in _SEPARATORS or (
            context[start] in _OPENERS and _OPENERS[context[start]] not in context[start + 1 : end]
        ):
            start, changed = start + 1, True
        elif context[end - 1] in _SEPARATORS or (
            context[end - 1] in _PAIRS and _PAIRS[context[end - 1]] not in context[start : end - 1]
        ):
            end, changed = end - 1, True
    return start, end


# what may follow a number as its unit: "300" -> "300多家", "5000余" -> "5000余名", "1" -> "1万年"
_UNITS = (r"(?:人次|万年|亿元|万元|美元|平方米|平方公里|公里|千米|小时|分钟|周年|%|％|"
          r"[个家名项元年核份人次届位座台所件户天岁场期条种只篇部倍秒米吨克月日号层例])")
_UNIT_AFTER_NUMBER = re.compile(r"[ \u3000]?(?:[多余])?(?:万|亿|千|百)?" + _UNITS)
_DIGIT = re.compile(r"[0-9０-９]")
_DATE_RANGE_END = re.compile(r"(?:至|到|—|-|－|～|~)(?:[0-9０-９]{1,2}月)?[0-9０-９]{1,2}日")
# "reaches" before a figure; annotators of the human sets never include it (约 / 超过 they sometimes do)
_REACHES = re.compile(r"(?:高达|多达|达到|达)(?=[0-9０-９])")
_SPEECH_TAIL = re.compile(r"(?:说|表示|指出|强调|介绍|称)$")  # "董进说": the name, not the verb after it
_SENTENCE_END = re.compile(r"[。！？；!?;]")
# a clause ends at a comma too (not one between digits: "1,000"); news answers almost never cross one
_CLAUSE_END = re.compile(r"[。！？；!?;，]|,(?![0-9])")


def token_segments(passage: str, offsets: np.ndarray, ends: re.Pattern = _SENTENCE_END) -> np.ndarray:
    """For each token, how many sentence (or clause) ends stand before it in the passage: a span whose start and
    end tokens share the count stays in one sentence; the end may be the punctuation itself (trimmed later)."""
    before = np.zeros(len(passage) + 1, dtype=np.int32)
    for m in ends.finditer(passage):
        before[m.end():] += 1
    starts = np.clip(offsets[:, 0], 0, len(passage))
    return before[starts]


def whole_units(context: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span to whole units: a number is never cut ("36" of "136") and keeps its unit ("5000余" ->
    "5000余名", "1" -> "1万年"); a speech verb after a name is dropped ("董进说" -> "董进"), and "达" before a
    figure ("达28.4%" -> "28.4%"). Snapping edges to
    jieba's words was tried and dropped: jieba cuts unknown names wrongly ("副部长安永军" -> "长安")."""
    while start > 0 and _DIGIT.match(context[start]) and (
        _DIGIT.match(context[start - 1]) or (start > 1 and context[start - 1] in ".．" and _DIGIT.match(context[start - 2]))
    ):
        start -= 2 if context[start - 1] in ".．" else 1
    while end < len(context) and _DIGIT.match(context[end - 1]) and re.match(r"[0-9０-９]|[.．][0-9０-９]", context[end:end + 2]):
        end += 2 if context[end] in ".．" else 1
    if re.search(r"[0-9０-９][多余万亿千百]?$", context[start:end]):
        unit = _UNIT_AFTER_NUMBER.match(context, end)
        if unit:
            end = unit.end()
    if context[end - 1:end] == "日":  # "5月25日" of "5月25日至30日": a date range is one unit
        date_range = _DATE_RANGE_END.match(context, end)
        if date_range:
            end = date_range.end()
    verb = _REACHES.match(context, start, end)  # "达28.4%": the verb is not part of the figure
    if verb:
        start = verb.end()
    tail = _SPEECH_TAIL.search(context[start:end])
    if tail and tail.start() >= 2:
        end = start + tail.start()
    return _coordinated_founders(context, start, end), end


def _tagged_words(text: str) -> list[tuple[int, str, str]]:
    """(offset, word, jieba part-of-speech tag) for each word of the text."""
    import jieba.posseg as pseg

    from retriever.lexical import _jieba

    _jieba()  # initialised quietly, once
    position, words = 0, []
    for w in pseg.cut(text):
        words.append((position, w.word, w.flag))
        position += len(w.word)
    return words


def _coordinated_founders(context: str, start: int, end: int) -> int:
    """The start of an organisation named after two people, when the span holds only the second one:
    "比尔及|梅琳达·盖茨基金会" -> "比尔及梅琳达·盖茨基金会". A person's name (jieba: nr…) joined by 及 / 与 / 和
    right before an organisation's name belongs to it; an organisation there ("清华大学与北京大学") does not."""
    if start < 3 or context[start - 1] not in "及与和" or not _ORGANISATION.search(context[start:end]):
        return start
    clause = max(context.rfind(c, 0, start - 1) for c in _SEPARATORS) + 1
    words = _tagged_words(context[clause:end])
    for (at, word, flag), (next_at, _, _) in zip(words, words[1:]):
        if clause + next_at == start - 1:  # the word right before the conjunction
            return clause + at if flag.startswith("nr") and len(word) >= 2 else start
    return start


_NUMBER_QUESTION = re.compile(r"多少|几[个位家项届次年月日天倍成岁名号期场轮条种所座台]|多大|多长|多高|多远|多久|多重|百分之几"
                              r"|第几|哪一?年|哪天|哪一天|何时|什么时候|哪个月|什么时间|哪些天|哪几天")
_NUMERAL = re.compile(r"[0-9０-９〇一二三四五六七八九十百千万亿两]")


def asks_for_number(question: str) -> bool:
    return bool(_NUMBER_QUESTION.search(question))


# "哪个基金会", "哪家公司", "哪所大学": the noun the answer ends with; generic nouns accept any organisation
_ASKED_NOUN = re.compile(r"哪(?:一)?[个家所座款项部种类位]?([\u4e00-\u9fff]{1,4}?)(?=的|是|在|与|和|任|上|里|中|举|发|展|获|主|[？?，,]|$)")
_ORGANISATION = re.compile(r"(?:公司|集团|银行|大学|学院|研究院|研究所|中心|实验室|基金会|协会|学会|委员会|联合会|医院|"
                           r"联盟|组织|平台|园|部|局|署|厅|院|所|会)$")
_GENERIC_ORGANISATION = {"企业", "单位", "机构", "组织", "公司"}


# The unit a "多少" question names and the granularity a date question asks for. A span without it is another
# figure ("多少人次" answered with "约650家", "多少亿元" with "28.4%"): the articles don't give the one asked for.
_ASKED_UNIT = re.compile(r"多少(钱|人次|亿元|万元|美元|元|平方米|平方公里|公里|千米|小时|分钟|周年|"
                         r"[家名项年核份人届位座台所件户天岁场期条种只篇部倍秒米吨例])")
_UNIT_FAMILY = {"钱": ("元",), "人": ("人", "名", "位"), "名": ("名", "人", "位"), "位": ("位", "名", "人")}
_ASKED_DATE = ((re.compile(r"哪一?年|几几年"), ("年",)), (re.compile(r"哪一?天|几号|几月几[日号]"), ("日", "号")),
               (re.compile(r"哪个月|几月份"), ("月",)))
# an ordinal asks for one: "第几届" is answered "第二十五届", never a year
_ASKED_ORDINAL = re.compile(r"第几([届次期批轮个位项])")  # not 名: "第几名" may be answered "冠军"


def _has_in_order(text: str, unit: str) -> bool:
    """'亿元' in '6亿多元': each character of the unit, in order."""
    at = 0
    for ch in unit:
        at = text.find(ch, at) + 1
        if not at:
            return False
    return True


# money asked for by its noun: "多少资金支持", "签约金额是多少"
_ASKS_MONEY = re.compile(r"多少(?:资金|经费|投资|奖金)|(?:资金|金额|经费|投资额|收入|营收|费用|价格|奖金|GDP|gdp|生产总值|"
                         r"产值|营业额|销售额|成交额|交易额|利润|市值|融资额?)(?:总额)?(?:是|为|有|达到?|共)?多少")


_ASKS_DURATION = re.compile(r"多长时间|多久|多少时间|多少年(?!前|后|来)")
_DURATIONS = ("年", "月", "周", "天", "日", "小时", "分钟", "秒")


def asked_units(question: str) -> tuple[str, ...]:
    """The units a "多少" question accepts in its answer; () when it names none."""
    if _ASKS_DURATION.search(question):
        return _DURATIONS
    asked = _ASKED_UNIT.search(question)
    if asked:
        return _UNIT_FAMILY.get(asked.group(1), (asked.group(1),))
    return ("元",) if _ASKS_MONEY.search(question) else ()


def fits_asked_unit(question: str, text: str) -> bool:
    """False when the question names a unit or a date granularity that the span does not have."""
    units = asked_units(question)
    if units:
        return any(_has_in_order(text, u) for u in units)
    ordinal = _ASKED_ORDINAL.search(question)
    if ordinal:  # its 第 may stand outside the span ("第 11位" read as "11位"); its measure word may not
        return ordinal.group(1) in text
    for pattern, units in _ASKED_DATE:
        if pattern.search(question):
            return any(u in text for u in units)
    return True


# a quantity as the articles write it: "约650家", "超过810亿元", "6亿多元", "7 万份", "5000余名"
_QUANTITY = re.compile(r"(?:约|近|超过|逾|共|将近|不到)?[0-9０-９]+(?:[.．,][0-9０-９]+)*[ \u3000]?[多余]?[万亿千百]?[多余]?"
                       + _UNITS)


_ASKS_PERSON = re.compile(r"谁|哪位|哪一位")
# the titles news writers put before a name: "西湖大学校长施一公", "研究员阿德姆·帕塔普蒂安"
_TITLE_BEFORE_NAME = re.compile(r"(?:教授|研究员|院士|校长|院长|所长|主席|总干事|董事长|总经理|总裁|首席执行官|创始人|部长|"
                                r"市长|书记|主任|负责人|专家|记者|得主|主持人|科学家|企业家|工程师)"
                                r"((?:[\u4e00-\u9fff]{1,8}·)*[\u4e00-\u9fff]{2,8})$")


def asked_name(question: str, text: str) -> tuple[int, int] | None:
    """Where the name stands in a span that answers "谁" with titles before it: "斯克利普斯研究所教授、霍华德·休斯
    医学研究所研究员阿德姆·帕塔普蒂安" -> "阿德姆·帕塔普蒂安"; None when there is nothing to cut."""
    if not _ASKS_PERSON.search(question):
        return None
    found = _TITLE_BEFORE_NAME.search(text)
    return (found.start(1), found.end(1)) if found and found.start(1) > 0 else None


_ASKS_FOR_MANY = re.compile(r"哪些|哪几(?:个|家|位|项|种|所|类|方面)")
_ITEM_BREAK = "，,。；;：:！？!?、\n“”（）()"  # punctuation that ends a list item
_ITEM_END = re.compile("[" + _ITEM_BREAK + "]|等|共同|联合|的")
# what opens a clause before the first item of a list: "由|科技部、…", "成为|全球知名科学家、企业家"
_LIST_VERBS = {"由", "包括", "包含", "其中有", "其中", "共有", "有", "是", "为", "成为", "在", "从", "对", "向", "如",
               "引入", "吸引"}


def _after_lead(context: str, item: int, end: int) -> int:
    """Where the first item of a list starts in context[item:end]: after the last jieba word that opens the
    list ("平台包括|在线教育", "论坛由|科技部"), never inside a word (在线教育 keeps its 在)."""
    start = item + 1 if item < end and context[item] in "和与及" else item  # "和|科技部" at the clause start
    for at, word, _ in _tagged_words(context[item:end]):
        if word in _LIST_VERBS:
            start = item + at + len(word)
    return start


def whole_list(context: str, start: int, end: int) -> tuple[int, int]:
    """A span that is one item of a "、" list, widened to the whole list: "哪些单位主办" is answered by all of
    "科技部、国家发展改革委、…、北京市政府", not its last three. Items run to the clause's punctuation; the
    first one starts after the word that opens the list (由 / 包括 / 成为: "平台包括|在线教育"); an item longer
    than 20 characters ends the list."""
    while start > 0 and context[start - 1] == "、":
        item = start - 1
        while item > 0 and context[item - 1] not in _ITEM_BREAK and start - item <= 20:
            item -= 1
        item = _after_lead(context, item, start - 1)
        if start - 1 - item > 20 or item >= start - 1:
            break
        start = item
    while end < len(context) and context[end] == "、":
        stop = _ITEM_END.search(context, end + 1)
        item_end = stop.start() if stop else len(context)
        if item_end - end - 1 > 20 or item_end <= end + 1:
            break
        end = item_end
    return start, end


def asked_quantity(question: str, text: str) -> tuple[int, int] | None:
    """Where, in a span, the quantity in the asked unit stands: "50余家科幻领域企业的60项" answers "多少项" with
    "60项" only. The first such quantity ("1万年，量子计算机需要200秒" answers "经典计算机要花多长时间" with
    "1万年": the reader's start is surer than its end); None when the question names no unit or the span has
    no quantity in it."""
    units = asked_units(question)
    for m in _QUANTITY.finditer(text) if units else ():
        if any(_has_in_order(m.group(), u) for u in units):
            return m.start(), m.end()
    return None


# "A还是B", "何者": the answer is one of the question's own words
_CHOICE_QUESTION = re.compile(r"还是|何者|哪一?(?:个|边|侧|方)(?:更|较|比较)")


def echoes_question(question: str, text: str) -> bool:
    """The span only repeats words of the question ("几年前…处于什么状况？" answered "几年"): under 1% of the
    human sets' answers do, most of them in either-or questions."""
    text = text.strip()
    return bool(text) and text in question and not _CHOICE_QUESTION.search(question)


def answer_type(question: str):
    """A check on the span text for the type of answer the question asks for, or None when it names none."""
    if asks_for_number(question):
        return lambda text: bool(_NUMERAL.search(text)) and fits_asked_unit(question, text)
    asked = _ASKED_NOUN.search(question)
    if not asked:
        return None
    noun = asked.group(1)
    if noun in _GENERIC_ORGANISATION:
        return lambda text: bool(_ORGANISATION.search(text))
    if _ORGANISATION.search(noun):  # 基金会, 大学, 研究院: the name ends with the noun itself
        return lambda text: text.endswith(noun) and len(text) > len(noun)
    return None


# words that ask rather than say: a question made only of these and unknown words is about nothing in the articles
_QUESTION_WORDS = set("什么 哪个 哪些 哪家 哪位 哪一年 哪年 哪里 多少 为什么 怎样 如何 怎么 名字 什么样 是不是 有没有".split())


def off_topic(question: str, texts: list[str]) -> bool:
    """True when none of the question's content words (jieba words of two or more characters, question words
    aside) occurs in the texts: the articles are not about what is asked ("火星表面的平均温度是多少？"), however well
    some span about another figure scores."""
    from retriever.lexical import _jieba

    words = [w for w in _jieba().lcut(lower_ascii(question))
             if len(w) >= 2 and re.search(r"\w", w) and w not in _QUESTION_WORDS and not re.match(r"[哪多几什谁怎]", w)]
    text = lower_ascii("".join(texts))
    return bool(words) and not any(w in text for w in words)


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def missing_numbers(question: str, texts: list[str]) -> list[str]:
    """The figures a question names ("2024年", "第五届") that none of the texts has (the pipeline passes the
    whole articles its passages come from: a passage may well not repeat the year its article is about).

    A question about a year or a figure the articles never mention cannot be answered from them, however well a
    span about the neighbouring year scores: the reader's no-answer score is weak exactly there.
    """
    question = question.translate(_FULLWIDTH_DIGITS)
    text = "".join("".join(t.split()) for t in texts).translate(_FULLWIDTH_DIGITS)
    missing = [n for n in re.findall(r"\d+(?:\.\d+)?", question)
               if not re.search(r"(?<![\d.])" + re.escape(n) + r"(?![\d]|\.\d)", text)]
    # ordinals in Chinese numerals: "第五届" asks about an edition the articles may never mention
    return missing + [n for n in re.findall(r"第[一二三四五六七八九十百]+[届次期批个]", question) if n not in text]


_NAME_TAGS = ("nr", "nrt", "nrfg", "nt", "nz", "ns", "eng")


def question_names(question: str) -> list[str]:
    """The people, organisations, places and Latin-letter names a question is about (jieba's tags)."""
    return [word for _, word, flag in _tagged_words(lower_ascii(question))
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
    if not counted or not counted.group(1) or _ASKS_DURATION.search(question):
        return []
    from retriever.lexical import _jieba

    words = [w for w in _jieba().lcut(counted.group(1)) if len(w) >= 2][:2]
    lo, hi = max(0, start - window), end + window
    ends_before = list(_SENTENCE_END.finditer(text, lo, start))
    lo = ends_before[-1].end() if ends_before else lo
    stop = _SENTENCE_END.search(text, end, hi)
    near = text[lo: stop.start() if stop else hi].replace("\n", "")
    return [] if any(w in near for w in words) else words


def unmentioned(question: str, texts: list[str]) -> bool:
    """The texts never mention what the question asks about: a figure it names, or any of its content words."""
    return bool(missing_numbers(question, texts)) or off_topic(question, texts)


def not_given(question: str, span: "Span | None", texts: list[str]) -> bool:
    """The texts do not give what is asked, however well the span scores: they never mention a figure
    ("2025年") or the topic ("火星") asked about, or the span is a figure in another unit than the one asked
    for ("多少人次" answered "约650家")."""
    return unmentioned(question, texts) or (span is not None and not fits_asked_unit(question, span.text))


class Reader:
    """An extractive QA model (AutoModelForQuestionAnswering) with windowing and span decoding."""

    def __init__(
        self,
        model,
        tokenizer,
        max_length: int = 256,
        stride: int = 64,
        max_answer_chars: int = 60,
        no_answer_threshold: float = 0.0,
        batch_size: int = 16,
        type_slack: float = 0.0,
        calibration: tuple[float, float] | None = None,
        clause_spans: bool = True,
    ):
        import torch

        self.torch = torch
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.stride = stride
        self.max_answer_chars = max_answer_chars
        self.no_answer_threshold = no_answer_threshold
        self.batch_size = batch_size
        self.onnx = None  # an OnnxQA when the int8 runtime is chosen
        self.bf16 = False  # torch-bf16 runtime: autocast the forward pass (AVX-512 BF16 / AMX CPUs)
        self.type_slack = type_slack  # how far below the best a span of the asked-for type may score
        # confidence = sigmoid(a * margin + b), fitted by qa.training.ship; unfitted, 0.5 sits at the threshold
        self.calibration = tuple(calibration) if calibration else None
        # an answer stays in one clause (between commas), not only in one sentence: news answers are short
        self.clause_spans = clause_spans

    @classmethod
    def load(cls, model_path: str | Path, runtime: str = "torch", cache_root: Path | None = None,
             **settings) -> "Reader":
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        import json

        from qa.models import quiet_transformers

        quiet_transformers()
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        model = AutoModelForQuestionAnswering.from_pretrained(str(model_path), dtype=torch.float32)
        model.eval()
        config = Path(model_path) / "qa_reader.json"  # decoding settings tuned with the weights
        if config.exists():
            settings = {**json.loads(config.read_text(encoding="utf-8")), **settings}
        reader = cls(model, tokenizer, **settings)
        if runtime == "onnx-int8":
            import tempfile

            from qa.onnx_runtime import OnnxQA, int8_model

            cache_root = cache_root or Path(tempfile.gettempdir()) / "qa-zh"
            reader.onnx = OnnxQA(int8_model(Path(model_path), "qa", cache_root))
        elif runtime == "torch-bf16":
            # without native bf16 (AVX-512 BF16 / AMX) autocast is emulated and slower: stay on fp32 there
            reader.bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        elif runtime != "torch":
            raise ValueError(f"unknown reader runtime {runtime!r}: use torch, torch-bf16 or onnx-int8")
        return reader

    def logits(self, encoding) -> tuple[np.ndarray, np.ndarray]:
        if self.onnx is not None:
            return self.onnx({k: encoding[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding})
        torch = self.torch
        starts, ends = [], []
        n = encoding["input_ids"].shape[0]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for b in range(0, n, self.batch_size):
                batch = {
                    k: torch.from_numpy(encoding[k][b : b + self.batch_size])
                    for k in ("input_ids", "attention_mask", "token_type_ids")
                    if k in encoding
                }
                out = self.model(**batch)
                starts.append(out.start_logits.float().numpy())
                ends.append(out.end_logits.float().numpy())
        return np.concatenate(starts), np.concatenate(ends)

    def read(self, question: str, passages: list[str], n_best: int = 5) -> list[Span]:
        """Candidate spans over all passages, best first (by margin over the window's no-answer score)."""
        if not passages:
            return []
        enc = encode_windows(self.tokenizer, [question] * len(passages), passages, self.max_length, self.stride)
        start_logits, end_logits = self.logits(enc)
        spans: dict[tuple[int, int, int], Span] = {}
        for w in range(start_logits.shape[0]):
            p = int(enc["overflow_to_sample_mapping"][w])
            offsets = enc["offset_mapping"][w]
            null = float(start_logits[w, 0] + end_logits[w, 0])
            mask = context_mask(enc, w)
            segments = token_segments(passages[p], offsets, _CLAUSE_END if self.clause_spans else _SENTENCE_END)
            for a, b, score in best_spans_in_window(
                start_logits[w], end_logits[w], mask, self.max_answer_chars, n_best, offsets, segments
            ):
                cs, ce = _trim(passages[p], int(offsets[a][0]), int(offsets[b][1]))
                if cs >= ce:  # punctuation only (the segments keep a span inside one sentence or clause)
                    continue
                cs, ce = _trim(passages[p], *whole_units(passages[p], cs, ce))
                span = Span(p, cs, ce, passages[p][cs:ce], score, score - null)
                key = (p, cs, ce)
                if key not in spans or spans[key].margin < span.margin:
                    spans[key] = span
        return sorted(spans.values(), key=lambda s: s.margin, reverse=True)[:n_best]

    def answer(self, question: str, passages: list[str]) -> Span | None:
        """The best span, or None when no span beats the no-answer score by the threshold or the passages
        never mention what the question asks about."""
        span = self.best(question, passages)
        if span is None or span.margin < self.no_answer_threshold or not_given(question, span, passages):
            return None
        return span

    def confidence(self, margin: float) -> float:
        """The calibrated probability, in [0, 1], that a span with this margin answers the question."""
        a, b = self.calibration or (1.0, -self.no_answer_threshold)
        return float(1.0 / (1.0 + np.exp(-(a * margin + b))))

    def best(self, question: str, passages: list[str]) -> Span | None:
        """The best span whether or not it clears the no-answer threshold.

        A question that names the type of its answer prefers the best span of that type when it scores within
        type_slack of the best: a number or a date for "多少" / "哪一年" (a small reader often picks the noun
        next to it), a name ending in the asked-for noun for "哪个基金会" / "哪家公司" (not half of the name).
        A best span that only repeats the question's words gives way to the next one.
        """
        spans = self.read(question, passages, n_best=10)
        if not spans:
            return None
        if echoes_question(question, spans[0].text):
            # the best margin stays: it measures whether the passages answer at all
            others = [s for s in spans if not echoes_question(question, s.text)]
            if others:
                spans = [dataclasses.replace(others[0], margin=spans[0].margin)] + others[1:]
        wanted = answer_type(question) if self.type_slack > 0 else None
        if wanted is not None and not wanted(spans[0].text):
            typed = [s for s in spans if wanted(s.text) and s.margin >= spans[0].margin - self.type_slack]
            if typed:  # keeps the best margin: it measures whether the passages answer at all
                return self._what_is_asked(question, dataclasses.replace(typed[0], margin=spans[0].margin), passages)
        return self._what_is_asked(question, spans[0], passages)

    @staticmethod
    def _what_is_asked(question: str, span: Span, passages: list[str]) -> Span:
        """A "多少<unit>" answer is the quantity in that unit, a "谁" answer the name (not the words around
        them), a "哪些" answer the whole list its span is an item of."""
        found = asked_quantity(question, span.text) or asked_name(question, span.text)
        if found is not None:
            start, end = span.start + found[0], span.start + found[1]
        elif _ASKS_FOR_MANY.search(question):
            start, end = whole_list(passages[span.passage], span.start, span.end)
        else:
            return span
        return dataclasses.replace(span, start=start, end=end, text=passages[span.passage][start:end])
