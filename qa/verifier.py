"""The answer verifier: a span's [CLS], start and end hidden states and its margin -> the log-odds of its F1.

A window's [CLS] span logits are a weak "no answer" signal on their own (a reader refuses half its answerable
questions before it refuses most unanswerable ones); a logistic head over the last hidden states, fitted after
training on the model's own spans (qa.training.verifier), separates them better. Fitted on each span's F1 as a
soft label (reader v6.1; v6's was fitted on "F1 >= 0.5"), it also ranks the nearest of nested spans first and
compares spans across passages on one scale. Its output replaces the margin, so thresholds, calibration and the
early stop read it as they read a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "verifier.safetensors"


def span_features(hidden: np.ndarray, start: int, end: int, margin: float) -> np.ndarray:
    """One window's last hidden states (tokens x width), a span's start and end tokens and its margin -> features."""
    return np.concatenate([hidden[0], hidden[start], hidden[end], [margin]]).astype(np.float32)


@dataclass
class Verifier:
    weight: np.ndarray  # (3 * width + 1,): standardisation folded in
    bias: float

    def __call__(self, features: np.ndarray) -> float:
        return float(features @ self.weight + self.bias)

    @classmethod
    def load(cls, folder: Path) -> "Verifier | None":
        path = Path(folder) / FILE
        if not path.exists():
            return None
        from safetensors.numpy import load_file

        weights = load_file(str(path))
        return cls(weights["weight"].astype(np.float32), float(weights["bias"][0]))

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"weight": self.weight.astype(np.float32), "bias": np.array([self.bias], np.float32)},
                  str(Path(folder) / FILE))
