"""Choose the fusion settings on the tune split, then report them on the report split.

    QA_HOME=... python -m benchmarks.fusion [--distractors]

Each question's dense and BM25 rankings are computed once (as deep as the retriever looks); every point of the
grid (lexical weight, rrf_k, article depth, article weight) is then fused offline by the retriever's own
HybridRetriever.fuse (the article stage's BM25 among the first articles runs for each point). The grid
point with the best tune recall@5 (then MRR) wins; the report split is scored with that point only, next to
each half alone, so the published figure is not tuned on.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

from retriever.hybrid import HybridRetriever

DEPTH = HybridRetriever.candidates
POINT = ("lexical_weight", "rrf_k", "article_depth", "article_weight")


class Rankings:
    """One question's dense and BM25 rankings, computed once; fused at any point of the grid by the retriever's
    own HybridRetriever.fuse."""

    def __init__(self, index, item):
        self.index, self.item = index, item
        self.dense = index.search_dense(item["question"], DEPTH)
        self.bm25 = index.search_lexical(item["question"], DEPTH)

    def retriever(self, point: tuple) -> HybridRetriever:
        return HybridRetriever(self.index, **dict(zip(POINT, point)))

    def fused(self, point: tuple) -> list:
        return self.retriever(point).fuse(self.item["question"], self.dense, self.bm25, DEPTH, self.index.state)

    def within_articles(self, point: tuple) -> list:
        """The article stage's own ranking at this point (run even where its weight is 0); where the first
        articles are the whole index it is the BM25 half's."""
        retriever = dataclasses.replace(self.retriever(point), article_weight=1.0)
        rankings = retriever.rankings(self.item["question"], self.dense, self.bm25, DEPTH, self.index.state)
        return [(chunk, 0.0) for chunk in rankings[-1][1]]


def score(rows: list[Rankings], ranked_lists, ks=(1, 5, 20)) -> dict:
    """recall@k and MRR within the first max(ks), as `qa eval --retrieval` counts them."""
    from qa.evaluate import _gold_rank

    ranks = [_gold_rank(ranked[: max(ks)], r.item) for r, ranked in zip(rows, ranked_lists)]
    n = max(len(ranks), 1)
    out = {f"recall@{k}": round(sum(r is not None and r <= k for r in ranks) / n, 3) for k in ks}
    out["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
    return out


def evaluate(rows: list[Rankings], point: tuple) -> dict:
    return {"dense": score(rows, [r.dense for r in rows]), "bm25": score(rows, [r.bm25 for r in rows]),
            "bm25 within articles": score(rows, [r.within_articles(point) for r in rows]),
            "fused": score(rows, [r.fused(point) for r in rows])}


GRID = list(itertools.product((1.0, 2.0, 3.0, 4.0), (1, 5, 30, 60), (1, 2, 3), (0.0, 1.0, 2.0, 3.0)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distractors", action="store_true", help="use the index with the inews articles")
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"))
    parser.add_argument("--grid-out", type=Path, help="write every grid point's tune figures here (JSON)")
    args = parser.parse_args(argv)

    from qa.evaluate import bench_index, load_questions
    from qa.settings import Settings

    index = bench_index(Settings(), args.distractors)[0]  # the same index as `qa eval --retrieval [--distractors]`
    splits = {s: [q for q in load_questions(args.questions, s) if q["answers"]] for s in ("tune", "report")}
    rows = {s: [Rankings(index, item) for item in items] for s, items in splits.items()}

    grid = []
    for point in GRID:
        tune = score(rows["tune"], [r.fused(point) for r in rows["tune"]])
        grid.append(((tune["recall@5"], tune["mrr"]), point, tune))
    if args.grid_out:
        args.grid_out.write_text(json.dumps([[list(point), tune] for _, point, tune in grid]))
    grid.sort(key=lambda g: g[0], reverse=True)  # stable: the first of equals on the grid wins
    for _, (lw, k, depth, weight), tune in grid[:8]:
        print(f"lexical {lw} k {k} article depth {depth} weight {weight}: tune {tune}")
    point = grid[0][1]
    result = {"chosen": dict(zip(POINT, point)),
              "distractors": args.distractors, "documents": len(index.documents),
              "chunks": len(index.state.chunks)}
    for split in ("tune", "report"):
        result[split] = evaluate(rows[split], point)
        result[split]["questions"] = len(rows[split])
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
