"""Choose the reader's early stop (stop reading passages once the best span is clearly ahead) on valid slices.

    python -m qa.training.early_stop qa/weights/reader --data ../shared/data/reading-comprehension [--write]

The product reads the top 3 retrieved passages; most questions are answered by the first. With `early_stop` set
the reader reads them one at a time and stops once the best margin so far reaches the setting. How high is
high enough is a property of the checkpoint, so it is chosen here, for one reader, and stored in its
qa_reader.json. The questions come from the `valid` slices of the reading-comprehension sets (never a report
slice, never the dev questions over the bundled articles): each set's valid paragraphs are cut into chunks as the
index cuts articles, BM25 ranks them for each question (so passages 2 and 3 are the look-alikes retrieval brings
along), and the answer after reading the top 3 (shape step and no-answer threshold included) is compared with the
answer where reading stops. The lowest cutoff at which at most `--max-changed` of the answers change
(2%: the bar a runtime must clear, 98% of answers the same) and EM, F1 and refusals fall by at most 0.2 points wins,
provided it changes no answer of the dev questions' tune half end to end (`--questions`; the report half is never
read): reader v6's valid choice, 2.0, changed two of those 66 answers (one right one lost), 3.0 none.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

CUTOFFS = tuple(float(c) for c in range(-4, 13))  # margins; the v4 reader's threshold is -6.9


def passage_lists(asked, haystack, top_k: int = 3, size: int = 200, overlap: int = 60) -> list[tuple]:
    """(example, its top_k chunks by BM25 among the chunks of the haystack's paragraphs of its set) per asked
    example."""
    from qa.training.embedder import _chunks
    from retriever.lexical import LexicalIndex, tokenize

    by_set = defaultdict(list)
    for ex in haystack:
        by_set[ex.source].append(ex)
    out = []
    for source, group in by_set.items():
        texts = [c[2] for ctx in dict.fromkeys(ex.context for ex in group) for c in _chunks(ctx, size, overlap)]
        index = LexicalIndex.build({i: tokenize(t) for i, t in enumerate(texts)})
        for ex in (ex for ex in asked if ex.source == source):
            hits = index.search(ex.question, top_k)
            if len(hits) == top_k:
                out.append((ex, [texts[i] for i, _ in hits]))
    return out


def answers_by_depth(reader, lists) -> list[dict]:
    """Per question, after reading the first k passages (k = 1, 2, …): the best span's margin and the answer."""
    from qa.answer_shape import CANDIDATES, shape
    from retriever.text import to_simplified

    def answer(question, spans, passages):
        span = shape(question, spans, passages, reader.type_slack)
        return span.text if span is not None and span.margin >= reader.no_answer_threshold else None

    rows = []
    for ex, passages in lists:
        question = to_simplified(ex.question)
        passages = [to_simplified(p) for p in passages]
        margins, prefix = [], []
        for i, spans in enumerate(reader.read_in_turn(question, passages, CANDIDATES)):  # as the reader stops
            margins.append(spans[0].margin if spans else None)
            prefix.append(answer(question, spans, passages[: i + 1]))
        rows.append({"source": ex.source, "answers": [a[0] for a in ex.answers], "margins": margins,
                     "prefix": prefix, "all": prefix[-1]})
    return rows


def figures(rows, cutoff: float | None) -> dict:
    """Answers changed, questions stopped before the last passage, passages read, EM, F1 and refusals (answerable
    and not) when reading stops once the best margin reaches `cutoff`."""
    from qa.metrics import char_f1, exact_match

    def chosen(r):  # (answer, passages read)
        for k, m in enumerate(r["margins"][:-1]):
            if cutoff is not None and m is not None and m >= cutoff:
                return r["prefix"][k], k + 1
        return r["all"], len(r["margins"])

    n = max(len(rows), 1)
    picks = [(r, *chosen(r)) for r in rows]  # (row, answer, passages read)
    out = {"changed": 100 * sum(a != r["all"] for r, a, _ in picks) / n,
           "stopped": 100 * sum(k < len(r["margins"]) for r, _, k in picks) / n,
           "passages": sum(k for _, _, k in picks) / n}
    scored = [(a, r["answers"]) for r, a, _ in picks if r["answers"]]
    refused = [a is None for r, a, _ in picks if not r["answers"]]
    out["em"] = 100 * sum(exact_match(p, a) for p, a in scored) / max(len(scored), 1)
    out["f1"] = 100 * sum(char_f1(p, a) for p, a in scored) / max(len(scored), 1)
    out["false_refusals"] = 100 * sum(p is None for p, _ in scored) / max(len(scored), 1)
    out["refused"] = 100 * sum(refused) / max(len(refused), 1)
    return {k: round(v, 2) for k, v in out.items()}


def choose(rows, max_changed: float = 2.0, max_loss: float = 0.2) -> tuple[float | None, list[dict]]:
    """The lowest cutoff within the budget (None: none is), and the figures at every cutoff."""
    base = figures(rows, None)
    table = [{"cutoff": c, **figures(rows, c)} for c in CUTOFFS]
    ok = [t for t in table if t["changed"] <= max_changed and t["em"] >= base["em"] - max_loss
          and t["f1"] >= base["f1"] - max_loss and t["refused"] >= base["refused"] - max_loss
          and t["false_refusals"] <= base["false_refusals"] + max_loss]
    return (min(t["cutoff"] for t in ok) if ok else None), [{"cutoff": None, **base}] + table


def keeping(cutoff: float, table: list[dict], max_changed: float, changes) -> float | None:
    """The lowest cutoff from `cutoff` up, within the valid budget, at which changes(c) (the dev tune answers it
    changes) is empty; None when every one changes some."""
    for c in [t["cutoff"] for t in table if t["cutoff"] is not None and t["cutoff"] >= cutoff
              and t["changed"] <= max_changed]:
        changed = changes(c)
        print(f"early stop {c}: dev tune answers changed {changed}")
        if not changed:
            return c
    return None


def dev_tune_changes(reader_folder: Path, questions: Path):
    """A function of a cutoff: the ids of the dev tune questions (bundled articles, end to end) whose answer with the
    early stop there differs from reading every passage (read once)."""
    from qa.evaluate import load_questions
    from qa.training.ship import bundled_pipeline

    pipeline = bundled_pipeline(reader_folder)
    items = load_questions(questions, "tune")

    def answers(stop):
        pipeline.reader.early_stop = stop
        return [pipeline.ask(q["question"]).answer for q in items]

    full = answers(None)
    return lambda cutoff: [q["id"] for q, a, b in zip(items, full, answers(cutoff)) if a != b]


def main(argv=None):
    from qa.reader import Reader
    from qa.training.data import load_all

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="a reader folder (its qa_reader.json gets the setting with --write)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/reading-comprehension"))
    parser.add_argument("--limit", type=int, default=400, help="questions per set (random, fixed seed)")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--max-changed", type=float, default=2.0, help="%% of answers stopping may change")
    parser.add_argument("--rows", type=Path, help="also write each question's margin and answers (JSON Lines)")
    parser.add_argument("--write", action="store_true", help="store the chosen cutoff in qa_reader.json")
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"),
                        help="dev questions whose tune half the cutoff may not change")
    parser.add_argument("--skip-dev-tune", action="store_true", help="choose on the valid slices alone")
    args = parser.parse_args(argv)

    valid = load_all(args.data)["valid"]
    by_set = defaultdict(list)
    for ex in valid:
        by_set[ex.source].append(ex)
    rng = random.Random(0)
    picked = [ex for group in by_set.values() for ex in rng.sample(group, min(args.limit, len(group)))]
    lists = passage_lists(picked, valid)  # the haystack: every paragraph of the valid slice
    reader = Reader.load(args.reader, args.runtime)
    rows = answers_by_depth(reader, lists)
    if args.rows:
        args.rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cutoff, table = choose(rows, args.max_changed)
    for t in table:
        print(json.dumps(t))
    if cutoff is not None and not args.skip_dev_tune:
        cutoff = keeping(cutoff, table, args.max_changed, dev_tune_changes(args.reader, args.questions))
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        print(source, len(part), "at the chosen cutoff:", figures(part, cutoff), "reading all:", figures(part, None))
    print(f"chosen early_stop: {cutoff} over {len(rows)} valid questions")
    if args.write:
        config = args.reader / "qa_reader.json"
        stored = json.loads(config.read_text(encoding="utf-8"))
        stored["early_stop"] = cutoff
        config.write_text(json.dumps(stored, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"written to {config}")


if __name__ == "__main__":
    main()
