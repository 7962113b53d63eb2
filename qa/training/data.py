"""Reading-comprehension data (SQuAD-style JSON) -> checked examples, split by article.

The sets live outside the repo (their folder is an argument). DRCD is Traditional Chinese: question and
context go through OpenCC t2s, and an example is kept only when the answer still sits at its offset.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

# every set the reader trains on, and whether it is Traditional Chinese (OpenCC t2s first); the README of the data
# folder gives sources and licences. Each set's held-back slices (split_of) are whole articles or paragraphs.
SETS = {
    "cmrc2018_trial.json": {"t2s": False},
    "cmrc2018_train.json": {"t2s": False},
    "DRCD_dev.json": {"t2s": True},
    "DRCD_test.json": {"t2s": True},
    "squad2_dev_zh.json": {"t2s": False},
    "xquad_zh.json": {"t2s": False},
    "news_security_train.json": {"t2s": False},
    "cail2019_dev.json": {"t2s": False},
    "cail2019_test.json": {"t2s": False},
    "dureader_checklist_dev.json": {"t2s": False},
    "dureader_checklist_demo.json": {"t2s": False},
}
# sets whose articles hold hundreds of unrelated paragraphs (DuReader-checklist: one search query each) are split
# by paragraph, the rest by article
_BY_PARAGRAPH = {"dureader_checklist_dev.json", "dureader_checklist_demo.json"}

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
    """"report" is the figure we publish and never tune on; "valid" picks checkpoints and thresholds.

    The slices of the sets the first readers trained on (squad2, DRCD_test, cmrc2018_trial) are kept as they were,
    so those figures stay comparable. xquad_zh translates SQuAD dev questions as squad2_dev_zh does: its articles
    are numbered by their squad2 article (load_all), so a shared article falls in the same slice in both.
    """
    if source in ("squad2_dev_zh.json", "xquad_zh.json"):
        return {0: "report", 1: "valid"}.get(article % 9, "train")
    if source in ("DRCD_dev.json", "dureader_checklist_demo.json"):
        return "train"
    if source == "dureader_checklist_dev.json":
        return {0: "report", 1: "valid"}.get(article % 5, "train")
    return {0: "report", 5: "valid"}.get(article % 10, "train")


def _strip_edges(text: str, start: int) -> tuple[str, int]:
    stripped = text.lstrip()
    start += len(text) - len(stripped)
    return stripped.rstrip(), start


def _locate(context: str, text: str, start: int) -> int | None:
    """Where the answer stands: at its offset when that holds, else its occurrence nearest to the offset (some
    sets' offsets are off by one or plain wrong), else None."""
    if context[start : start + len(text)] == text:
        return start
    found, at = [], context.find(text)
    while at >= 0:
        found.append(at)
        at = context.find(text, at + 1)
    return min(found, key=lambda f: abs(f - start)) if found else None


def _answer_texts(qa: dict) -> list[tuple[str | None, int]]:
    """(text, offset) of every answer, edges stripped; numbers stored as JSON numbers become strings
    (news_security_train), a null text stays None."""
    out = []
    for ans in qa.get("answers") or []:
        text = ans.get("text")
        if isinstance(text, bool) or text is None:
            out.append((None, -1))  # an answer whose text was lost: the question is not unanswerable
            continue
        if isinstance(text, float) and text.is_integer():
            text = int(text)
        out.append(_strip_edges(str(text), int(ans.get("answer_start", -1))))
    return out


def load_set(path: Path, t2s: bool) -> tuple[list[Example], int]:
    """One set's checked examples and how many questions were dropped. A question is unanswerable when it has no
    answer text (is_impossible disagrees with the answers in CAIL2019's test file); YES/NO answers are not spans
    and are dropped; an answer that cannot be found in its context is dropped."""
    converter = None
    if t2s:
        import opencc

        converter = opencc.OpenCC("t2s")
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    examples, dropped, paragraph_no = [], 0, -1
    for a, article in enumerate(data):
        for paragraph in article["paragraphs"]:
            paragraph_no += 1
            unit = paragraph_no if path.name in _BY_PARAGRAPH else a
            context = paragraph["context"]
            if converter:
                converted = converter.convert(context)
                if len(converted) != len(context):  # offsets would no longer line up
                    dropped += len(paragraph["qas"])
                    continue
                context = converted
            for qa in paragraph["qas"]:
                question = converter.convert(qa["question"]) if converter else qa["question"]
                given = _answer_texts(qa)
                texts = [(t, s) for t, s in given if t]
                if (any(t is None for t, _ in given) and not texts) or any(
                        t in ("YES", "NO") and s < 0 for t, s in texts):
                    dropped += 1
                    continue
                answers = []
                for text, start in texts:
                    if converter:
                        text = converter.convert(text)
                    at = _locate(context, text, start)
                    if at is not None and (text, at) not in answers:
                        answers.append((text, at))
                if texts and not answers:
                    dropped += 1
                    continue
                examples.append(Example(str(qa["id"]), path.name, unit, question.strip(), context, answers))
    return examples, dropped


def load_all(folder: Path) -> dict[str, list[Example]]:
    """{"train": [...], "valid": [...], "report": [...]} over every set found in folder."""
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "report": []}
    squad_article: dict[str, int] = {}
    for name, opts in SETS.items():
        path = folder / name
        if not path.exists():
            continue
        examples, dropped = load_set(path, **opts)
        if name == "squad2_dev_zh.json":
            squad_article = {ex.id: ex.article for ex in examples}
        if name == "xquad_zh.json":  # the same SQuAD article, the same slice (see split_of)
            shared = {}
            for ex in examples:
                if ex.id in squad_article:
                    shared.setdefault(ex.article, squad_article[ex.id])
            for ex in examples:
                ex.article = shared.get(ex.article, 1000 + ex.article)
        for ex in examples:
            splits[split_of(name, ex.article)].append(ex)
        print(f"{name}: {len(examples)} examples kept, {dropped} dropped")
    random.Random(0).shuffle(splits["train"])
    return splits
