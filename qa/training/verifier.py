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

from qa.verifier import EVIDENCE, Verifier

PENALTIES = (1.0, 10.0, 100.0, 1000.0, 10000.0)  # L2 strengths tried (on standardised features)
N_BEST = 5


TARGETS = ("right", "f1")


def collect(reader, examples, n_best: int = N_BEST,
            passages: list[list[str] | None] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of verifier features, their char-F1 with the gold answers and the index of the question they came from.
    passages: per example, the passages to read instead of its own context (retrieved_passages; None: its own)."""
    from qa.metrics import char_f1

    reader.keep_features, verifier, reader.verifier = True, reader.verifier, None
    rows, labels, owner = [], [], []
    try:
        for i, ex in enumerate(examples):
            golds = [a[0] for a in ex.answers]
            texts = (passages[i] if passages is not None else None) or [ex.context]
            for span in reader.read(ex.question, texts, n_best=n_best):
                rows.append(span.features)
                labels.append(char_f1(span.text, golds) if golds else 0.0)
                owner.append(i)
    finally:
        reader.keep_features, reader.verifier = False, verifier
    return np.stack(rows), np.array(labels, dtype=np.float64), np.array(owner)


PASSAGES = ("own", "retrieved", "both")  # both: every question read each way, the rows pooled


def retrieved_passages(examples, haystack, top_k: int = 3) -> list[list[str] | None]:
    """Per example, the top_k chunks BM25 ranks for its question among the chunks of its set's paragraphs in the
    haystack (and of the synthetic examples' own passages): the right passage with the look-alikes retrieval brings
    beside it, as the product reads them, so the verifier learns to put a look-alike's span below the right one's.
    None (read its own passage) for a synthetic unanswerable twin, whose article's answerable copy is in the
    haystack, and where fewer than top_k chunks come back."""
    from qa.training.early_stop import passage_lists
    from retriever.text import to_simplified

    synthetic = [ex for ex in examples if ex.source == "inews-synthetic" and ex.answerable]
    asked = [ex for ex in examples if ex.source != "inews-synthetic" or ex.answerable]
    found = {id(ex): [to_simplified(p) for p in chunks]
             for ex, chunks in passage_lists(asked, list(haystack) + synthetic, top_k)}
    return [found.get(id(ex)) for ex in examples]


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


def fit(reader, examples, log=print, rows: Path | None = None, target: str = "f1",
        reads_evidence: bool = False, passages: str = "own", data: Path | None = None) -> tuple[Verifier, dict]:
    """The verifier for this reader, with the L2 penalty that gives the lowest log loss on a held-out tenth of the
    questions (split by article: a set's article number with its source). rows: a file keeping the collected rows
    (read instead of reading the questions again when it exists). target: "right" (F1 >= 0.5) or "f1" (soft).
    reads_evidence: the verifier also reads each span's lexical evidence (qa.verifier.evidence). passages: what
    each question is read over (PASSAGES): its own passage, the chunks retrieval brings from the train split of
    every set in `data` (retrieved_passages), or both, the rows pooled."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    if passages not in PASSAGES:
        raise ValueError(f"passages must be one of {PASSAGES}, not {passages!r}")
    t0 = time.time()
    if rows is not None and rows.exists():
        held = np.load(rows)
        x, y, owner = held["x"], held["y"], held["owner"]
        has_evidence = bool(held["evidence"]) if "evidence" in held else False
    else:
        if passages == "own":
            x, y, owner = collect(reader, examples)
        else:  # the retrieval is built only when the rows are read, not when they are reused
            from qa.training.data import load_all

            lists = retrieved_passages(examples, load_all(data)["train"])
            x, y, owner = collect(reader, examples, passages=lists)
            if passages == "both":
                x, y, owner = (np.concatenate(pair) for pair in zip((x, y, owner), collect(reader, examples)))
        has_evidence = True  # collect keeps every span's evidence
        if rows is not None:
            np.savez(rows, x=x, y=y, owner=owner, evidence=True)
    if reads_evidence and not has_evidence:
        raise ValueError(f"{rows}: these rows were collected without the evidence features")
    if has_evidence and not reads_evidence:
        x = x[:, :-EVIDENCE]
    margin = x.shape[1] - 1 - (EVIDENCE if reads_evidence else 0)  # the margin's column
    y = (y >= 0.5).astype(np.float64) if target == "right" else y
    log(f"{len(x)} spans from {len(examples)} questions (mean target {y.mean():.3f}, {target}) in {time.time() - t0:.0f} s")
    held = np.array([zlib.crc32(f"{ex.source}:{ex.article}".encode()) % 10 == 0 for ex in examples])[owner]
    col = slice(margin, margin + 1)
    baseline = fit_logistic(x[~held][:, col], y[~held], 0.0)  # the margin alone: what the verifier must beat
    figures = {"margin only": log_loss(*baseline, x[held][:, col], y[held])}
    best = None
    for penalty in PENALTIES:
        weight, bias = fit_logistic(x[~held], y[~held], penalty)
        figures[penalty] = loss = log_loss(weight, bias, x[held], y[held])
        if best is None or loss < best[0]:
            best = (loss, penalty)
    log("held-out log loss: " + ", ".join(f"{k}: {v:.4f}" for k, v in figures.items()) + f"; penalty {best[1]}")
    weight, bias = fit_logistic(x, y, best[1])
    return Verifier(weight.astype(np.float32), bias, reads_evidence), {"penalty": best[1], **{str(k): v for k, v in figures.items()}}


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
    parser.add_argument("--passages", choices=PASSAGES, default="own",
                        help="own: each question over its own passage; retrieved: over the top 3 BM25 chunks of its "
                             "set's train paragraphs (the right one and look-alikes, as the product reads); both")
    parser.add_argument("--evidence", action="store_true",
                        help="the verifier also reads each span's lexical evidence (qa.verifier.evidence)")
    args = parser.parse_args(argv)

    from qa.reader import Reader
    from qa.settings import Settings

    reader = Reader.load(args.reader, args.runtime, Settings().home, verifier=None)
    examples = questions(args.data, args.questions, args.synthetic, args.seed)
    random.Random(0).shuffle(examples)
    verifier, _ = fit(reader, examples, rows=args.rows, target=args.target, reads_evidence=args.evidence,
                      passages=args.passages, data=args.data)
    verifier.save(args.reader)
    print(f"wrote {args.reader / 'verifier.safetensors'}")


if __name__ == "__main__":
    main()
