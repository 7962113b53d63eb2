"""The optional cross-encoder stage (models.txt `reranker`): wiring and ordering with a real small model.

No reranker weights ship (trained and measured, it cost end-to-end answers on the bundled articles; see README),
so these tests load m3e-small (4 layers) with a fresh one-logit head: they check what the stage does with any
scores, not how good the scores are."""

import dataclasses

import pytest
import torch

from qa.models import optional_model_for
from retriever.local_models import resolve_model_path
from retriever.rerank import Reranker


@pytest.fixture(scope="module")
def small_reranker():
    torch.manual_seed(0)  # the fresh head's weights
    return Reranker(resolve_model_path("m3e-small"))


def test_one_score_per_passage_in_any_batch_size(small_reranker):
    passages = ["中关村论坛于2007年诞生。", "Quafu平台有136个量子比特。", "北京的GDP增长了5%。"] * 3
    one_batch = small_reranker.scores("中关村论坛是哪一年诞生的？", passages)
    small_reranker.batch = 2
    try:
        many_batches = small_reranker.scores("中关村论坛是哪一年诞生的？", passages)
    finally:
        small_reranker.batch = 16
    assert len(one_batch) == len(passages)
    assert many_batches == pytest.approx(one_batch, abs=1e-4)  # padding does not change a passage's score
    assert one_batch[0] == pytest.approx(one_batch[3], abs=1e-4)  # the same passage, the same score


def test_only_the_head_is_reordered_and_scores_fall(pipeline, small_reranker):
    retriever = dataclasses.replace(pipeline.retriever, reranker=small_reranker, rerank_depth=4)
    question = "中关村论坛在哪里举办？"
    fused = [c for c, _ in retriever.retrieve(question, 12, "fused")]
    reranked = retriever.retrieve(question, 12)
    chunks = [c for c, _ in reranked]
    assert sorted(chunks[:4], key=fused.index) == fused[:4]  # the head: the same chunks, maybe reordered
    assert chunks[4:] == fused[4:]  # past the head the fused order stands
    scores = [s for _, s in reranked]
    assert scores == sorted(scores, reverse=True)


def test_the_cross_encoder_rank_moves_the_head(pipeline, small_reranker):
    question = "中关村论坛在哪里举办？"
    heavy = dataclasses.replace(pipeline.retriever, reranker=small_reranker, rerank_depth=6, rerank_weight=100.0)
    hits = heavy.retrieve(question, 6)
    logits = small_reranker.scores(question, [c.text for c, _ in hits])
    assert logits == sorted(logits, reverse=True)  # at a large weight the head follows the cross-encoder


def test_reranker_is_off_unless_models_txt_names_one(monkeypatch, pipeline):
    from qa.library import build_retriever

    monkeypatch.delenv("QA_RERANKER_MODEL", raising=False)
    assert optional_model_for("reranker") is None  # the shipped models.txt
    monkeypatch.setenv("QA_RERANKER_MODEL", "none")
    assert optional_model_for("reranker") is None
    plain = build_retriever(pipeline.index, pipeline.settings)
    assert plain.reranker is None
    assert plain.retrieve("中关村论坛是哪一年诞生的？", 3) == plain.retrieve("中关村论坛是哪一年诞生的？", 3, "fused")
    monkeypatch.setenv("QA_RERANKER_MODEL", "m3e-small")
    assert build_retriever(pipeline.index, pipeline.settings).reranker is not None


def test_retrieval_evaluation_reports_fused_and_reranked(pipeline, small_reranker):
    from qa.evaluate import evaluate_retrieval

    retriever = dataclasses.replace(pipeline.retriever, reranker=small_reranker)
    items = [{"question": "世界知识产权组织的总干事是谁？", "answers": ["邓鸿森"], "doc": None}]
    report = evaluate_retrieval(retriever, items, ks=(1, 20))
    assert set(report) >= {"dense", "bm25", "fused", "hybrid"}
    assert report["hybrid"]["recall@20"] == report["fused"]["recall@20"] == 1.0  # reordering loses nothing
