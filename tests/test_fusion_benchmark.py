"""`python -m benchmarks.fusion` chooses fusion settings offline by repeating the retriever's steps; its figures
must be the ones the retriever itself gives at the chosen point (real m3e-small, the bundled articles)."""

import json

from tests.conftest import ROOT


def test_offline_fusion_matches_the_retriever(tmp_path, monkeypatch, capsys, embedder):
    from benchmarks import fusion
    from qa.evaluate import evaluate_retrieval, load_questions
    from qa.settings import Settings
    from retriever.documents import bundled_documents
    from retriever.hybrid import HybridRetriever
    from retriever.index import CorpusIndex

    dev = load_questions(ROOT / "tests" / "data" / "dev_questions.jsonl")
    picked = [q for q in dev if q["answers"] and q["split"] == "tune"][:12] + \
             [q for q in dev if q["answers"] and q["split"] == "report"][:12]
    questions = tmp_path / "dev.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in picked), encoding="utf-8")
    monkeypatch.setenv("QA_HOME", str(tmp_path / "home"))

    fusion.main(["--questions", str(questions)])
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{\n"):])
    assert set(result["chosen"]) == {"lexical_weight", "rrf_k", "article_depth", "article_weight"}
    assert set(result["report"]) == {"dense", "bm25", "bm25 within articles", "fused", "questions"}

    index = CorpusIndex.open(Settings().home / "bench" / "bundled", embedder, bundled_documents)
    chosen = tuple(result["chosen"][name] for name in ("lexical_weight", "rrf_k", "article_depth", "article_weight"))
    # the chosen point, and one where the article stage runs (one article of the two)
    for point in (chosen, (3.0, 1, 1, 3.0)):
        retriever = HybridRetriever(index, lexical_weight=point[0], rrf_k=point[1], article_depth=point[2],
                                    article_weight=point[3])
        for split in ("tune", "report"):
            items = [q for q in picked if q["split"] == split]
            offline = fusion.evaluate([fusion.Rankings(index, item) for item in items], point)
            direct = evaluate_retrieval(retriever, items, modes=("dense", "bm25", "fused"))
            for mode in ("dense", "bm25", "fused"):
                for figure in ("recall@1", "recall@5", "mrr"):
                    assert round(direct[mode][figure], 3) == offline[mode][figure], (point, split, mode, figure)
            if point == chosen:
                assert offline == {k: v for k, v in result[split].items() if k != "questions"}
