"""Smoothing scales for a reader's int8 copy, measured on training windows and written beside its weights.

    python -m qa.training.int8_scales qa/weights/reader --data ../shared/data/reading-comprehension

The scales (retriever.smoothing) come from the largest activation of every input channel of every Linear layer
over 48 questions of the *train* split (fixed seed), so neither the held-back slices nor the dev questions decide
them; alpha 0.75 was chosen on a `valid` sample (docs/models.md). The ONNX int8 export applies them.

`auto` picks the smoothed int8 copy wherever scales ship (on a CPU with VNNI), so they are kept only when that copy
answers as fp32 does on at least AGREEMENT_BAR of the questions checked (`keep_if_agrees`, run by
qa.training.ship): the dev tune half end to end and a sample of `valid` questions read alone.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ALPHA = 0.75
QUESTIONS = 48
AGREEMENT_BAR = 0.98  # the share of fp32's answers a runtime must keep to be anyone's default (issue 23)


def calibration_batches(tokenizer, examples, max_length: int, stride: int, batch_size: int = 8):
    import numpy as np
    import torch

    from qa.reader import encode_windows

    windows = encode_windows(tokenizer, [e.question for e in examples], [e.context for e in examples], max_length,
                             stride)
    keys = ("input_ids", "attention_mask", "token_type_ids")
    for b in range(0, len(windows["input_ids"]), batch_size):
        yield {k: torch.from_numpy(np.asarray(windows[k][b : b + batch_size])) for k in keys}


def write_scales(reader_dir: Path, data: Path, alpha: float = ALPHA, questions: int = QUESTIONS,
                 seed: int = 7) -> Path:
    from qa.reader import Reader
    from qa.training.data import load_all
    from retriever.smoothing import input_maxima, save_scales, smoothing_scales

    reader = Reader.load(reader_dir, "torch")  # fp32, with the windows its qa_reader.json asks for
    train = list(load_all(data)["train"])
    random.Random(seed).shuffle(train)
    batches = calibration_batches(reader.tokenizer, train[:questions], reader.max_length, reader.stride)
    scales = smoothing_scales(reader.model, input_maxima(reader.model, batches), alpha)
    return save_scales(scales, reader_dir, {"alpha": str(alpha), "calibration": f"{questions} train-split questions "
                                            f"(seed {seed}) of {data.name}"})


def answers(reader, pipeline, tune: list[dict], examples) -> list[str | None]:
    """The reader's answers (None: refused) to the tune questions end to end and to the examples read alone."""
    from qa.training.train import best_spans

    pipeline.reader = reader
    out = [pipeline.ask(item["question"]).answer for item in tune]
    return out + [s.text if s is not None and s.margin >= reader.no_answer_threshold else None
                  for s in best_spans(reader, examples)]


def int8_agreement(reader_dir: Path, pipeline, tune: list[dict], examples, cache_root: Path) -> tuple[int, int]:
    """(answers the smoothed int8 copy gives as fp32 does, answers compared), each reader loaded from reader_dir
    with its qa_reader.json; the pipeline's own reader is put back afterwards."""
    from qa.reader import Reader

    own = pipeline.reader
    try:
        fp32 = answers(Reader.load(reader_dir, "torch", cache_root), pipeline, tune, examples)
        int8 = answers(Reader.load(reader_dir, "onnx-int8", cache_root), pipeline, tune, examples)
    finally:
        pipeline.reader = own
    return sum(a == b for a, b in zip(fp32, int8)), len(fp32)


def keep_if_agrees(reader_dir: Path, pipeline, tune: list[dict], examples, cache_root: Path,
                   bar: float = AGREEMENT_BAR, log=print) -> bool:
    """Drop the reader's smoothing scales unless its int8 copy keeps `bar` of fp32's answers; True when kept."""
    from retriever.smoothing import SCALES_FILE

    same, n = int8_agreement(reader_dir, pipeline, tune, examples, cache_root)
    kept = same >= bar * n
    if not kept:
        (Path(reader_dir) / SCALES_FILE).unlink(missing_ok=True)
    log(f"smoothed int8 answers as fp32 on {same} of {n} questions ({same / max(n, 1):.1%}, bar {bar:.0%}): "
        f"{'scales kept' if kept else 'no int8 scales ship'}")
    return kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="a reader folder (its weights stay as they are)")
    parser.add_argument("--data", type=Path, required=True, help="the reading-comprehension folder")
    parser.add_argument("--alpha", type=float, default=ALPHA)
    args = parser.parse_args(argv)
    print(f"wrote {write_scales(args.reader, args.data, args.alpha)}")


if __name__ == "__main__":
    main()
