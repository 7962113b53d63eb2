"""Retrieval's article stage: BM25 again among the chunks of the articles fusion puts first, with those chunks'
own word statistics (real m3e-small, real bm25s).

Among many news articles a name the bundled articles repeat in every paragraph (中关村论坛) is rare, so BM25
ranks by it; the paragraph that answers "今年中关村论坛围绕的主题是什么？" never repeats the name, and its own
words (围绕, 主题) are common in news. Within the two articles the name weighs little and those words decide."""

import dataclasses
import random

import pytest

from retriever.documents import Document, bundled_documents
from retriever.hybrid import HybridRetriever
from retriever.index import CorpusIndex
from tests.conftest import DOC_000, DOC_002

QUESTION = "今年中关村论坛围绕的主题是什么？"
ANSWER = "开放合作·共享未来"


def notices(n: int) -> list[Document]:
    """Short news items that use 围绕…主题 the way news does, none about 中关村."""
    rng = random.Random(0)
    cities = ["杭州", "成都", "武汉", "西安", "南京", "青岛", "长沙", "厦门", "合肥", "昆明"]
    events = ["读书节", "文化周", "科普月", "志愿服务活动", "创业大赛", "青年论坛", "美食节", "运动会"]
    themes = ["绿色发展", "书香满城", "科技惠民", "青春建功", "乡村振兴", "健康生活", "数字未来", "文明出行"]
    docs = []
    for i in range(n):
        city, event, theme = rng.choice(cities), rng.choice(events), rng.choice(themes)
        text = (f"{city}举办{event}\n\n本报讯 {city}市日前举办{event}。活动围绕“{theme}”主题，"
                f"设置展览、讲座和互动体验等环节，吸引了{rng.randint(200, 5000)}名市民参加。")
        docs.append(Document(f"notice_{i:03d}", f"{city}举办{event}", text))
    return docs


@pytest.fixture(scope="module")
def crowded(tmp_path_factory, embedder):
    documents = bundled_documents() + notices(80)
    return CorpusIndex.open(tmp_path_factory.mktemp("crowded") / "index", embedder, lambda: documents)


def holds_answer(hits) -> bool:
    return any(ANSWER in chunk.text for chunk, _ in hits)


def test_within_the_articles_their_own_statistics_find_the_passage(crowded):
    assert not holds_answer(crowded.search_lexical(QUESTION, 5))  # the whole index: the name decides
    within = crowded.search_lexical_within(QUESTION, [DOC_000, DOC_002], 5)
    assert ANSWER in within[0][0].text
    assert {chunk.doc_id for chunk, _ in within} <= {DOC_000, DOC_002}
    assert crowded.search_lexical_within(QUESTION, ["no_such_article"], 5) == []


def test_fused_retrieval_reaches_the_passage_through_the_article_stage(crowded):
    retriever = HybridRetriever(crowded, lexical_weight=3.0, rrf_k=1, article_depth=2, article_weight=3.0)
    without = dataclasses.replace(retriever, article_weight=0.0)
    assert holds_answer(retriever.retrieve(QUESTION, 3, "fused"))
    assert not holds_answer(without.retrieve(QUESTION, 5, "fused"))


def test_the_stage_is_skipped_when_the_first_articles_are_the_whole_index(pipeline):
    # over the two bundled articles the ranking among them is the BM25 half itself: fusing it in again would
    # only double BM25's weight
    on = pipeline.retriever
    off = dataclasses.replace(on, article_weight=0.0)
    for question in (QUESTION, "邓鸿森担任什么职务？", "Quafu有多少个量子比特？"):
        assert [(c.doc_id, c.start, s) for c, s in on.retrieve(question, 10, "fused")] == \
               [(c.doc_id, c.start, s) for c, s in off.retrieve(question, 10, "fused")]


def test_building_a_small_bm25_index_per_question_logs_nothing(caplog):
    # bm25s sets its own logger to DEBUG; under a server's logging set-up each question would print a line
    import logging

    from retriever.lexical import LexicalIndex

    caplog.set_level(logging.DEBUG)
    LexicalIndex.build({1: ["中关村", "论坛"], 2: ["主题"]}).search("论坛的主题", 2)
    assert not [r for r in caplog.records if r.name.startswith("bm25s") and r.levelno < logging.WARNING]
