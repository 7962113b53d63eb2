"""Answer-shape rules on character offsets into a passage: whole units, the asked quantity, name or list, no echo.

They never see tokens: any tokenizer's spans, once mapped to characters, go through the same rules.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from qa.asked import ASKS_FOR_MANY, ASKS_PERSON, ORGANISATION, answer_type, asked_units, has_in_order
from retriever.text import tagged_words

if TYPE_CHECKING:
    from qa.reader import Span

_SEPARATORS = " \t\r\n\u3000，。、；：！？,.;:!?"
_PAIRS = {"”": "“", "’": "‘", "）": "（", ")": "(", "】": "【", "」": "「", "』": "『", "》": "《"}
_OPENERS = {v: k for k, v in _PAIRS.items()}


def trim(context: str, start: int, end: int) -> tuple[int, int]:
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
SENTENCE_END = re.compile(r"[。！？；!?;]")
# a clause ends at a comma too (not one between digits: "1,000"); news answers almost never cross one
CLAUSE_END = re.compile(r"[。！？；!?;，]|,(?![0-9])")


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


def whole_span(context: str, start: int, end: int) -> tuple[int, int] | None:
    """A decoded span's edges made whole: separators and unbalanced quotes trimmed, then whole units (and trimmed
    again); None when only punctuation is left."""
    start, end = trim(context, start, end)
    if start >= end:
        return None
    return trim(context, *whole_units(context, start, end))


def _coordinated_founders(context: str, start: int, end: int) -> int:
    """The start of an organisation named after two people, when the span holds only the second one:
    "比尔及|梅琳达·盖茨基金会" -> "比尔及梅琳达·盖茨基金会". A person's name (jieba: nr…) joined by 及 / 与 / 和
    right before an organisation's name belongs to it; an organisation there ("清华大学与北京大学") does not."""
    if start < 3 or context[start - 1] not in "及与和" or not ORGANISATION.search(context[start:end]):
        return start
    clause = max(context.rfind(c, 0, start - 1) for c in _SEPARATORS) + 1
    words = tagged_words(context[clause:end])
    for (at, word, flag), (next_at, _, _) in zip(words, words[1:]):
        if clause + next_at == start - 1:  # the word right before the conjunction
            return clause + at if flag.startswith("nr") and len(word) >= 2 else start
    return start


# a quantity as the articles write it: "约650家", "超过810亿元", "6亿多元", "7 万份", "5000余名"
_QUANTITY = re.compile(r"(?:约|近|超过|逾|共|将近|不到)?[0-9０-９]+(?:[.．,][0-9０-９]+)*[ \u3000]?[多余]?[万亿千百]?[多余]?"
                       + _UNITS)


# the titles news writers put before a name: "西湖大学校长施一公", "研究员阿德姆·帕塔普蒂安"
_TITLE_BEFORE_NAME = re.compile(r"(?:教授|研究员|院士|校长|院长|所长|主席|总干事|董事长|总经理|总裁|首席执行官|创始人|部长|"
                                r"市长|书记|主任|负责人|专家|记者|得主|主持人|科学家|企业家|工程师)"
                                r"((?:[\u4e00-\u9fff]{1,8}·)*[\u4e00-\u9fff]{2,8})$")


def asked_name(question: str, text: str) -> tuple[int, int] | None:
    """Where the name stands in a span that answers "谁" with titles before it: "斯克利普斯研究所教授、霍华德·休斯
    医学研究所研究员阿德姆·帕塔普蒂安" -> "阿德姆·帕塔普蒂安"; None when there is nothing to cut."""
    if not ASKS_PERSON.search(question):
        return None
    found = _TITLE_BEFORE_NAME.search(text)
    return (found.start(1), found.end(1)) if found and found.start(1) > 0 else None


_ITEM_BREAK = "，,。；;：:！？!?、\n“”（）()"  # punctuation that ends a list item
_ITEM_END = re.compile("[" + _ITEM_BREAK + "]|等|共同|联合|的")
# what opens a clause before the first item of a list: "由|科技部、…", "成为|全球知名科学家、企业家"
_LIST_VERBS = {"由", "包括", "包含", "其中有", "其中", "共有", "有", "是", "为", "成为", "在", "从", "对", "向", "如",
               "引入", "吸引"}


def _after_lead(context: str, item: int, end: int) -> int:
    """Where the first item of a list starts in context[item:end]: after the last jieba word that opens the
    list ("平台包括|在线教育", "论坛由|科技部"), never inside a word (在线教育 keeps its 在)."""
    start = item + 1 if item < end and context[item] in "和与及" else item  # "和|科技部" at the clause start
    for at, word, _ in tagged_words(context[item:end]):
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
        if any(has_in_order(m.group(), u) for u in units):
            return m.start(), m.end()
    return None


# "A还是B", "何者": the answer is one of the question's own words
_CHOICE_QUESTION = re.compile(r"还是|何者|哪一?(?:个|边|侧|方)(?:更|较|比较)")


def echoes_question(question: str, text: str) -> bool:
    """The span only repeats words of the question ("几年前…处于什么状况？" answered "几年"): under 1% of the
    human sets' answers do, most of them in either-or questions."""
    text = text.strip()
    return bool(text) and text in question and not _CHOICE_QUESTION.search(question)


CANDIDATES = 10  # how many of the reader's best spans the shape step chooses among


def shape(question: str, spans: list[Span], passages: list[str], type_slack: float = 0.0) -> Span | None:
    """The span that answers what is asked, from the reader's spans (best first), whether or not it clears the
    no-answer threshold; None when there are none. It keeps the best span's margin: that measures whether the
    passages answer at all.

    A best span that only repeats the question's words gives way to the next one. A question that names the type
    of its answer prefers the best span of that type when it scores within type_slack of the best: a number or a
    date for "多少" / "哪一年" (a small reader often picks the noun next to it), a name ending in the asked-for noun
    for "哪个基金会" / "哪家公司" (not half of the name). Then the span is cut or widened to what is asked.
    """
    if not spans:
        return None
    if echoes_question(question, spans[0].text):
        others = [s for s in spans if not echoes_question(question, s.text)]
        if others:
            spans = [dataclasses.replace(others[0], margin=spans[0].margin)] + others[1:]
    wanted = answer_type(question) if type_slack > 0 else None
    if wanted is not None and not wanted(spans[0].text):
        typed = [s for s in spans if wanted(s.text) and s.margin >= spans[0].margin - type_slack]
        if typed:
            return _what_is_asked(question, dataclasses.replace(typed[0], margin=spans[0].margin), passages)
    return _what_is_asked(question, spans[0], passages)


# a "where" question: its answer is the place, not the preposition before it (`在北京` -> `北京`); on 13 `valid`
# answers starting so, EM 2 -> 6 (the two lost keep 在 in a long gold clause)
_ASKS_WHERE = re.compile(r"哪里|在哪|何处|什么地方|哪儿|何地")


def _what_is_asked(question: str, span: Span, passages: list[str]) -> Span:
    """A "多少<unit>" answer is the quantity in that unit, a "谁" answer the name (not the words around
    them), a "哪些" answer the whole list its span is an item of, a "哪里" answer the place without 在 / 于, and an
    answer to a question with 是 without that 是 at its head."""
    found = asked_quantity(question, span.text) or asked_name(question, span.text)
    if found is not None:
        start, end = span.start + found[0], span.start + found[1]
    elif ASKS_FOR_MANY.search(question):
        start, end = whole_list(passages[span.passage], span.start, span.end)
    elif _ASKS_WHERE.search(question) and len(span.text) > 2 and span.text[0] in "在于":  # `在京` stays
        start, end = span.start + 1, span.end
    elif "是" in question and len(span.text) > 2 and span.text[0] == "是":
        # the copula the question asks across is not the answer (`是中国第一个…`): on 42 `valid` answers starting
        # so, EM 3 -> 9, F1 level
        start, end = span.start + 1, span.end
    else:
        return span
    return dataclasses.replace(span, start=start, end=end, text=passages[span.passage][start:end])
