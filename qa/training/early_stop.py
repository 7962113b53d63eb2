"""Choose how the reader saves passages, on valid slices: the early stop and the skip.

    python -m qa.training.early_stop qa/weights/reader --data ../shared/data/reading-comprehension [--write]

The product reads the top 3 retrieved passages: the first alone, then the others together (qa.reader.read_in_turn).
`early_stop`: once the first passage's best margin reaches it, the others are never read. `skip_behind`: once that
span clears the no-answer threshold, a passage holding that many fewer of the question's character bigrams than the
first is skipped (a look-alike: it wins the answer less often than it loses it). Both are properties of the checkpoint, chosen here
and stored in its qa_reader.json. The questions come from the `valid` slices of the reading-comprehension sets
(never a report slice, never the dev questions over the bundled articles): each set's valid paragraphs are cut into
chunks as the index cuts articles, BM25 ranks them for each question (so passages 2 and 3 are the look-alikes
retrieval brings along), each passage is read once, alone, and every setting is replayed on those spans (shape step
and no-answer threshold included) against reading all three.
- The cutoff: the lowest at which at most `--max-changed` of the answers change (2%: the bar a runtime must clear)
  and EM, F1 and refusals fall by at most 0.2 points, provided it changes no answer of the dev questions' tune half
  end to end (`--questions`; the report half is never read): reader v6's valid choice, 2.0, changed two of those 66
  answers (one right one lost), 3.0 none.
- The skip, with that cutoff: the smallest gap that costs nothing over all the valid questions and at most a point
  of EM or F1 on any one set (choose_skip), and no EM on the dev tune half.
- Both only when at least PAYS% of the valid questions then read one passage: two calls (the first passage, then
  the others) cost more than one call with all three, so below that share it is cheaper to read them at once.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

CUTOFFS = tuple(float(c) for c in range(-4, 13))  # margins; the v4 reader's threshold is -6.9
SKIPS = (1, 2, 3, 4)  # question bigrams a passage may hold fewer of than the first one
# reading the first passage alone pays only when enough questions stop there: one window, two and three cost about
# 1 : 1.7 : 2.3 (ONNX Runtime, reader v6, 135 tokens, AVX-512, 2026-12-04: 36.4 / 60.1 / 83.5 ms), so with a share s
# stopping, 1 + (1 - s) * 1.7 < 2.3 needs s > 24%; under that, every passage is read at once
PAYS = 25.0


def sample_per_set(examples, limit: int) -> list:
    """At most `limit` examples of each set, drawn with a fixed seed (the same questions in every tool that reads
    the held-back slices as the product does)."""
    by_set = defaultdict(list)
    for ex in examples:
        by_set[ex.source].append(ex)
    rng = random.Random(0)
    return [ex for group in by_set.values() for ex in rng.sample(group, min(limit, len(group)))]


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


def passage_spans(reader, lists) -> list[dict]:
    """Per question: its passages, each one's own n-best spans (read alone, as the reader reads in turn) and how
    many of the question's bigrams it holds: enough to replay any cutoff and skip without reading again."""
    from qa.answer_shape import CANDIDATES
    from qa.reader import question_overlap
    from retriever.text import to_simplified

    rows = []
    for ex, passages in lists:
        question = to_simplified(ex.question)
        passages = [to_simplified(p) for p in passages]
        spans = []
        for i, passage in enumerate(passages):
            spans.append(reader._read(question, [passage], CANDIDATES))
            for span in spans[-1]:
                span.passage = i
        rows.append({"source": ex.source, "answers": [a[0] for a in ex.answers], "question": question,
                     "passages": passages, "spans": spans, "overlap": question_overlap(question, passages)})
    return rows


def chosen_span(row: dict, cutoff: float | None, skip_behind: int | None, threshold: float, type_slack: float):
    """(the span the product picks, before its no-answer threshold, or None; passages read) with this early stop
    and skip, as the reader and the shape step give it."""
    from qa.answer_shape import CANDIDATES, shape
    from qa.reader import read_in_turn

    spans, read = read_in_turn(lambda indices: [s for i in indices for s in row["spans"][i]], row["overlap"],
                               CANDIDATES, cutoff, skip_behind, threshold)
    return shape(row["question"], spans, row["passages"], type_slack), len(read)


def replay(row: dict, cutoff: float | None, skip_behind: int | None, threshold: float,
           type_slack: float) -> tuple[str | None, int]:
    """(the answer, passages read) with this early stop and skip: chosen_span's text where it clears the threshold."""
    span, read = chosen_span(row, cutoff, skip_behind, threshold, type_slack)
    return (span.text if span is not None and span.margin >= threshold else None), read


def figures(rows, cutoff: float | None, skip_behind: int | None = None, threshold: float = 0.0,
            type_slack: float = 0.0) -> dict:
    """Answers changed (against reading every passage), questions that read one passage alone, passages read,
    EM, F1 and refusals (answerable and not) with this early stop and skip."""
    from qa.metrics import char_f1, exact_match

    n = max(len(rows), 1)
    picks = [(r, *replay(r, cutoff, skip_behind, threshold, type_slack),
              replay(r, None, None, threshold, type_slack)[0]) for r in rows]  # (row, answer, read, answer reading all)
    out = {"changed": 100 * sum(a != full for _, a, _, full in picks) / n,
           "one_passage": 100 * sum(k == 1 for _, _, k, _ in picks) / n,
           "passages": sum(k for _, _, k, _ in picks) / n}
    scored = [(a, r["answers"]) for r, a, _, _ in picks if r["answers"]]
    refused = [a is None for r, a, _, _ in picks if not r["answers"]]
    out["em"] = 100 * sum(exact_match(p, a) for p, a in scored) / max(len(scored), 1)
    out["f1"] = 100 * sum(char_f1(p, a) for p, a in scored) / max(len(scored), 1)
    out["false_refusals"] = 100 * sum(p is None for p, _ in scored) / max(len(scored), 1)
    out["refused"] = 100 * sum(refused) / max(len(refused), 1)
    return {k: round(v, 2) for k, v in out.items()}


def no_worse(t: dict, base: dict, max_loss: float) -> bool:
    return (t["em"] >= base["em"] - max_loss and t["f1"] >= base["f1"] - max_loss
            and t["refused"] >= base["refused"] - max_loss and t["false_refusals"] <= base["false_refusals"] + max_loss)


def choose(rows, max_changed: float = 2.0, max_loss: float = 0.2, **decoding) -> tuple[float | None, list[dict]]:
    """The lowest cutoff within the budget (None: none is), and the figures at every cutoff (no skip)."""
    base = figures(rows, None, **decoding)
    table = [{"cutoff": c, **figures(rows, c, **decoding)} for c in CUTOFFS]
    ok = [t for t in table if t["changed"] <= max_changed and no_worse(t, base, max_loss)]
    return (min(t["cutoff"] for t in ok) if ok else None), [{"cutoff": None, **base}] + table


def choose_skip(rows, cutoff: float | None, max_set_loss: float = 1.0, **decoding) -> tuple[int | None, list[dict]]:
    """The smallest skip_behind (question bigrams) that, with this cutoff, costs nothing over all the valid
    questions (EM, F1, refusals) and at most max_set_loss EM or F1 points on any one set (about 400 questions
    each: a point is 4 answers); skipping changes answers, and the look-alikes it skips lose as often as they
    win. None: no skip passes."""
    parts = {name: [r for r in rows if r["source"] == name] for name in sorted({r["source"] for r in rows})}
    unskipped = figures(rows, cutoff, None, **decoding)  # the same for every gap: once
    set_bases = {name: figures(part, cutoff, None, **decoding) for name, part in parts.items()}
    table = []
    for gap in SKIPS:
        entry = {"skip_behind": gap, **figures(rows, cutoff, gap, **decoding), "sets": {}}
        ok = no_worse(entry, unskipped, 0.0)
        for name, part in parts.items():
            got, base = figures(part, cutoff, gap, **decoding), set_bases[name]
            entry["sets"][name] = {k: round(got[k] - base[k], 2) for k in ("em", "f1", "one_passage")}
            ok = ok and got["em"] >= base["em"] - max_set_loss and got["f1"] >= base["f1"] - max_set_loss
        entry["ok"] = ok
        table.append(entry)
    return next((t["skip_behind"] for t in table if t["ok"]), None), table


def reading_alone_pays(rows, cutoff: float | None, skip_behind: int | None, **decoding) -> bool:
    """Whether enough valid questions (PAYS%) read the first passage alone for the two-call reading to be the
    cheaper one."""
    return figures(rows, cutoff, skip_behind, **decoding)["one_passage"] >= PAYS


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
    """A function of a cutoff (and a skip): the ids of the dev tune questions (bundled articles, end to end) whose
    answer then differs from reading every passage (read once), and the EM there; the report half is never read."""
    from qa.evaluate import load_questions
    from qa.metrics import exact_match
    from qa.training.ship import bundled_pipeline

    pipeline = bundled_pipeline(reader_folder)
    items = load_questions(questions, "tune")

    def answers(stop, skip):
        pipeline.reader.early_stop, pipeline.reader.skip_behind = stop, skip
        return [pipeline.ask(q["question"]).answer for q in items]

    def em(got):
        return 100 * sum(bool(q["answers"]) and a is not None and exact_match(a, q["answers"])
                         for q, a in zip(items, got)) / max(len(items), 1)

    # every passage read as the early stop reads them (the first alone, then the rest), not all three at once: the
    # same arithmetic as stopping (batched windows are padded, and bf16 sums padded windows in another order: a
    # margin moves by hundredths and a close answer can flip)
    full = answers(float("inf"), None)

    def changes(cutoff, skip=None):
        got = answers(cutoff, skip)
        print(f"dev tune, early stop {cutoff}, skip {skip}: EM {em(got):.1f} (reading all {em(full):.1f})")
        return [q["id"] for q, a, b in zip(items, full, got) if a != b], em(got) - em(full)

    return changes


def main(argv=None):
    from qa.reader import Reader
    from qa.training.data import load_all

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reader", type=Path, help="a reader folder (its qa_reader.json gets the settings with --write)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/reading-comprehension"))
    parser.add_argument("--limit", type=int, default=400, help="questions per set (random, fixed seed)")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--max-changed", type=float, default=2.0, help="%% of answers stopping may change")
    parser.add_argument("--rows", type=Path, help="also write each question's margins and overlaps (JSON Lines)")
    parser.add_argument("--write", action="store_true", help="store the chosen settings in qa_reader.json")
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"),
                        help="dev questions whose tune half the settings may not change (cutoff) or cost (skip)")
    parser.add_argument("--skip-dev-tune", action="store_true", help="choose on the valid slices alone")
    args = parser.parse_args(argv)

    valid = load_all(args.data)["valid"]
    picked = sample_per_set(valid, args.limit)
    lists = passage_lists(picked, valid)  # the haystack: every paragraph of the valid slice
    reader = Reader.load(args.reader, args.runtime)
    decoding = {"threshold": reader.no_answer_threshold, "type_slack": reader.type_slack}
    rows = passage_spans(reader, lists)
    if args.rows:
        args.rows.write_text("".join(json.dumps(
            {"source": r["source"], "answers": r["answers"], "overlap": r["overlap"],
             "margins": [s[0].margin if s else None for s in r["spans"]]}, ensure_ascii=False) + "\n" for r in rows),
            encoding="utf-8")
    cutoff, table = choose(rows, args.max_changed, **decoding)
    for t in table:
        print(json.dumps(t))
    changes = None if args.skip_dev_tune else dev_tune_changes(args.reader, args.questions)
    if cutoff is not None and changes is not None:
        cutoff = keeping(cutoff, table, args.max_changed, lambda c: changes(c)[0])
    skip, skips = choose_skip(rows, cutoff, **decoding)
    for t in skips:
        print(json.dumps(t))
    # the skip is chosen on the valid slices; on the dev tune half it may change answers but not cost EM
    while skip is not None and changes is not None and changes(cutoff, skip)[1] < 0:
        skip = next((t["skip_behind"] for t in skips if t["ok"] and t["skip_behind"] > skip), None)
    if (cutoff is not None or skip is not None) and not reading_alone_pays(rows, cutoff, skip, **decoding):
        print(f"early stop {cutoff}, skip {skip}: under {PAYS}% of the valid questions read one passage alone, "
              "too few for two calls to cost less than one: every passage is read at once")
        cutoff = skip = None
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        print(source, len(part), "as chosen:", figures(part, cutoff, skip, **decoding),
              "reading all:", figures(part, None, **decoding))
    print(f"chosen early_stop: {cutoff}, skip_behind: {skip} over {len(rows)} valid questions")
    if args.write:
        config = args.reader / "qa_reader.json"
        stored = json.loads(config.read_text(encoding="utf-8"))
        stored["early_stop"], stored["skip_behind"] = cutoff, skip
        config.write_text(json.dumps(stored, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"written to {config}")


if __name__ == "__main__":
    main()
