"""What each refusal check does on held-back slices: the unanswerable questions it refuses, the right answers it costs.

    python -m qa.training.refusal_check qa/weights/reader [--split valid] [--limit 400]

The refusal checks (qa.refusal) were written against the bundled articles' dev questions; a check earns its place
only if it also refuses more unanswerable questions than it costs right answers on text it was not written against.
As in qa.training.early_stop, each set's held-back questions are read over the top 3 BM25 chunks of that slice's
paragraphs, the answer chosen as the product chooses it (shape step, no-answer threshold); then each check is applied
to that answer on its own, with the paragraphs the chunks come from standing in for the articles (the product reads
whole articles). Per set and over all: answered unanswerable questions the check refuses (good), answered answerable
ones it refuses, and among those the right ones (F1 >= 0.5); beside each, what a higher no-answer threshold does
when it refuses as many answered questions (the lowest margins first): a check earns its place only where it beats
that.
Read `valid` to judge a check; `report` only to report one already chosen.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def checks(question: str, span, passages: list[str], paragraphs: dict[str, tuple[str, int]] | None = None
           ) -> dict[str, bool]:
    """The pipeline's refusal checks (qa.refusal.checks) on one answer, the passages' paragraphs standing in for
    the articles the pipeline reads. paragraphs: a chunk's text -> (the paragraph it was cut from, where it starts
    there); without it each passage stands for itself."""
    from qa.refusal import checks as refusal_checks

    paragraphs = paragraphs or {}
    text, at = paragraphs.get(passages[span.passage], (passages[span.passage], 0))
    articles = list(dict.fromkeys(paragraphs.get(p, (p, 0))[0] for p in passages))
    return refusal_checks(question, articles, span.text, text, at + span.start, at + span.end)


def paragraphs_of(haystack) -> dict[str, tuple[str, int]]:
    """Each chunk of the haystack's paragraphs (as the index and qa.training.early_stop cut them) -> (its paragraph,
    the chunk's start in it), in Simplified characters as the reader reads them."""
    from retriever.chunking import chunk_normalized
    from retriever.normalize import normalize
    from retriever.text import to_simplified

    out = {}
    for context in dict.fromkeys(ex.context for ex in haystack):
        norm = normalize(context)
        paragraph = to_simplified(norm.text)  # keeps offsets: one character for one
        for chunk in chunk_normalized("paragraph", norm):
            out.setdefault(to_simplified(chunk.text), (paragraph, chunk.norm_start))
    return out


def tally(rows, reader, paragraphs: dict[str, tuple[str, int]] | None = None) -> dict[str, dict]:
    """Per check: answered unanswerable questions refused, answered answerable ones refused, right ones lost."""
    from qa.metrics import char_f1
    from qa.training.early_stop import chosen_span

    out: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    answered = []  # (margin, unanswerable, right) of every answered question: the threshold's side of the ledger
    for row in rows:
        span, _ = chosen_span(row, None, None, reader.no_answer_threshold, reader.type_slack)  # every passage read
        if span is None or span.margin < reader.no_answer_threshold:
            continue  # refused already: no check can change it
        kind = "answerable" if row["answers"] else "unanswerable"
        right = bool(row["answers"]) and char_f1(span.text, row["answers"]) >= 0.5
        answered.append((span.margin, not row["answers"], right))
        fired = checks(row["question"], span, row["passages"], paragraphs)
        fired["any"] = any(fired.values())
        for name, refuses in fired.items():
            out[name][f"{kind} answered"] += 1
            out[name][f"{kind} refused"] += refuses
            out[name]["right answers lost"] += refuses and right
    answered.sort(key=lambda a: a[0])
    for figures in out.values():
        lowest = answered[: figures["answerable refused"] + figures["unanswerable refused"]]
        figures["threshold: unanswerable refused"] = sum(u for _, u, _ in lowest)
        figures["threshold: right answers lost"] = sum(r for _, _, r in lowest)
    return out


def main(argv=None):
    from qa.reader import Reader
    from qa.training.data import load_all
    from qa.training.early_stop import passage_lists, passage_spans, sample_per_set

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/reading-comprehension"))
    parser.add_argument("--split", choices=("valid", "report"), default="valid")
    parser.add_argument("--limit", type=int, default=400, help="questions per set (random, fixed seed)")
    parser.add_argument("--runtime", default="auto")
    args = parser.parse_args(argv)

    held = load_all(args.data)[args.split]
    picked = sample_per_set(held, args.limit)
    reader = Reader.load(args.reader, args.runtime)
    rows = passage_spans(reader, passage_lists(picked, held))
    paragraphs = paragraphs_of(held)
    for source in sorted({r["source"] for r in rows}):
        part = tally([r for r in rows if r["source"] == source], reader, paragraphs)
        print(source, json.dumps({k: dict(v) for k, v in part.items() if v.get("unanswerable refused") or
                                  v.get("answerable refused")}, ensure_ascii=False))
    print("all", json.dumps({k: dict(v) for k, v in tally(rows, reader, paragraphs).items()}, ensure_ascii=False,
                            indent=1))


if __name__ == "__main__":
    main()
