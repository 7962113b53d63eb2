"""Quantisation-aware fine-tuning: a reader taught to give its fp32 answers through ONNX Runtime's dynamic int8.

    python -m qa.training.qat qa/weights/reader --data ../shared/data/reading-comprehension --out runs/qat \
        --smooth --steps 150 --lr 1e-5 --logit-weight 1 --verifier-weight 1   # resumes from OUT/last.pt
    python -m qa.training.qat qa/weights/reader --data ... --out runs/qat --smooth --write runs/qat/student

Every Linear of the student computes as the int8 copy will (retriever.int8): weights rounded to int8 per output
channel, inputs to uint8 with one range per window (each window runs alone there), the rounding passed straight
through for the gradient. The student starts as the reader (smoothed first with --smooth) and is distilled from it,
frozen in fp32, on train-split windows (no labels needed): start/end logits, the last hidden states and what the
verifier reads off them. `--write` puts the student's int8 weights (INT8_FILE) beside a copy of the reader folder;
only the int8 export reads them. Reader v6 reached 123 of 131 dev answers as fp32 (docs/models.md): not shipped.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import time
from pathlib import Path

from retriever.int8 import INT8_FILE
from retriever.smoothing import SCALES_FILE, apply_smoothing, load_scales


class _Context:
    mask = None  # (windows, tokens) bool of the batch being run: activation ranges are taken per window


def int8_round(w):
    """(int8 values as floats, per-row scale) of ONNX Runtime's symmetric int8 per output channel: scale =
    max|w| / 127, values in [-127, 127]."""
    import torch

    scale = (w.detach().abs().amax(1, keepdim=True) / 127).clamp(min=1e-12)
    return torch.clamp(torch.round(w.detach() / scale), -127, 127), scale


def fake_int8_weight(w):
    """w as its int8 copy computes with it, the rounding passed straight through for the gradient."""
    q, scale = int8_round(w)
    return w + (q * scale - w).detach()


def fake_uint8_input(x, mask):
    """DynamicQuantizeLinear per window: range with 0 in it, scale = range / 255, zero point rounded, saturated."""
    import torch

    flat_mask = mask[:, :, None] if mask is not None else torch.ones_like(x[..., :1], dtype=torch.bool)
    d = x.detach()
    hi = d.masked_fill(~flat_mask, float("-inf")).amax((1, 2), keepdim=True).clamp(min=0)
    lo = d.masked_fill(~flat_mask, float("inf")).amin((1, 2), keepdim=True).clamp(max=0)
    scale = ((hi - lo) / 255).clamp(min=1e-12)
    zero = torch.clamp(torch.round(-lo / scale), 0, 255)
    q = torch.clamp(torch.round(d / scale) + zero, 0, 255)
    return x + ((q - zero) * scale - d)


def fake_quantise(model) -> int:
    """Every Linear of model computes through the int8 rounding (in place); returns how many."""
    import torch

    class FakeInt8Linear(torch.nn.Module):
        def __init__(self, linear):
            super().__init__()
            self.weight, self.bias = linear.weight, linear.bias

        def forward(self, x):
            return torch.nn.functional.linear(fake_uint8_input(x, _Context.mask), fake_int8_weight(self.weight),
                                              self.bias)

    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, FakeInt8Linear(linear))
    return len(targets)


def window_stream(tokenizer, examples, max_length: int, stride: int, seed: int):
    """Train-split windows, question and context, in a fixed shuffled order (the same order on every resume)."""
    import numpy as np

    from qa.reader import encode_windows

    order = list(examples)
    random.Random(seed).shuffle(order)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    for b in range(0, len(order), 64):
        part = order[b : b + 64]
        enc = encode_windows(tokenizer, [e.question for e in part], [e.context for e in part], max_length, stride)
        for w in range(len(enc["input_ids"])):
            n = int(np.asarray(enc["attention_mask"][w]).sum())
            yield {k: np.asarray(enc[k][w][:n]) for k in keys}


def collate(windows, torch):
    width = max(len(w["input_ids"]) for w in windows)
    out = {}
    for k, pad in (("input_ids", 1), ("attention_mask", 0), ("token_type_ids", 0)):
        t = torch.full((len(windows), width), pad, dtype=torch.long)
        for i, w in enumerate(windows):
            t[i, : len(w[k])] = torch.from_numpy(w[k])
        out[k] = t
    return out


def logit_pairs(student_out, teacher_out):
    return ((student_out.start_logits, teacher_out.start_logits), (student_out.end_logits, teacher_out.end_logits))


def distillation_loss(student_out, teacher_out, mask, weights: dict, verifier=None):
    """KL of the start and end distributions, squared logit differences, the last hidden states' relative squared
    difference and, with the reader's verifier (its weights as a (width, 3) tensor: [CLS], start and end parts),
    the squared difference of what it reads off each token, in log-odds: what decides answers and refusals."""
    import torch

    m = mask.float()
    loss = 0.0
    for s, t in logit_pairs(student_out, teacher_out):
        s = s.masked_fill(~mask, -1e4)
        t = t.masked_fill(~mask, -1e4)
        kl = torch.nn.functional.kl_div(s.log_softmax(-1), t.log_softmax(-1), log_target=True, reduction="batchmean")
        mse = (((s - t) ** 2) * m).sum() / m.sum()
        loss = loss + kl + weights["logits"] * mse
    hs, ht = student_out.hidden_states[-1], teacher_out.hidden_states[-1]
    hidden = ((((hs - ht) ** 2).mean(-1)) * m).sum() / m.sum() / ht.pow(2).mean().clamp(min=1e-6)
    loss = loss + weights["hidden"] * hidden
    if verifier is not None and weights["verifier"]:
        read = (((hs - ht) @ verifier) ** 2).sum(-1)
        loss = loss + weights["verifier"] * (read * m).sum() / m.sum()
    return loss


def top_agreement(student_out, teacher_out, mask) -> float:
    """Share of windows whose best start and best end token are the teacher's (a cheap proxy for same answers)."""
    same = 0
    for s, t in logit_pairs(student_out, teacher_out):
        same = same + (s.masked_fill(~mask, -1e4).argmax(-1) == t.masked_fill(~mask, -1e4).argmax(-1)).float()
    return float((same == 2).float().mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="the shipped reader folder (teacher and starting point)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--hidden-weight", type=float, default=1.0)
    parser.add_argument("--logit-weight", type=float, default=0.1)
    parser.add_argument("--verifier-weight", type=float, default=0.0,
                        help="weight of the verifier's readings (log-odds) in the loss")
    parser.add_argument("--save-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--limit-steps", type=int, default=0, help="stop after this many steps this run (timing)")
    parser.add_argument("--smooth", action="store_true",
                        help="smooth the student first (retriever.smoothing, scales from 48 train questions) and "
                             "ship the scales with it")
    parser.add_argument("--write", type=Path, help="write the student of OUT/last.pt to this folder, then stop")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering

    from qa.reader import Reader
    from qa.reader_folder import complete_folder
    from qa.settings import Settings
    from qa.training.data import load_all
    from qa.training.loop import open_log
    from retriever.local_models import quiet_transformers

    quiet_transformers()
    torch.manual_seed(args.seed)
    log = open_log(args.out)

    reader = Reader.load(args.reader, "torch", Settings().home)  # fp32: the teacher, its tokenizer and windows
    teacher = reader.model
    student = AutoModelForQuestionAnswering.from_pretrained(str(complete_folder(args.reader, Settings().home)),
                                                            dtype=torch.float32)  # the copy just assembled
    for p in teacher.parameters():
        p.requires_grad_(False)
    for p in student.bert.embeddings.parameters():  # the frozen table and the rest of the embedding block
        p.requires_grad_(False)
    examples = functools.cache(lambda: load_all(args.data)["train"])  # read only to train or calibrate
    scales_file = args.out / SCALES_FILE
    if args.smooth:  # the outlier channels moved into the weights first: int8 starts closer to fp32
        if not scales_file.exists():
            from qa.training.int8_scales import ALPHA, QUESTIONS, calibration_batches
            from retriever.smoothing import input_maxima, save_scales, smoothing_scales

            calibration = list(examples())
            random.Random(7).shuffle(calibration)
            batches = calibration_batches(reader.tokenizer, calibration[:QUESTIONS], reader.max_length, reader.stride)
            save_scales(smoothing_scales(teacher, input_maxima(teacher, batches), ALPHA), args.out,
                        {"alpha": str(ALPHA), "calibration": f"{QUESTIONS} train-split questions (seed 7)"})
        apply_smoothing(student, load_scales(args.out))
    n = fake_quantise(student)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / args.steps))
    step, consumed = 0, 0
    last = args.out / "last.pt"
    if last.exists():
        state = torch.load(last, weights_only=False)
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, consumed = state["step"], state["consumed"]
        torch.set_rng_state(state["rng"])
        log(f"resumed at step {step} ({consumed} windows read)")
    else:
        log(f"start: {n} Linear layers through int8, lr {args.lr}, batch {args.batch}, {args.steps} steps")

    if args.write:
        write_student(student, args.reader, args.write, scales_file if args.smooth else None)
        log(f"step {step} written to {args.write}")
        return
    weights = {"logits": args.logit_weight, "hidden": args.hidden_weight, "verifier": args.verifier_weight}
    verifier = None
    if reader.verifier is not None:
        width = student.config.hidden_size
        verifier = torch.from_numpy(reader.verifier.weight[: 3 * width].reshape(3, width).T.copy())
    stream = window_stream(reader.tokenizer, examples(), reader.max_length, reader.stride, args.seed)
    for _ in range(consumed):
        next(stream)
    student.eval()  # no dropout: the student must match the teacher as it will run, not a noisy copy of it
    t0, ran, agree = time.time(), 0, []
    while step < args.steps and not (args.limit_steps and ran >= args.limit_steps):
        batch = collate([next(stream) for _ in range(args.batch)], torch)
        consumed += args.batch
        mask = batch["attention_mask"].bool()
        with torch.inference_mode():
            t_out = teacher(**batch, output_hidden_states=True)
        t_out = type(t_out)(start_logits=t_out.start_logits.clone(), end_logits=t_out.end_logits.clone(),
                            hidden_states=(t_out.hidden_states[-1].clone(),))
        _Context.mask = mask
        s_out = student(**batch, output_hidden_states=True)
        loss = distillation_loss(s_out, t_out, mask, weights, verifier)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        ran += 1
        agree.append(top_agreement(s_out, t_out, mask))
        if step % 5 == 0:
            log(f"step {step} loss {loss.item():.4f} top-agree(last 5) {sum(agree[-5:]) / len(agree[-5:]):.3f} "
                f"{(time.time() - t0) / ran:.1f} s/step")
        if step % args.save_every == 0 or step == args.steps:
            tmp = last.with_suffix(".tmp")
            torch.save({"student": student.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step, "consumed": consumed,
                        "rng": torch.get_rng_state()}, tmp)
            tmp.replace(last)
    _Context.mask = None
    if step >= args.steps:
        write_student(student, args.reader, args.out / "student", scales_file if args.smooth else None)
        log(f"done: {args.out / 'student'}")


def write_student(student, shipped: Path, out: Path, scales: Path | None = None) -> None:
    """A copy of the shipped reader folder with the student's int8 weights beside its own (INT8_FILE): each
    Linear's int8 values and per-channel scales, exactly what the int8 export will compute with, and the other
    weights the student changed (biases, layer norms) in fp32. The fp32 / bf16 runtimes never read them."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, p in student.named_parameters():
        if not p.requires_grad:
            continue  # frozen: the same as the shipped weights
        w = p.detach().float()
        if w.dim() == 2:  # the trainable matrices are the Linear weights (the embedding tables are frozen)
            q, scale = int8_round(w)
            tensors[f"{name}.int8"], tensors[f"{name}.scale"] = q.to(torch.int8), scale[:, 0]
        else:
            tensors[name] = w
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(shipped, tmp)
    if scales is not None:  # the smoothing the int8 weights were trained with
        shutil.copyfile(scales, tmp / SCALES_FILE)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / INT8_FILE),
              metadata={"trained": "qa.training.qat: distilled from this folder's fp32 reader through int8 rounding"})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


if __name__ == "__main__":
    main()
