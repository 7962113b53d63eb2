"""Smoothing scales for a reader's int8 copy, measured on training windows and written beside its weights.

    python -m qa.training.int8_scales qa/weights/reader --data ../shared/data/reading-comprehension

The scales (retriever.smoothing) come from the largest activation of every input channel of every Linear layer
over 48 questions of the *train* split (fixed seed), so neither the held-back slices nor the dev questions decide
them; alpha 0.75 was chosen on a `valid` sample (docs/models.md). The ONNX int8 export applies them.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ALPHA = 0.75
QUESTIONS = 48


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="a reader folder (its weights stay as they are)")
    parser.add_argument("--data", type=Path, required=True, help="the reading-comprehension folder")
    parser.add_argument("--alpha", type=float, default=ALPHA)
    args = parser.parse_args(argv)
    print(f"wrote {write_scales(args.reader, args.data, args.alpha)}")


if __name__ == "__main__":
    main()
