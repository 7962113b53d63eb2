"""Ship a trained reader: pick the no-answer threshold on the dev *tune* split, write fp16 weights.

    python -m qa.training.ship runs/reader-v1/best --out qa/weights/reader

The threshold and the answer-type slack (see qa.answer_shape.shape) are chosen end to end (retrieval + reader)
on the tune half of tests/data/dev_questions.jsonl, never on the report half: the highest answerable F1 +
no-answer accuracy with at most 5% of answerable questions refused. The sigmoid that turns a margin into a
[0, 1] confidence is fitted on the same half. All three are stored with the weights in qa_reader.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from retriever.local_models import replace_folder


def margins(pipeline, items: list[dict], type_slack: float = 0.0) -> list[tuple[dict, float, str | None]]:
    """(question, best span margin, span text) with refusals switched off."""
    pipeline.reader.no_answer_threshold = -1e9
    pipeline.reader.type_slack = type_slack
    out = []
    for item in items:
        answer = pipeline.ask(item["question"])
        out.append((item, answer.score, answer.answer))
    return out


def choose_threshold(scored, max_false_refusal: float = 0.05) -> tuple[float, dict]:
    from qa.metrics import char_f1

    answerable = [s for s in scored if s[0]["answers"]]
    unanswerable = [s for s in scored if not s[0]["answers"]]
    best = None
    # an answer of None with refusals switched off was refused by a check that is not the threshold
    for t in sorted({round(m, 2) for _, m, _ in scored} | {0.0}):
        refused_wrong = sum(m < t or a is None for _, m, a in answerable) / max(len(answerable), 1)
        if refused_wrong > max_false_refusal:
            continue
        f1 = sum(char_f1(a if m >= t else None, q["answers"]) for q, m, a in answerable) / max(len(answerable), 1)
        no_answer = sum(m < t or a is None for _, m, a in unanswerable) / max(len(unanswerable), 1)
        key = (f1 + no_answer, -abs(t))
        if best is None or key > best[0]:
            best = (key, t, {"f1": 100 * f1, "no_answer_accuracy": 100 * no_answer,
                             "false_refusals": 100 * refused_wrong})
    return best[1], best[2]


def fit_calibration(scored) -> tuple[float, float]:
    """Platt scaling: sigmoid(a * margin + b) = P(the best span is right), right meaning char-F1 >= 0.5 with
    an accepted answer (never, for an unanswerable question). Newton steps on a lightly L2-penalised log loss."""
    import numpy as np

    from qa.metrics import char_f1

    x = np.array([m for _, m, _ in scored], dtype=np.float64)
    y = np.array([bool(q["answers"]) and char_f1(a, q["answers"]) >= 0.5 for q, _, a in scored], dtype=np.float64)
    w = np.zeros(2)  # (a, b)
    design = np.stack([x, np.ones_like(x)], axis=1)
    penalty = np.diag([1e-2, 1e-4])
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (p - y) + penalty @ w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("qa/weights/reader"))
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--frozen-embeddings", default=None, metavar="BASE",
                        help="the checkpoint kept BASE's word embeddings frozen (multilingual-e5-small): leave them "
                             "and the tokenizer out of the shipped folder; they are put back from BASE's package")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.evaluate import load_questions
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    # fp16 first: the threshold is chosen on the weights that ship (a margin on the threshold can flip in fp16)
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.checkpoint), dtype=torch.float16)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(args.checkpoint)).save_pretrained(tmp)
    boundary = args.checkpoint / "boundary.safetensors"  # the character-level boundary head, when trained
    if boundary.exists():
        from safetensors.torch import load_file, save_file

        save_file({k: v.half() for k, v in load_file(str(boundary)).items()}, str(tmp / "boundary.safetensors"))

    settings = Settings()
    settings.home = Path(tempfile.mkdtemp(prefix="qa-ship-"))
    os.environ["QA_READER_MODEL"] = str(tmp.resolve())
    pipeline = QAPipeline(settings)
    pipeline.reader.max_length, pipeline.reader.stride = args.max_length, args.stride
    tune = load_questions(args.questions, "tune")
    choices = []
    for slack in (0.0, 1.0, 2.0, 4.0):
        threshold, figures = choose_threshold(margins(pipeline, tune, slack))
        print(f"type_slack {slack}: threshold {threshold:.2f} on the tune split: {figures}")
        choices.append((figures["f1"] + figures["no_answer_accuracy"], -slack, threshold, slack))
    _, _, threshold, slack = max(choices)
    calibration = fit_calibration(margins(pipeline, tune, slack))
    print(f"calibration: confidence = sigmoid({calibration[0]:.3f} * margin + {calibration[1]:.3f})")

    (tmp / "qa_reader.json").write_text(json.dumps(
        {"no_answer_threshold": threshold, "type_slack": slack, "calibration": calibration,
         "max_length": args.max_length, "stride": args.stride,
         "clause_spans": pipeline.reader.clause_spans}, indent=2))
    if args.frozen_embeddings:
        from qa.reader_folder import strip_frozen_embeddings

        strip_frozen_embeddings(tmp, args.frozen_embeddings)
    replace_folder(tmp, args.out)
    print(f"wrote {args.out} ({sum(p.stat().st_size for p in args.out.iterdir()) / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
