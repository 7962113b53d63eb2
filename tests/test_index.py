"""The index on disk: build, add, remove, persist, rebuild when stale (real m3e-small embedder)."""

import json

import pytest

from retriever.documents import Document, bundled_documents
from retriever.index import CorpusIndex
from retriever.lexical import strip_question_words, tokenize

NEW_ARTICLE = Document(
    "robot_news",
    "青岛港启用无人集装箱码头",
    "青岛港启用无人集装箱码头\n\n本报讯 12月3日，青岛港第三座自动化集装箱码头正式投入运营。"
    "该码头由青岛港集团与华为公司联合研发，全年设计吞吐能力为520万标准箱。\n码头总经理张海涛表示，"
    "新码头的作业效率比传统码头提高了30%。",
)


@pytest.fixture()
def index(tmp_path, embedder):
    return CorpusIndex.open(tmp_path / "index", embedder, bundled_documents)


def test_build_writes_a_generation_with_manifest(index, embedder):
    root = index.root
    current = (root / "CURRENT").read_text()
    manifest = json.loads((root / current / "manifest.json").read_text())
    assert manifest["model"] == "m3e-small" and manifest["dim"] == embedder.dim == 512
    assert set(manifest["documents"]) == {d.id for d in bundled_documents()}
    assert len(index.state.store) == sum(len(m["chunk_ids"]) for m in manifest["documents"].values())


def test_dense_and_lexical_search_find_names_and_numbers(index):
    for query in ["量子计算云平台Quafu", "邓鸿森", "签约金额超过多少亿元"]:
        dense = [c.text for c, _ in index.search_dense(query, 5)]
        lexical = [c.text for c, _ in index.search_lexical(query, 5)]
        key = {"量子计算云平台Quafu": "Quafu", "邓鸿森": "邓鸿森", "签约金额超过多少亿元": "810亿元"}[query]
        assert any(key in t for t in lexical), query
        assert any(key in t for t in dense + lexical), query


def test_question_words_do_not_reach_the_bm25_query():
    # their bigrams (#什么, #么职) would match any article that asks a question
    query = tokenize(strip_question_words("邓鸿森担任什么职务？"))
    assert "邓鸿森" in query and "职务" in query
    assert not any("什" in t or "么" in t for t in query)
    # content that merely starts like a question word stays
    assert "几乎" in strip_question_words("几乎所有企业都参加了吗？")
    assert strip_question_words("论坛有多少家企业参加？").replace(" ", "") == "论坛有家企业参加"


def test_add_remove_persist_across_restart(tmp_path, index, embedder):
    before = len(index.state.store)
    added, skipped = index.add([NEW_ARTICLE])
    assert added == ["robot_news"] and skipped == []
    assert index.search_dense("青岛港自动化码头的吞吐能力", 1)[0][0].doc_id == "robot_news"
    # the same content under another name is not indexed twice
    assert index.add([Document("copy", "x", NEW_ARTICLE.text)]) == ([], ["copy"])

    reopened = CorpusIndex.open(index.root, embedder, lambda: [])
    assert "robot_news" in reopened.documents
    assert reopened.documents["robot_news"].text == NEW_ARTICLE.text  # original text kept for offsets
    assert reopened.remove(["robot_news"]) == ["robot_news"]
    assert len(reopened.state.store) == before

    again = CorpusIndex.open(index.root, embedder, lambda: [])
    assert "robot_news" not in again.documents
    assert set(again.documents) == {d.id for d in bundled_documents()}
    assert all(c.doc_id != "robot_news" for c, _ in again.search_lexical("青岛港 码头", 10))
    assert len(list(again.root.glob("gen-*"))) == 1  # older generations are cleaned up


def test_stale_index_is_rebuilt_when_chunking_changes(index, embedder):
    n_before = len(index.state.chunks)
    rebuilt = CorpusIndex.open(index.root, embedder, lambda: [], chunk_size=120, overlap=30)
    assert rebuilt.state.manifest.chunk_size == 120
    assert len(rebuilt.state.chunks) > n_before
    assert set(rebuilt.documents) == {d.id for d in bundled_documents()}  # rebuilt from the stored originals


def test_leftover_temporary_generation_is_ignored(index, embedder):
    junk = index.root / ".tmp-crashed"
    junk.mkdir()
    (junk / "manifest.json").write_text("{half")
    reopened = CorpusIndex.open(index.root, embedder, lambda: [])
    assert set(reopened.documents) == {d.id for d in bundled_documents()}
    reopened.add([NEW_ARTICLE])
    assert not junk.exists()
