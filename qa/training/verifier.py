"""Fit a reader's answer verifier (qa.verifier) on its own spans over train-split questions, and store it.

    python -m qa.training.verifier READER_FOLDER --data ../shared/data/reading-comprehension [--questions 3000]

The reader reads each question's own passage with refusals off; each of its n-best spans becomes a row (the
[CLS], start and end hidden states and the margin) with its char-F1 against the gold answers (0 for an unanswerable
question). The target is the F1 itself as a soft label (--target f1, the default since reader v6.1), so among nested
spans that all overlap the answer the one nearest it scores highest, or "right" (F1 at least 0.5, as ship's
calibration counts right; reader v6's verifier). A logistic regression with an L2
penalty, chosen on a held-out tenth of the questions (by article), gives the head. Only the `train` slices and
fresh synthetic news questions (with their unanswerable twins) are read; `valid` and `report` stay untouched, so
ship can choose the threshold and report figures after it.
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from pathlib import Path

import numpy as np

from qa.verifier import Verifier

PENALTIES = (1.0, 10.0, 100.0, 1000.0, 10000.0)  # L2 strengths tried (on standardised features)
N_BEST = 5


TARGETS = ("right", "f1")


def collect(reader, examples, n_best: int = N_BEST) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of verifier features, their char-F1 with the gold answers and the index of the question they came from."""
    from qa.metrics import char_f1

    reader.keep_features, verifier, reader.verifier = True, reader.verifier, None
    rows, labels, owner = [], [], []
    try:
        for i, ex in enumerate(examples):
            golds = [a[0] for a in ex.answers]
            for span in reader.read(ex.question, [ex.context], n_best=n_best):
                rows.append(span.features)
                labels.append(char_f1(span.text, golds) if golds else 0.0)
                owner.append(i)
    finally:
        reader.keep_features, reader.verifier = False, verifier
    return np.stack(rows), np.array(labels, dtype=np.float64), np.array(owner)


def newton_logistic(design: np.ndarray, y: np.ndarray, penalty: np.ndarray, iterations: int, tolerance: float,
                    jitter: float = 0.0) -> np.ndarray:
    """Weights w minimising the summed log loss of sigmoid(design @ w) + 1/2 * sum(penalty * w^2), by Newton steps
    (jitter only steadies the Hessian). Shared with ship's calibration."""
    w = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (p - y) + penalty * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + jitter)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < tolerance:
            break
    return w


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float, iterations: int = 30) -> tuple[np.ndarray, float]:
    """Logistic regression with an L2 penalty (bias unpenalised) over standardised x; the weights returned apply
    to raw x."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
    reg = np.full(z.shape[1], penalty)
    reg[-1] = 0.0
    w = newton_logistic(z, y, reg, iterations, 1e-6, jitter=1e-6)
    weight = w[:-1] / std
    return weight, float(w[-1] - weight @ mean)


def log_loss(weight: np.ndarray, bias: float, x: np.ndarray, y: np.ndarray) -> float:
    logits = np.clip(x @ weight + bias, -30, 30)
    return float(np.mean(np.logaddexp(0, logits) - y * logits))


def questions(data: Path, n: int, synthetic: int, seed: int) -> list:
    """n train-split questions (the split's fixed shuffle mixes every set) and `synthetic` fresh news questions."""
    from qa.training.data import load_all

    chosen = load_all(data)["train"][:n]
    if synthetic:
        from qa.training.synthetic import generate, inews_articles

        chosen += generate(inews_articles(), synthetic, seed=seed, per_article=5, unanswerable=0.5,
                           without_sentence=0.5)
    return chosen


def fit(reader, examples, log=print, rows: Path | None = None, target: str = "f1") -> tuple[Verifier, dict]:
    """The verifier for this reader, with the L2 penalty that gives the lowest log loss on a held-out tenth of the
    questions (split by article: a set's article number with its source). rows: a file keeping the collected rows
    (read instead of reading the questions again when it exists). target: "right" (F1 >= 0.5) or "f1" (soft)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    t0 = time.time()
    if rows is not None and rows.exists():
        held = np.load(rows)
        x, y, owner = held["x"], held["y"], held["owner"]
    else:
        x, y, owner = collect(reader, examples)
        if rows is not None:
            np.savez(rows, x=x, y=y, owner=owner)
    y = (y >= 0.5).astype(np.float64) if target == "right" else y
    log(f"{len(x)} spans from {len(examples)} questions (mean target {y.mean():.3f}, {target}) in {time.time() - t0:.0f} s")
    held = np.array([zlib.crc32(f"{ex.source}:{ex.article}".encode()) % 10 == 0 for ex in examples])[owner]
    baseline = fit_logistic(x[~held][:, -1:], y[~held], 0.0)  # the margin alone: what the verifier must beat
    figures = {"margin only": log_loss(*baseline, x[held][:, -1:], y[held])}
    best = None
    for penalty in PENALTIES:
        weight, bias = fit_logistic(x[~held], y[~held], penalty)
        figures[penalty] = loss = log_loss(weight, bias, x[held], y[held])
        if best is None or loss < best[0]:
            best = (loss, penalty)
    log("held-out log loss: " + ", ".join(f"{k}: {v:.4f}" for k, v in figures.items()) + f"; penalty {best[1]}")
    weight, bias = fit_logistic(x, y, best[1])
    return Verifier(weight.astype(np.float32), bias), {"penalty": best[1], **{str(k): v for k, v in figures.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="a reader folder: verifier.safetensors is written into it")
    parser.add_argument("--data", type=Path, required=True, help="the reading-comprehension folder")
    parser.add_argument("--questions", type=int, default=3000, help="train-split questions to read")
    parser.add_argument("--synthetic", type=int, default=1000, help="fresh synthetic news questions to read too")
    parser.add_argument("--seed", type=int, default=11, help="the synthetic questions' seed (training used 0-6)")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--rows", type=Path, help="keep the collected rows in this .npz (and reuse them)")
    parser.add_argument("--target", choices=TARGETS, default="f1", help="f1: F1 as a soft label; right: F1 >= 0.5")
    args = parser.parse_args(argv)

    from qa.reader import Reader
    from qa.settings import Settings

    reader = Reader.load(args.reader, args.runtime, Settings().home, verifier=None)
    examples = questions(args.data, args.questions, args.synthetic, args.seed)
    random.Random(0).shuffle(examples)
    verifier, _ = fit(reader, examples, rows=args.rows, target=args.target)
    verifier.save(args.reader)
    print(f"wrote {args.reader / 'verifier.safetensors'}")


if __name__ == "__main__":
    main()
