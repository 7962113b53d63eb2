"""Reading-comprehension data (SQuAD-style JSON) -> checked examples, split by article.

The sets live outside the repo (their folder is an argument). DRCD is Traditional Chinese: question and
context go through OpenCC t2s, and an example is kept only when the answer still sits at its offset.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

# which slice of each set is held back (by article index): "report" is the figure we publish and never
# tune on; "valid" picks checkpoints and thresholds.
SETS = {
    "cmrc2018_trial.json": {"t2s": False},
    "DRCD_dev.json": {"t2s": True},
    "DRCD_test.json": {"t2s": True},
    "squad2_dev_zh.json": {"t2s": False},
}


@dataclass
class Example:
    id: str
    source: str
    article: int
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, start); empty = unanswerable

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def split_of(source: str, article: int) -> str:
    if source == "squad2_dev_zh.json":
        return {0: "report", 1: "valid"}.get(article % 9, "train")
    if source in ("DRCD_test.json", "cmrc2018_trial.json"):
        return {0: "report", 5: "valid"}.get(article % 10, "train")
    return "train"


def _strip_edges(text: str, start: int) -> tuple[str, int]:
    stripped = text.lstrip()
    start += len(text) - len(stripped)
    return stripped.rstrip(), start


def load_set(path: Path, t2s: bool) -> tuple[list[Example], int]:
    converter = None
    if t2s:
        import opencc

        converter = opencc.OpenCC("t2s")
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    examples, dropped = [], 0
    for a, article in enumerate(data):
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            if converter:
                converted = converter.convert(context)
                if len(converted) != len(context):  # offsets would no longer line up
                    dropped += len(paragraph["qas"])
                    continue
                context = converted
            for qa in paragraph["qas"]:
                question = converter.convert(qa["question"]) if converter else qa["question"]
                answers = []
                if not qa.get("is_impossible", False):
                    for ans in qa["answers"]:
                        text, start = _strip_edges(ans["text"], ans["answer_start"])
                        if converter:
                            text = converter.convert(text)
                        if text and context[start : start + len(text)] == text:
                            answers.append((text, start))
                    if not answers:
                        dropped += 1
                        continue
                examples.append(Example(str(qa["id"]), path.name, a, question.strip(), context, answers))
    return examples, dropped


def load_all(folder: Path) -> dict[str, list[Example]]:
    """{"train": [...], "valid": [...], "report": [...]} over every set found in folder."""
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "report": []}
    for name, opts in SETS.items():
        path = folder / name
        if not path.exists():
            continue
        examples, dropped = load_set(path, **opts)
        for ex in examples:
            splits[split_of(name, ex.article)].append(ex)
        print(f"{name}: {len(examples)} examples kept, {dropped} dropped")
    random.Random(0).shuffle(splits["train"])
    return splits
