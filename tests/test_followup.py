"""Follow-up rewriting over conversations about the bundled articles: the rewritten question names the
entity, and retrieval of the rewritten question finds the passage that answers it."""

from __future__ import annotations

import pytest

from qa.followup import standalone_history, standalone_question

# (history, follow-up, entity the rewrite must contain, text of the passage that answers it)
CONVERSATIONS = [
    (["西湖大学校长是谁？", "施一公"], "他认为人才要怎样才能变得更好？", "施一公", "更充分交流"),
    (["西湖大学校长是谁？", ""], "他认为人才要怎样才能变得更好？", "西湖大学校长", "更充分交流"),
    (["百度创始人是谁？", "李彦宏"], "他认为拥有先进AI技术的国家需要怎么做？", "李彦宏", "通力协作"),
    (["夺得大赛冠军的是哪家公司？", "北京深势科技有限公司"], "这家公司的政企事务副总裁是谁？",
     "北京深势科技有限公司", "刘会师"),
    (["中关村论坛是哪一年诞生的？", "2007年"], "它的主题是什么？", "中关村论坛", "共享未来"),
    (["2023中关村论坛在哪个城市举行？", "北京"], "那里的数字经济占比提升至多少？", "北京", "41.6%"),
    (["北京术锐机器人股份有限公司的副总经理是谁？", "胡慧慧"], "她介绍的机械臂有多长的展开距离？", "胡慧慧",
     "7厘米"),
    # three turns: the middle question is a follow-up itself
    (["北京量子信息科学研究院的哪位研究员介绍了量子计算云平台？", "范桁", "他介绍的量子计算云平台叫什么？", "Quafu"],
     "它最多可同时操控多少个量子比特？", "Quafu", "136"),
    (["北京量子信息科学研究院的哪位研究员介绍了量子计算云平台？", "范桁", "他介绍的量子计算云平台叫什么？", ""],
     "它最多可同时操控多少个量子比特？", "云平台", "136"),
    (["中关村论坛吸引了多少个国家和地区的嘉宾？", "86个国家和地区", "论坛期间累计签约多少个合作项目？", "129个"],
     "该论坛是哪一年诞生的？", "中关村论坛", "2007年"),
]


@pytest.mark.parametrize("history, question, entity, passage", CONVERSATIONS)
def test_follow_up_names_the_entity(history, question, entity, passage):
    rewritten = standalone_question(question, history)
    assert entity in rewritten
    assert not any(p in rewritten for p in ("他", "她", "它", "这家公司", "该论坛", "那里"))


# the rewrite is right, but fusion weighted 3:1 for BM25 (chosen with distractors) ranks this passage 5th (dense: 1st)
RETRIEVAL_GAP = pytest.mark.xfail(strict=True, reason="fusion favours BM25; the 主题 passage ranks 5th (issue 5)")


@pytest.mark.parametrize("history, question, entity, passage", [
    pytest.param(*c, marks=RETRIEVAL_GAP) if c[1] == "它的主题是什么？" else c for c in CONVERSATIONS])
def test_retrieval_of_the_rewrite_finds_the_passage(pipeline, history, question, entity, passage):
    hits = pipeline.retriever.retrieve(standalone_question(question, history), 3)
    assert any(passage in chunk.text for chunk, _ in hits)


@pytest.mark.parametrize("question, history", [
    ("中关村论坛是哪一年诞生的？", ["西湖大学校长是谁？", "施一公"]),  # nothing leans back
    ("其他国家怎么看人工智能？", ["百度创始人是谁？", "李彦宏"]),  # 其他 is not 他
    ("他认为人才要怎样才能变得更好？", []),  # no history: unchanged
])
def test_unchanged_when_nothing_to_resolve(question, history):
    assert standalone_question(question, history) == question


def test_an_amount_is_never_the_referent():
    assert standalone_question("它的主题是什么？", ["论坛累计签约多少个项目？", "129个"]) == "论坛的主题是什么？"


def test_a_who_answer_is_a_person_even_when_jieba_does_not_know_the_name():
    assert standalone_question("他介绍了什么？", ["哪位研究员介绍了量子计算云平台？", "范桁"]) == "范桁介绍了什么？"


def test_standalone_history_resolves_earlier_follow_ups():
    history = ["百度创始人是谁？", "李彦宏", "他认为人工智能是什么？", "人类创新的焦点"]
    assert standalone_history(history)[2] == "李彦宏认为人工智能是什么？"


def test_pipeline_ask_uses_the_conversation(pipeline):
    answer = pipeline.ask("他认为拥有先进AI技术的国家需要怎么做？", history=["百度创始人是谁？", "李彦宏"])
    assert answer.question == "他认为拥有先进AI技术的国家需要怎么做？"
    assert answer.searched_question.startswith("李彦宏")
    assert any("通力协作" in p.text for p in answer.passages)
