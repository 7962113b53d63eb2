"""The answer verifier: a span's [CLS], start and end hidden states and its margin -> the log-odds of its F1.

A window's [CLS] span logits are a weak "no answer" signal on their own (a reader refuses half its answerable
questions before it refuses most unanswerable ones); a logistic head over the last hidden states, fitted after
training on the model's own spans (qa.training.verifier), separates them better. Fitted on each span's F1 as a
soft label (reader v6.1; v6's was fitted on "F1 >= 0.5"), it also ranks the nearest of nested spans first and
compares spans across passages on one scale. Its output replaces the margin, so thresholds, calibration and the
early stop read it as they read a margin.

A verifier may also read the span's lexical evidence (`evidence`): whether the question's names and figures stand
near it, whether it is the kind of thing asked for, how much of the question its sentence repeats. Those are the
signs of an unanswerable question that the reader's hidden states carry weakly ("哪位科学家…" answered "我国",
"2021年…" answered with the sentence about 2022); fitted with the rest, each weighs what it is worth on the
training sets instead of vetoing as a hand rule would.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import re
from pathlib import Path

import numpy as np

FILE = "verifier.safetensors"
EVIDENCE = 14  # how many evidence features `evidence` gives


def span_features(hidden: np.ndarray, start: int, end: int, margin: float,
                  evidence_row: np.ndarray | None = None) -> np.ndarray:
    """One window's last hidden states (tokens x width), a span's start and end tokens and its margin (and, for a
    verifier that reads it, the span's lexical evidence) -> features."""
    parts = [hidden[0], hidden[start], hidden[end], [margin]]
    return np.concatenate(parts if evidence_row is None else [*parts, evidence_row]).astype(np.float32)


_SENTENCE_END = re.compile(r"[。！？；!?;\n]")
_ASKING = re.compile(r"[什么哪些个位家谁怎样如何多少几为吗呢是的了？?，,。、\s]")


@functools.lru_cache(maxsize=64)
def _question_clues(question: str) -> tuple[tuple[str, ...], tuple[str, ...], frozenset, object]:
    """The question's names (jieba), figures, content bigrams and answer-type check, once per question."""
    from qa.asked import answer_type
    from qa.refusal import FULLWIDTH_DIGITS, question_names

    text = question.translate(FULLWIDTH_DIGITS)
    figures = tuple(dict.fromkeys(re.findall(r"\d+(?:\.\d+)?", text)))
    bigrams = frozenset(text[i:i + 2] for i in range(len(text) - 1)
                        if not (_ASKING.match(text[i]) or _ASKING.match(text[i + 1])))
    return tuple(dict.fromkeys(question_names(question))), figures, bigrams, answer_type(question)


def evidence(question: str, passage: str, start: int, end: int, near: int = 100) -> np.ndarray:
    """A span's lexical evidence (passage[start:end]), EVIDENCE numbers: share of the question's names within
    `near` characters and whether it has any; share of its figures in the span's sentence and whether it has any;
    whether a type is asked and the span fits it; share of its content bigrams in the sentence and in the passage;
    share of the span's characters the question holds (an echo); log length; whether a person is asked for and the
    span holds a person's name (jieba's tags), the same for a place."""
    from qa.asked import ASKS_PERSON
    from qa.refusal import FULLWIDTH_DIGITS
    from retriever.text import tagged_words

    names, figures, bigrams, fits = _question_clues(question)
    lower = passage.lower()
    around = lower[max(0, start - near): end + near]
    ends = [m.end() for m in _SENTENCE_END.finditer(passage, 0, start)]
    stop = _SENTENCE_END.search(passage, end)
    sentence = passage[ends[-1] if ends else 0: stop.start() if stop else len(passage)].translate(FULLWIDTH_DIGITS)
    text = passage[start:end]
    name_share = sum(n.lower() in around for n in names) / len(names) if names else 1.0
    figure_share = sum(bool(re.search(r"(?<![\d.])" + re.escape(f) + r"(?!\d)", sentence)) for f in figures) / len(figures) if figures else 1.0
    in_sentence = sum(b in sentence for b in bigrams) / len(bigrams) if bigrams else 1.0
    in_passage = sum(b in passage for b in bigrams) / len(bigrams) if bigrams else 1.0
    echo = sum(c in question for c in text) / max(1, len(text))
    asks_person, asks_place = bool(ASKS_PERSON.search(question)), bool(_ASKS_PLACE.search(question))
    tags = {flag for _, _, flag in tagged_words(text)} if asks_person or asks_place else set()
    return np.array([name_share, float(bool(names)), figure_share, float(bool(figures)), float(fits is not None),
                     float(fits(text)) if fits is not None else 1.0, in_sentence, in_passage, echo,
                     np.log1p(len(text)), float(asks_person), float(bool(tags & _PERSON_TAGS) or "·" in text),
                     float(asks_place), float(bool(tags & _PLACE_TAGS))], dtype=np.float32)


_ASKS_PLACE = re.compile(r"哪里|哪儿|何地|何处|哪个(?:国家|城市|省|地方|地区)|哪国|在哪")
_PERSON_TAGS = {"nr", "nrfg", "nrt"}
_PLACE_TAGS = {"ns", "nsf"}


@dataclass
class Verifier:
    weight: np.ndarray  # (3 * width + 1 [+ EVIDENCE],): standardisation folded in
    bias: float
    reads_evidence: bool = False  # its last EVIDENCE weights read `evidence`

    def __call__(self, features: np.ndarray) -> float:
        return float(features @ self.weight + self.bias)

    @classmethod
    def load(cls, folder: Path) -> "Verifier | None":
        path = Path(folder) / FILE
        if not path.exists():
            return None
        from safetensors.numpy import load_file

        weights = load_file(str(path))
        reads = "evidence" in weights  # a marker tensor: (EVIDENCE,) names the features' version by their count
        return cls(weights["weight"].astype(np.float32), float(weights["bias"][0]), reads)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        tensors = {"weight": self.weight.astype(np.float32), "bias": np.array([self.bias], np.float32)}
        if self.reads_evidence:
            tensors["evidence"] = np.zeros(EVIDENCE, np.float32)
        save_file(tensors, str(Path(folder) / FILE))
