"""What a question asks for (a figure in a unit, a date, an ordinal, an organisation, a person, a list)."""

from __future__ import annotations

import re

_NUMBER_QUESTION = re.compile(r"多少|几[个位家项届次年月日天倍成岁名号期场轮条种所座台]|多大|多长|多高|多远|多久|多重|百分之几"
                              r"|第几|哪一?年|哪天|哪一天|何时|什么时候|哪个月|什么时间|哪些天|哪几天")
_NUMERAL = re.compile(r"[0-9０-９〇一二三四五六七八九十百千万亿两]")


def asks_for_number(question: str) -> bool:
    return bool(_NUMBER_QUESTION.search(question))


# "哪个基金会", "哪家公司", "哪所大学": the noun the answer ends with; generic nouns accept any organisation
_ASKED_NOUN = re.compile(r"哪(?:一)?[个家所座款项部种类位]?([\u4e00-\u9fff]{1,4}?)(?=的|是|在|与|和|任|上|里|中|举|发|展|获|主|[？?，,]|$)")
ORGANISATION = re.compile(r"(?:公司|集团|银行|大学|学院|研究院|研究所|中心|实验室|基金会|协会|学会|委员会|联合会|医院|"
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


def has_in_order(text: str, unit: str) -> bool:
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


ASKS_DURATION = re.compile(r"多长时间|多久|多少时间|多少年(?!前|后|来)")
_DURATIONS = ("年", "月", "周", "天", "日", "小时", "分钟", "秒")


def asked_units(question: str) -> tuple[str, ...]:
    """The units a "多少" question accepts in its answer; () when it names none."""
    if ASKS_DURATION.search(question):
        return _DURATIONS
    asked = _ASKED_UNIT.search(question)
    if asked:
        return _UNIT_FAMILY.get(asked.group(1), (asked.group(1),))
    return ("元",) if _ASKS_MONEY.search(question) else ()


def fits_asked_unit(question: str, text: str) -> bool:
    """False when the question names a unit or a date granularity that the span does not have."""
    units = asked_units(question)
    if units:
        return any(has_in_order(text, u) for u in units)
    ordinal = _ASKED_ORDINAL.search(question)
    if ordinal:  # its 第 may stand outside the span ("第 11位" read as "11位"); its measure word may not
        return ordinal.group(1) in text
    for pattern, units in _ASKED_DATE:
        if pattern.search(question):
            return any(u in text for u in units)
    return True


ASKS_PERSON = re.compile(r"谁|哪位|哪一位")
ASKS_FOR_MANY = re.compile(r"哪些|哪几(?:个|家|位|项|种|所|类|方面)")


def answer_type(question: str):
    """A check on the span text for the type of answer the question asks for, or None when it names none."""
    if asks_for_number(question):
        return lambda text: bool(_NUMERAL.search(text)) and fits_asked_unit(question, text)
    asked = _ASKED_NOUN.search(question)
    if not asked:
        return None
    noun = asked.group(1)
    if noun in _GENERIC_ORGANISATION:
        return lambda text: bool(ORGANISATION.search(text))
    if ORGANISATION.search(noun):  # 基金会, 大学, 研究院: the name ends with the noun itself
        return lambda text: text.endswith(noun) and len(text) > len(noun)
    return None
