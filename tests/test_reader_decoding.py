"""Span decoding over start/end logits, the answer-shape rules and the refusal checks (no model needed)."""

import pytest
import numpy as np

from qa.answer_shape import shape, trim
from qa.reader import Span, best_spans_in_window
from qa.refusal import checks
from retriever.text import lower_ascii
from retriever.tokens import Windows


def answer(question, spans, passages, type_slack=0.0, threshold=0.0):
    """What the pipeline makes of the reader's spans: the shaped span, or None when it does not clear the
    threshold or the passages do not give what is asked."""
    span = shape(question, spans, passages, type_slack)
    return None if span is None or span.margin < threshold or any(checks(question, passages, span.text).values()) else span


def test_best_span_respects_order_mask_and_length():
    start = np.array([5.0, 0, 9, 0, 0, 0])
    end = np.array([5.0, 0, 0, 0, 8, 10])
    mask = np.array([False, True, True, True, True, False])  # [CLS] and the last token are not context
    spans = best_spans_in_window(start, end, mask, max_answer_chars=5)
    assert spans[0][:2] == (2, 4)  # best start 2, best end 4 (5 is outside the context)
    assert all(a <= b and mask[a] and mask[b] for a, b, _ in spans)
    short = best_spans_in_window(start, end, mask, max_answer_chars=2)
    assert all(b - a < 2 for a, b, _ in short)
    # with offsets, length is counted in characters: token 2 covers 10 characters, so 2..4 is too long for 8
    offsets = np.array([[0, 0], [0, 1], [1, 11], [11, 12], [12, 13], [0, 0]])
    assert all(offsets[b][1] - offsets[a][0] <= 8 for a, b, _ in best_spans_in_window(start, end, mask, 8, 5, offsets))
    assert best_spans_in_window(start, end, mask, 12, 5, offsets)[0][:2] == (2, 4)


def test_trim_drops_dangling_punctuation_but_keeps_balanced_quotes():
    text = "，“开放合作·共享未来”主题。"
    assert text[slice(*trim(text, 0, 12))] == "“开放合作·共享未来”"
    assert text[slice(*trim(text, 1, 11))] == "开放合作·共享未来"  # lone opening quote dropped
    assert text[slice(*trim(text, 2, 15))] == "开放合作·共享未来”主题"  # a closing quote with no opener is inside the text
    assert text[slice(*trim(text, 12, 15))] == "主题"


def test_ascii_lowercasing_keeps_length():
    assert lower_ascii("Quafu平台AI") == "quafu平台ai"
    assert len(lower_ascii("ÄQuafu")) == len("ÄQuafu")


def test_number_questions_prefer_a_numeral_span_within_the_slack():
    from qa.asked import asks_for_number

    assert asks_for_number("中关村论坛是哪一年诞生的？") and asks_for_number("来自多少个国家和地区？")
    assert not asks_for_number("西湖大学校长是谁？")

    spans = [Span(0, 0, 2, "论坛", 9.0, 5.0), Span(0, 3, 8, "2007年", 8.0, 4.0), Span(0, 9, 11, "中国", 7.0, 3.0)]
    passages = ["论坛于2007年诞生"]
    chosen = answer("哪一年诞生的？", spans, passages, type_slack=2.0)
    assert chosen.text == "2007年" and chosen.margin == 5.0  # the best margin decides whether to answer
    assert answer("2007年诞生的是什么？", spans, passages, 2.0).text == "论坛"  # not a number question
    assert answer("诞生了多少？", spans, passages, 2.0).text == "2007年"  # a number, no unit named
    assert answer("诞生了多少？", spans, passages, 0.5).text == "论坛"  # the numeral span scores too far below
    assert answer("哪一年诞生的？", spans, passages, 0.5) is None  # and "论坛" is not a year: no answer
    assert answer("哪一年诞生的？", spans, passages, 2.0, threshold=6.0) is None


def test_a_span_that_only_repeats_the_question_gives_way_to_the_next_best():
    from qa.answer_shape import echoes_question

    assert echoes_question("几年前，“共享未来”的理念处于什么状况？", "几年")
    assert not echoes_question("几年前，“共享未来”的理念处于什么状况？", "难以产生共鸣")
    assert not echoes_question("施肥是内部还是外部？", "外部")  # either-or: the answer is in the question

    spans = [Span(0, 0, 2, "几年", 9.0, 5.0), Span(0, 10, 16, "难以产生共鸣", 8.0, 4.0)]
    passages = ["几年前，这一理念还难以产生共鸣"]
    chosen = answer("几年前，这一理念处于什么状况？", spans, passages)
    assert chosen.text == "难以产生共鸣" and chosen.margin == 5.0  # the best margin decides whether to answer
    assert answer("这一理念在何种情况下难以产生共鸣？", spans, passages).text == "几年"  # no echo


def test_confidence_is_a_probability_that_rises_with_the_margin():
    from qa.reader import Reader

    reader = Reader(model=None, tokenizer=None, no_answer_threshold=-2.0)
    assert reader.confidence(-2.0) == 0.5  # unfitted: the threshold sits at 0.5
    reader.calibration = (0.8, 1.0)
    values = [reader.confidence(m) for m in (-50.0, -3.0, 0.0, 3.0, 50.0)]
    assert values == sorted(values) and 0.0 <= values[0] < 0.01 and values[-1] > 0.99


def test_calibration_fit_matches_the_rate_of_right_answers():
    import math

    from qa.training.ship import fit_calibration

    # margins above 0 are right 3 times in 4, below 0 once in 4 (unanswerable ones are never right)
    right = {"question": "q", "answers": ["对"]}
    unanswerable = {"question": "q", "answers": []}
    scored = []
    for m in (1.0, 2.0):
        scored += [(right, m, "对")] * 3 + [(right, m, "错")]
    for m in (-1.0, -2.0):
        scored += [(right, m, "对")] + [(unanswerable, m, "错")] * 3
    a, b = fit_calibration(scored)
    sigmoid = lambda m: 1 / (1 + math.exp(-(a * m + b)))  # noqa: E731
    assert a > 0 and abs(sigmoid(1.5) - 0.75) < 0.08 and abs(sigmoid(-1.5) - 0.25) < 0.08


def test_threshold_weighs_every_domain_but_keeps_the_tune_false_refusal_cap():
    from qa.training.ship import choose_threshold

    right, none = {"question": "q", "answers": ["对"]}, {"question": "q", "answers": []}
    # on the tune half alone any threshold in (-2, 1] is perfect; the smallest gap is chosen (closest to 0)
    tune = [(right, 1.0, "对")] * 20 + [(none, -2.0, "错")] * 5
    t_alone, _ = choose_threshold(tune)
    assert -2.0 < t_alone <= 1.0
    # a domain whose unanswerable questions score up to 0.5 pulls the threshold above 0.5 ...
    domain = [(right, 3.0, "对")] * 10 + [(none, 0.5, "错")] * 10
    t, figures = choose_threshold(tune, domains={"legal": domain})
    assert 0.5 < t <= 1.0 and figures["domains"]["legal"]["no_answer_accuracy"] == 100.0
    # ... but never so far that more than 5% of the tune half's answerable questions are refused
    domain = [(right, 3.0, "对")] * 10 + [(none, 2.0, "错")] * 30
    t, figures = choose_threshold(tune, domains={"legal": domain})
    assert t <= 1.0 and figures["false_refusals"] <= 5.0


def widen(text, part):
    """The span whole_units makes of the first occurrence of part in text."""
    from qa.answer_shape import whole_units

    start = text.index(part)
    s, e = whole_units(text, start, start + len(part))
    return text[s:e]


def test_whole_units_keep_numbers_whole_and_with_their_unit():
    assert widen("本届论坛有5000余名科学家到场", "5000余") == "5000余名"
    assert widen("约300多家跨国公司在中关村设立总部", "300") == "300多家"
    assert widen("经典计算机需要1万年才能完成", "1") == "1万年"  # the "1\n万年" of the PDF, joined
    assert widen("芯片有136核", "36") == "136核"  # never half a number
    assert widen("增长了28.4%，位居第一", "28") == "28.4%"
    assert widen("会期为5月25日至30日", "5月25日至30") == "5月25日至30日"
    assert widen("院长董进说，这很好", "董进说") == "董进"  # the name, not the verb after it
    assert widen("他说", "他说") == "他说"  # too short to be a name and a verb
    assert widen("2007年诞生的中关村论坛", "中关村论坛") == "中关村论坛"  # no number: unchanged
    assert widen("论坛于5月25日至30日举办", "5月25日") == "5月25日至30日"  # a date range is one unit
    assert widen("展期为5月26日-6月2日", "5月26日") == "5月26日-6月2日"
    assert widen("比重达28.4%，位居第一", "达28.4") == "28.4%"  # "reaches" is not part of the figure
    assert widen("签约金额超过810亿元", "超过810") == "超过810亿元"  # a qualifier is kept: the article's words
    assert widen("以达成共识", "达成共识") == "达成共识"  # 达 before no figure stays


def test_an_organisation_named_after_two_people_is_not_cut_in_half():
    assert widen("共识。比尔及梅琳达·盖茨基金会联席主席比尔·盖茨表示", "梅琳达·盖茨基金会") == "比尔及梅琳达·盖茨基金会"
    assert widen("这笔款项来自李嘉诚与王健林基金会", "王健林基金会") == "李嘉诚与王健林基金会"
    # two organisations, or a person not before an organisation: each stays its own answer
    assert widen("由清华大学与北京大学共同主办", "北京大学") == "北京大学"
    assert widen("比尔及梅琳达·盖茨出席", "梅琳达·盖茨") == "梅琳达·盖茨"


def test_spans_never_cross_a_sentence_end():
    from qa.reader import Reader

    class Tokens:  # one token per character: enough to drive read() with fixed logits
        def windows(self, questions, contexts, max_length, stride):
            q, c = questions[0], contexts[0]
            ids = np.zeros((1, len(q) + len(c) + 3), dtype=np.int64)
            offsets = np.array([[0, 0]] + [[0, 0]] * len(q) + [[0, 0]] + [[i, i + 1] for i in range(len(c))] + [[0, 0]])
            seq = [None] + [0] * len(q) + [None] + [1] * len(c) + [None]
            return Windows({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids),
                            "offset_mapping": offsets[None], "overflow_to_sample_mapping": np.array([0])}, [seq])

    context = "第一句话。答案在这"
    start_at, end_at = 1 + 1 + 1 + context.index("话"), 1 + 1 + 1 + context.index("案")

    class Fixed(Reader):
        def logits(self, encoding):
            n = encoding["input_ids"].shape[1]
            s, e = np.zeros((1, n)), np.zeros((1, n))
            s[0, start_at], e[0, end_at] = 9.0, 9.0  # the best raw span runs across "。"
            e[0, start_at] = 5.0
            return s, e, None

    spans = Fixed(model=None, tokenizer=Tokens(), lowercase=True).read("问", [context], n_best=10)
    assert spans and all("。" not in s.text for s in spans)
    # the constraint is applied before the n-best cut: even the single best span stays in one sentence
    (only,) = Fixed(model=None, tokenizer=Tokens(), lowercase=True).read("问", [context], n_best=1)
    assert only.text == "话"  # the best start with the best end in its sentence
    # and, by default, in one clause: a comma ends it too ("1,000" does not)
    context = "第一句话，答案在这"
    assert Fixed(model=None, tokenizer=Tokens(), lowercase=True).read("问", [context], n_best=1)[0].text == "话"
    crossing = Fixed(model=None, tokenizer=Tokens(), lowercase=True, clause_spans=False).read("问", [context], n_best=1)[0]
    assert crossing.text == "话，答案"
    # a soft rule: crossing a comma costs clause_penalty (18 - 1 beats 14; 18 - 5 does not); a sentence end stays hard
    soft = lambda penalty: Fixed(model=None, tokenizer=Tokens(), lowercase=True,  # noqa: E731
                                 clause_penalty=penalty).read("问", [context], n_best=1)[0].text
    assert soft(1.0) == "话，答案" and soft(5.0) == "话"
    assert Fixed(model=None, tokenizer=Tokens(), lowercase=True, clause_penalty=0.0).read(
        "问", ["第一句话。答案在这"], n_best=1)[0].text == "话"


def test_token_segments_count_the_breaks_before_each_token():
    from qa.answer_shape import CLAUSE_END
    from qa.reader import token_segments

    text = "共1,000人，约650家。"
    offsets = np.array([[i, i + 1] for i in range(len(text))])
    segments = token_segments(text, offsets, CLAUSE_END)
    assert list(segments[: text.index("，") + 1]) == [0] * (text.index("，") + 1)  # "1,000" and its comma: one
    assert segments[text.index("约")] == 1 and segments[-1] == 1  # the 。 belongs to the clause it ends


def test_a_figure_the_passages_never_mention_means_no_answer():
    from qa.refusal import missing_numbers

    passages = ["2023中关村论坛于5月25日至30日举办，增长12.5%，第6届大赛"]
    assert missing_numbers("2024年中关村论坛在什么时候举办？", passages) == ["2024"]
    assert missing_numbers("2023中关村论坛在什么时候举办？", passages) == []
    assert missing_numbers("增长了2.5%吗？", passages) == ["2.5"]  # 2.5 is not a part of 12.5
    assert missing_numbers("第６届大赛有多少个项目？", passages) == []  # full-width digits
    assert missing_numbers("论坛在哪里举办？", passages) == []
    assert missing_numbers("第五届大赛的冠军是谁？", ["第六届大赛于去年启动"]) == ["第五届"]
    assert missing_numbers("第六届大赛的主题是什么？", ["第六届大赛于去年启动"]) == []

    spans = [Span(0, 11, 20, "5月25日至30日", 9.0, 5.0)]
    assert answer("2023中关村论坛在什么时候举办？", spans, passages).text == "5月25日至30日"
    assert answer("2024年中关村论坛在什么时候举办？", spans, passages) is None


def test_answer_type_from_the_question():
    from qa.asked import answer_type

    foundation = answer_type("比尔·盖茨是哪个基金会的联席主席？")
    assert foundation("比尔及梅琳达·盖茨基金会") and not foundation("比尔及梅琳达") and not foundation("基金会")
    company = answer_type("在中关村软件园与北京蜜农集团签约合作的是哪家企业？")  # a generic noun: any organisation
    assert company("北京强盛分析仪器有限责任公司") and not company("中关村软件园内")
    year = answer_type("中关村论坛是哪一年诞生的？")
    assert year("2007年") and not year("中关村论坛")
    assert answer_type("西湖大学校长是谁？") is None  # names no type: no preference


def test_a_figure_in_another_unit_than_the_one_asked_for_does_not_answer():
    from qa.asked import answer_type, fits_asked_unit

    assert not fits_asked_unit("展览期间累计接待了多少人次观众？", "约650家")
    assert fits_asked_unit("展览期间累计接待了多少人次观众？", "超过10万人次")
    assert not fits_asked_unit("增加值总额是多少亿元？", "28.4%")
    assert fits_asked_unit("累计提供了多少亿元资金？", "6亿多元")  # the unit's characters, in order
    assert fits_asked_unit("本届论坛有多少人到现场参会？", "5000余名")  # 人 / 名 / 位 count people alike
    assert fits_asked_unit("去年中国提交了多少份国际专利申请？", "7 万份")
    assert not fits_asked_unit("视频演讲是在论坛哪一天播放的？", "2023")  # a day, not a year
    assert fits_asked_unit("论坛在哪一天开幕？", "5月25日")
    assert not fits_asked_unit("中关村论坛是哪一年诞生的？", "中关村")
    assert fits_asked_unit("签约项目的总金额是多少？", "超过810亿元")  # no unit named: any figure
    assert fits_asked_unit("能同时操控多少个量子比特？", "136 个")
    assert not fits_asked_unit("中关村论坛今年是第几届？", "2023")  # an ordinal asks for an ordinal
    assert fits_asked_unit("中关村论坛今年是第几届？", "第十五届") and fits_asked_unit("这是第几次？", "第3次")
    assert fits_asked_unit("中国在全球创新指数中排第几位？", "11位")  # the article's "第 11位", 第 outside the span
    assert not fits_asked_unit("北京的GDP是多少？", "28.4%")  # money named by what it measures
    assert fits_asked_unit("北京的GDP是多少？", "4.16万亿元") and fits_asked_unit("去年的营业额是多少？", "120亿元")
    people = answer_type("展览期间累计接待了多少人次观众？")  # the typed preference asks for the unit too
    assert people("约5万人次") and not people("约650家")


def test_a_quantity_question_is_answered_by_the_quantity_in_its_unit():
    from qa.answer_shape import asked_quantity
    from qa.asked import fits_asked_unit

    def quantity(question, text):
        found = asked_quantity(question, text)
        return text[found[0]:found[1]] if found else None

    assert quantity("科幻展一共展出了多少项新技术新产品？", "50余家科幻领域企业的60项") == "60项"
    assert quantity("累计提供了多少资金支持？", "175家优质前沿技术企业提供6亿多元") == "6亿多元"  # money by its noun
    assert quantity("签约项目的总金额是多少？", "超过810亿元") == "超过810亿元"  # already just the quantity
    assert quantity("最多能同时操控多少个量子比特？", "136 个量子比特") is None  # 个 names no particular unit
    assert quantity("解决某些问题时，经典计算机要花多长时间？", "1万年，量子计算机需要200秒") == "1万年"  # the first
    assert not fits_asked_unit("经典计算机要花多长时间？", "量子计算机")
    assert not fits_asked_unit("签约金额是多少？", "175家")

    spans = [Span(0, 3, 17, "50余家科幻领域企业的60项", 9.0, 5.0)]
    span = shape("展出了多少项新技术？", spans, ["科幻展50余家科幻领域企业的60项新技术"])
    assert (span.text, span.start, span.end, span.margin) == ("60项", 14, 17, 5.0)


def test_a_who_question_is_answered_by_the_name_without_the_titles_before_it():
    from qa.answer_shape import asked_name

    def name(question, text):
        found = asked_name(question, text)
        return text[found[0]:found[1]] if found else None

    assert name("哪位诺贝尔奖得主引用了电影台词？", "斯克利普斯研究所教授、霍华德·休斯医学研究所研究员阿德姆·帕塔普蒂安") \
        == "阿德姆·帕塔普蒂安"
    assert name("谈到人才交流的是谁？", "中国科学院院士、西湖大学校长施一公") == "施一公"
    assert name("谈到人才交流的是谁？", "施一公") is None  # just a name: nothing to cut
    assert name("他担任什么职务？", "西湖大学校长施一公") is None  # not a who-question


def test_an_item_of_a_list_is_widened_to_the_whole_list():
    from qa.answer_shape import whole_list

    def widen_list(text, part):
        start = text.index(part)
        s, e = whole_list(text, start, start + len(part))
        return text[s:e]

    hosts = "5月25日至30日，由科技部、国家发展改革委、工业和信息化部、中国科协、北京市政府共同主办的论坛在京举行。"
    assert widen_list(hosts, "中国科协、北京市政府") == "科技部、国家发展改革委、工业和信息化部、中国科协、北京市政府"
    assert widen_list("引入全息投影、数字导引等技术手段", "全息投影") == "全息投影、数字导引"  # up to 等
    assert widen_list("共享未来，成为全球知名科学家、企业家的强烈共识", "企业家") == "全球知名科学家、企业家"  # not 成为
    assert widen_list("他来自北京，也去过上海", "北京") == "北京"  # no list: unchanged
    # the list opens after the verb even mid-clause, and a word that starts like a lead keeps its first character
    assert widen_list("平台包括在线教育、远程医疗等服务", "远程医疗") == "在线教育、远程医疗"
    assert widen_list("，在线教育、远程医疗。", "远程医疗") == "在线教育、远程医疗"
    assert widen_list("论坛由科技部、北京市政府主办", "北京市政府") == "科技部、北京市政府"


def test_an_answer_far_from_every_mention_of_the_person_asked_about_is_about_something_else():
    from qa.refusal import names_far_from, question_names

    assert "李彦宏" in question_names("李彦宏在论坛上展示了哪款大模型产品？")
    text = "李彦宏发表演讲。" + "论坛还举办了多场活动。" * 30 + "技术交易额创新高。"
    answer = text.index("技术交易")
    assert names_far_from("李彦宏在论坛上展示了哪款大模型产品？", text, answer, answer + 4) == ["李彦宏"]
    near = text.index("演讲")
    assert names_far_from("李彦宏在论坛上展示了哪款大模型产品？", text, near, near + 2) == []
    assert names_far_from("论坛上展示了哪款大模型产品？", text, answer, answer + 4) == []  # no name asked about


def test_a_how_many_answer_must_count_what_is_asked():
    from qa.refusal import counted_far_from

    text = "平台最多可同时操控 136 个量子比特，是国内规模最大的云平台。平台注册用户已有\n上万名。"
    qubits = text.index("136")
    assert counted_far_from("平台有多少注册用户？", text, qubits, qubits + 5) == ["注册", "用户"]
    assert counted_far_from("平台最多能同时操控多少个量子比特？", text, qubits, qubits + 5) == []
    users = text.index("上万名")
    assert counted_far_from("平台有多少注册用户？", text, users, users + 3) == []  # the noun before the number
    # the sentence end bounds "near": 用户 of the next sentence does not make 136 count users
    assert counted_far_from("平台有多少用户？", text, qubits, qubits + 5, window=60) == ["用户"]
    # nothing to check: no counted noun, a duration, or a bare unit
    for question in ("签约金额是多少？", "要花多少时间？", "增加值是多少亿元？"):
        assert counted_far_from(question, text, qubits, qubits + 5) == []


def test_a_question_about_nothing_in_the_articles_is_off_topic():
    from qa.refusal import off_topic

    articles = ["2023中关村论坛于5月25日至30日在北京举办，量子计算云平台Quafu亮相。"]
    assert off_topic("火星表面的平均温度是多少摄氏度？", articles)
    assert off_topic("火星上有多少只猫？", articles)
    assert not off_topic("中关村论坛是在哪几天举办的？", articles)
    assert not off_topic("QUAFU有多少个量子比特？", articles)  # ASCII is matched lowercased
    assert not off_topic("是什么？", articles)  # no content words: nothing to judge by


def test_boundary_head_cuts_a_span_inside_multi_character_tokens():
    """XLM-R pieces hold several characters: the answer 人民共和国 starts inside the piece 中华人民共和国 and
    成立 ends inside 成立于. The boundary head's cuts (here fixed weights) give the character-level span."""
    from qa.reader import Reader, boundary_cuts

    context = "中华人民共和国成立于1949年。"
    pieces = [(0, 7), (7, 10), (10, 14), (14, 15), (15, 16)]  # 中华人民共和国 | 成立于 | 1949 | 年 | 。

    class Pieces:
        def windows(self, questions, contexts, max_length, stride):
            n = 1 + 2 + 1 + len(pieces) + 1
            offsets = np.array([[0, 0]] * 4 + [list(p) for p in pieces] + [[0, 0]])
            return Windows({"input_ids": np.zeros((1, n), np.int64), "attention_mask": np.ones((1, n), np.int64),
                            "offset_mapping": offsets[None], "overflow_to_sample_mapping": np.array([0])},
                           [[None, 0, 0, None] + [1] * len(pieces) + [None]])

    classes, hidden_size = 8, 4
    weight, bias = np.zeros((2 * classes, hidden_size), np.float32), np.zeros(2 * classes, np.float32)
    weight[2, 0] = 1.0  # feature 0 of a start token says "cut 2 characters off its left edge"
    weight[classes + 1, 1] = 1.0  # feature 1 of an end token says "cut 1 character off its right edge"
    hidden = np.zeros((1, 10, hidden_size), np.float32)
    hidden[0, 4, 0] = 5.0  # 中华人民共和国: the answer starts two characters in
    hidden[0, 5, 1] = 5.0  # 成立于: the answer ends one character early

    class Fixed(Reader):
        def logits(self, encoding):
            s, e = np.zeros((1, 10)), np.zeros((1, 10))
            s[0, 4], e[0, 5] = 9.0, 9.0
            return s, e, hidden

    reader = Fixed(model=None, tokenizer=Pieces(), lowercase=False, boundary=(weight, bias))
    assert reader.read("问", [context], n_best=1)[0].text == "人民共和国成立"
    # without the head the span is whole pieces
    plain = Fixed(model=None, tokenizer=Pieces(), lowercase=False)
    plain.logits = lambda enc: (*Fixed.logits(plain, enc)[:2], None)
    assert plain.read("问", [context], n_best=1)[0].text == "中华人民共和国成立于"
    # a cut never empties its token, and two cuts in one token leave at least one character
    offsets = np.array([[0, 0]] * 4 + [list(p) for p in pieces])
    hidden[0, 7, 0], hidden[0, 7, 1] = 50.0, 50.0  # 年 (one character): asks to cut 2 and 1
    assert boundary_cuts((weight, bias), hidden[0], offsets, 7, 7) == (0, 0)


def _replay_row(answers, margins, texts, overlap=(5, 5, 5), source="set"):
    """A valid question as qa.training.early_stop keeps it: each passage's own best span (text, margin)."""
    passages = [f"甲乙{t or ''}丙丁" for t in texts]
    spans = [[Span(i, 2, 2 + len(t), t, m + 1.0, m)] if t else [] for i, (t, m) in enumerate(zip(texts, margins))]
    return {"source": source, "answers": answers, "question": "问", "passages": passages, "spans": spans,
            "overlap": list(overlap)}


def test_early_stop_takes_the_lowest_cutoff_that_keeps_the_answers():
    from qa.training.early_stop import choose, figures, reading_alone_pays

    rows = ([_replay_row(["对"], [9.0, 2.0, 2.0], ["对", "对", "对"])] * 50  # clearly ahead: the same either way
            + [_replay_row(["对"], [1.0, 0.5, 6.0], ["错", "错", "对"])] * 2  # the third passage holds the answer
            + [_replay_row([], [-3.0, -4.0, -3.5], ["错", "错", "错"])] * 10)  # refused (threshold 0)
    assert figures(rows, None) == {"changed": 0.0, "one_passage": 0.0, "passages": 3.0, "em": 100.0, "f1": 100.0,
                                   "false_refusals": 0.0, "refused": 100.0}
    assert figures(rows, 0.0)["changed"] > 0 and figures(rows, 0.0)["em"] < 100.0
    cutoff, table = choose(rows)
    assert cutoff == 2.0  # the lowest above the margin at which reading on would have found another answer
    at = figures(rows, cutoff)
    assert at["one_passage"] == round(100 * 50 / 62, 2) and at["passages"] == round((50 * 1 + 12 * 3) / 62, 2)
    # at most this share of answers may change: 2 of 62 is 3.2%
    assert choose(rows, max_changed=5.0, max_loss=5.0)[0] == -4.0
    # two calls pay only when enough questions stop after the first: 50 of 62 do at 2.0, none at 10.0
    assert reading_alone_pays(rows, 2.0, None) and not reading_alone_pays(rows, 10.0, None)
    # a question the first passage does not settle reads the other two together
    assert figures([_replay_row(["对"], [1.0, 5.0, 5.0], ["错", "对", "对"])], 4.0)["passages"] == 3.0


def test_a_passage_far_behind_in_question_words_is_skipped_once_there_is_an_answer():
    from qa.reader import question_overlap, read_in_turn
    from qa.training.early_stop import choose_skip, figures

    assert question_overlap("中关村论坛哪年诞生", ["中关村论坛诞生于2007年", "论坛", "无关"]) == [5, 1, 0]
    calls = []

    def read_some(indices):
        calls.append(indices)
        return [Span(i, 0, 1, "甲", 1.0, (0.5, 9.0, 0.2)[i]) for i in indices]

    # passage 2 holds 3 bigrams fewer than passage 1: skipped with a gap of 2, read with 4
    spans, order = read_in_turn(read_some, [5, 2, 5], 5, None, 2, 0.0)
    assert order == [0, 2] and calls == [[0], [2]] and spans[0].margin == 0.5
    assert read_in_turn(read_some, [5, 2, 5], 5, None, 4, 0.0)[1] == [0, 1, 2]
    # no answer yet (margin under the threshold): every passage is read, the two after the first in one call
    calls.clear()
    assert read_in_turn(read_some, [5, 2, 5], 5, None, 2, 1.0)[1] == [0, 1, 2] and calls == [[0], [1, 2]]
    # the first passage clearly ahead: the others never read
    assert read_in_turn(read_some, [5, 2, 5], 5, 0.5, None, 0.0)[1] == [0]

    # the smallest gap that costs no set anything: gap 1 loses set B's answers held by a passage one bigram behind
    rows = ([_replay_row(["对"], [1.0, 0.5, 0.5], ["对", "错", "错"], (6, 2, 2), "A")] * 30  # look-alikes skipped
            + [_replay_row(["对"], [1.0, 3.0, 0.5], ["错", "对", "错"], (6, 5, 2), "B")] * 10)
    skip, table = choose_skip(rows, None)
    assert skip == 2 and [t["ok"] for t in table] == [False, True, True, True]
    assert figures(rows, None, 2)["passages"] == (30 * 1 + 10 * 2) / 40 and figures(rows, None, 2)["em"] == 100.0


def test_early_stop_rises_until_no_dev_tune_answer_changes():
    from qa.training.early_stop import keeping

    table = [{"cutoff": None, "changed": 0.0}] + [{"cutoff": c, "changed": ch} for c, ch in
                                                  ((1.0, 3.0), (2.0, 0.9), (3.0, 0.1), (4.0, 0.0))]
    tried = []

    def changes(c):  # the dev tune answers a cutoff changes: two at 2.0, none from 3.0 up
        tried.append(c)
        return ["q049", "q128"] if c < 3.0 else []

    assert keeping(2.0, table, 2.0, changes) == 3.0 and tried == [2.0, 3.0]
    assert keeping(2.0, table, 2.0, lambda c: ["q049"]) is None  # nothing keeps them: read every passage
    assert keeping(1.0, table, 2.0, lambda c: []) == 2.0  # 1.0 changes 3% of the valid answers: over the budget


def test_the_refusal_checks_are_one_registry_by_name():
    """qa.refusal.checks names every check the pipeline refuses by (qa.training.refusal_check weighs the same
    ones); a check whose input is missing is left out, not counted as passing."""
    article = "2023中关村论坛于5月25日开幕。论坛期间，李彦宏发表演讲。" + "其他内容。" * 40 + "展览累计接待观众约650家。"
    question = "2023中关村论坛展览期间累计接待了多少人次观众？"
    assert set(checks(question, [article])) == {"figure never mentioned", "topic never mentioned"}
    answer = "约650家"
    at = article.index(answer)
    fired = checks(question, [article], answer, article, at, at + len(answer))
    assert set(fired) == {"figure never mentioned", "topic never mentioned", "unit not the asked one",
                          "name far from the answer", "counts something else"}
    assert fired["unit not the asked one"] and not fired["figure never mentioned"]
    day = article.index("5月25日")
    assert not any(checks("2023中关村论坛在哪一天开幕？", [article], "5月25日", article, day, day + 5).values())


def test_a_where_answer_is_the_place_without_its_preposition():
    passage = "2023中关村论坛于5月25日至30日在北京举办。"
    at = passage.index("在北京")
    span = Span(0, at, at + 3, "在北京", 5.0, 3.0)
    assert shape("论坛在哪里举办？", [span], [passage]).text == "北京"
    assert shape("论坛是什么时候在北京举办的？", [span], [passage]).text == "在北京"  # not a where question
    short = Span(0, 2, 4, "在京", 5.0, 3.0)  # one character left would be no place name: kept whole
    assert shape("论坛在哪里举办？", [short], ["论坛在京举办。"]).text == "在京"


def test_an_answer_does_not_start_with_the_copula_the_question_asks_across():
    passage = "中关村是中国第一个国家自主创新示范区。"
    at = passage.index("是")
    span = Span(0, at, len(passage) - 1, passage[at:-1], 5.0, 3.0)
    assert shape("中关村是什么？", [span], [passage]).text == "中国第一个国家自主创新示范区"
    assert shape("中关村有什么地位？", [span], [passage]).text == passage[at:-1]  # no 是 asked across


def test_stop_model_features_and_settings():
    from qa.stopping import FEATURES, StopModel, stop_features

    spans = [Span(0, 0, 1, "甲", 4.0, 3.0), Span(0, 1, 2, "乙", 2.0, 1.0)]
    features = stop_features(spans, [6, 2, 4], 8, 0.0)
    assert len(features) == len(FEATURES)
    assert list(features) == [3.0, 2.0, 2.0, 4.0, 0.75, 0.5, 1.0]
    assert stop_features([], [1, 1], 0, 0.0)[0] < -10  # no span at all; no question bigrams is no division by zero
    model = StopModel((0.0,) * 6 + (1.0,), -1.0, 0.6)  # P(change) = sigmoid(answered - 1): 0.5 with an answer
    assert model.stops(spans, [6, 2, 4], 8, 0.0)
    assert not model.stops(spans, [6, 2, 4], 8, 3.5)  # no answer over the threshold: never stops
    assert not StopModel(model.weights, model.bias, 0.4).stops(spans, [6, 2, 4], 8, 0.0)
    assert StopModel.from_config(model.to_config()) == model and StopModel.from_config(None) is None
    with pytest.raises(ValueError, match="weights"):
        StopModel.from_config({"weights": [1.0], "bias": 0.0, "cutoff": 0.1})


def test_stop_model_is_fitted_and_its_cutoff_chosen_out_of_fold():
    from qa.training.early_stop import choose_stop, figures, fit_logistic

    x = np.array([[v] for v in np.linspace(-3, 3, 200)])
    weights, bias = fit_logistic(x, (x[:, 0] > 0).astype(float))
    assert weights[0] > 1.0 and abs(bias) < 0.5  # the side, and the boundary near 0
    rows = ([_replay_row(["对"], [9.0, 2.0, 2.0], ["对", "错", "错"], (8, 2, 2))] * 60  # ahead: stopping keeps it
            + [_replay_row(["对"], [0.5, 0.2, 6.0], ["错", "错", "对"], (5, 5, 6))] * 20)  # the third one answers
    rows = [{**r, "paragraph": i} for i, r in enumerate(rows)]
    model, table = choose_stop(rows)
    assert model is not None and [t["ok"] for t in table][0]
    at = figures(rows, None, None, stop_model=model)
    assert at["one_passage"] == 75.0 and at["changed"] == 0.0 and at["em"] == 100.0
    # every question stopping would cost the 20 answers held by the third passage: not a cutoff that passes
    assert all(not t["ok"] for t in table if t["one_passage"] == 100.0)
