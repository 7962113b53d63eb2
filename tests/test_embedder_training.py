"""Training pairs for the dense retriever (qa.training.embedder): passages cut like the index cuts them."""

from qa.training.data import Example
from qa.training.embedder import retrieval_triples

FIRST = (
    "青岛港第三座自动化集装箱码头12月3日正式投入运营。该码头由青岛港集团与华为公司联合研发。"
    "全年设计吞吐能力为520万标准箱，作业效率比传统码头提高了30%。"
)
SECOND = "据介绍，2019年以来，青岛港已累计投入约80亿元用于智慧港口建设。目前，码头共有工作人员约650名。"


def _example(question, context, answer, article=0):
    return Example(question, "test", article, question, context, [(answer, context.index(answer))] if answer else [])


def test_positive_holds_the_answer_and_the_negative_comes_from_the_same_article_without_it():
    examples = [
        _example("码头由哪家公司参与研发？", FIRST, "华为公司"),
        _example("码头有多少工作人员？", SECOND, "约650名"),
        _example("码头什么时候拆除？", SECOND, None),  # unanswerable: no pair
        _example("别的文章", "另一篇文章只有这一句话。", "这一句话", article=1),  # no other chunk: no negative
    ]
    triples = retrieval_triples(examples, size=40, overlap=0)
    assert sorted(q for q, _, _ in triples) == ["码头有多少工作人员？", "码头由哪家公司参与研发？"]
    for question, positive, negative in triples:
        answer = "华为公司" if "研发" in question else "约650名"
        assert answer in positive and answer not in negative
        assert len(positive) <= 40 and positive in FIRST + SECOND and negative in FIRST + SECOND
