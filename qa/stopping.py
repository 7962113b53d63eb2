"""Whether the first passage's answer is final: a logistic model over its spans and the passages' question words.

The reader reads the best-ranked passage alone first (qa.reader.read_in_turn). Reading the other two changes that
answer for about one question in five; this model tells which ones from what is known after the first read: its
best margins and how many of the question's character bigrams each passage holds (the others are look-alikes
when they hold fewer). It stops only where the first passage has an answer over the no-answer threshold, so a
refusal never comes from stopping. Fitted and its cutoff chosen on valid slices by qa.training.early_stop
(`--learned`); stored in the checkpoint's qa_reader.json as `stop_model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FEATURES = ("margin", "lead over the second span", "bigrams ahead of the best other passage",
            "bigrams ahead of the worst other passage", "share of the question's bigrams held",
            "share held by the best other passage", "answered")
NO_SPAN = -20.0  # a margin no reader gives: the passage has no span at all


def stop_features(spans: list, overlap: list[int], asked: int, threshold: float) -> np.ndarray:
    """The model's inputs after the first passage is read: spans (its n-best, best first), overlap (question
    bigrams held by each passage, the first one first), asked (the question's own bigrams)."""
    first = spans[0].margin if spans else NO_SPAN
    second = spans[1].margin if len(spans) > 1 else NO_SPAN
    others = overlap[1:] or [0]
    asked = max(asked, 1)
    return np.array([first, min(first - second, 10.0), overlap[0] - max(others), overlap[0] - min(others),
                     overlap[0] / asked, max(others) / asked, float(first >= threshold)], dtype=np.float64)


@dataclass(frozen=True)
class StopModel:
    """P(reading the other passages changes the answer) = sigmoid(weights . features + bias); stop under cutoff."""

    weights: tuple[float, ...]
    bias: float
    cutoff: float

    @classmethod
    def from_config(cls, stored: dict | None) -> "StopModel | None":
        if not stored:
            return None
        if len(stored["weights"]) != len(FEATURES):
            raise ValueError(f"stop_model: {len(stored['weights'])} weights for {len(FEATURES)} features")
        return cls(tuple(float(w) for w in stored["weights"]), float(stored["bias"]), float(stored["cutoff"]))

    def to_config(self) -> dict:
        return {"features": list(FEATURES), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6), "cutoff": self.cutoff}

    def change_probability(self, features: np.ndarray) -> float:
        z = float(np.dot(self.weights, features) + self.bias)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def stops(self, spans: list, overlap: list[int], asked: int, threshold: float) -> bool:
        if not spans or spans[0].margin < threshold:
            return False
        return self.change_probability(stop_features(spans, overlap, asked, threshold)) < self.cutoff
