"""Choose the fusion settings on the tune split, then report them on the report split.

    QA_HOME=... python -m benchmarks.fusion [--distractors]

Each question's dense and BM25 rankings are computed once (depth 100); every (lexical weight, dense weight,
rrf_k) on the grid is then fused offline. The grid point with the best tune recall@5 (then MRR) wins; the
report split is scored with that point only, next to each half alone, so the published figure is not tuned on.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

DEPTH = 100


def rankings(index, items):
    """[(gold keys, dense keys in order, bm25 keys in order)] per answerable question."""
    from qa.evaluate import _gold_rank

    out = []
    for item in items:
        dense = index.search_dense(item["question"], DEPTH)
        lexical = index.search_lexical(item["question"], DEPTH)
        keys = {}
        for chunk, _ in dense + lexical:
            keys[(chunk.doc_id, chunk.start)] = chunk
        golds = {key for key, chunk in keys.items() if _gold_rank([(chunk, 0.0)], item) == 1}
        out.append((golds, [(c.doc_id, c.start) for c, _ in dense], [(c.doc_id, c.start) for c, _ in lexical]))
    return out


def fuse(dense, lexical, dense_weight, lexical_weight, rrf_k):
    scores: dict = {}
    for weight, hits in ((dense_weight, dense), (lexical_weight, lexical)):
        for rank, key in enumerate(hits):
            scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank + 1)
    return sorted(scores, key=scores.get, reverse=True)


def score(ranked_lists, golds_list, ks=(1, 5, 20)) -> dict:
    ranks = []
    for ranked, golds in zip(ranked_lists, golds_list):
        ranks.append(next((i + 1 for i, key in enumerate(ranked) if key in golds), None))
    n = max(len(ranks), 1)
    out = {f"recall@{k}": round(sum(r is not None and r <= k for r in ranks) / n, 3) for k in ks}
    out["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
    return out


def evaluate(rows, dense_weight, lexical_weight, rrf_k) -> dict:
    golds = [g for g, _, _ in rows]
    return {
        "dense": score([d for _, d, _ in rows], golds),
        "bm25": score([b for _, _, b in rows], golds),
        "hybrid": score([fuse(d, b, dense_weight, lexical_weight, rrf_k) for _, d, b in rows], golds),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distractors", action="store_true", help="use the index with the inews articles")
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"))
    args = parser.parse_args(argv)

    from qa.evaluate import inews_documents, load_questions
    from qa.models import model_for, runtime_for
    from qa.settings import Settings
    from retriever.documents import bundled_documents
    from retriever.embedder import Embedder
    from retriever.index import CorpusIndex

    settings = Settings()
    folder = settings.home / "bench" / ("with-distractors" if args.distractors else "bundled")
    seed = (lambda: bundled_documents() + inews_documents()) if args.distractors else bundled_documents
    embedder = Embedder(model_for("embedder"), runtime_for("embedder"), settings.home)
    index = CorpusIndex.open(folder, embedder, seed, settings.chunk_size, settings.overlap)
    splits = {s: [q for q in load_questions(args.questions, s) if q["answers"]] for s in ("tune", "report")}
    rows = {s: rankings(index, items) for s, items in splits.items()}

    grid = []
    for lexical_weight, dense_weight, rrf_k in itertools.product((1.0, 1.5, 2.0, 3.0, 4.0), (1.0,), (1, 5, 10, 30, 60)):
        tune = evaluate(rows["tune"], dense_weight, lexical_weight, rrf_k)["hybrid"]
        grid.append(((tune["recall@5"], tune["mrr"]), lexical_weight, dense_weight, rrf_k, tune))
    grid.sort(key=lambda g: g[0], reverse=True)
    for key, lw, dw, k, tune in grid[:8]:
        print(f"lexical {lw} dense {dw} k {k}: tune {tune}")
    _, lw, dw, k, _ = grid[0]
    result = {"chosen": {"lexical_weight": lw, "dense_weight": dw, "rrf_k": k},
              "distractors": args.distractors, "documents": len(index.documents),
              "chunks": len(index.state.chunks)}
    for split in ("tune", "report"):
        result[split] = evaluate(rows[split], dw, lw, k)
        result[split]["questions"] = len(rows[split])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
