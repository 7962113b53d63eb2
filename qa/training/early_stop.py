"""Choose how the reader saves passages, on valid slices: the early stop and the skip, or a learned stop.

    python -m qa.training.early_stop qa/weights/reader --data ../shared/data/reading-comprehension [--write]
    python -m qa.training.early_stop qa/weights/reader --learned [--write]

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
- `--learned` instead: a stop model (qa.stopping) over the first passage's margins and the passages' question
  bigrams, fitted on the valid rows; its cutoff the one that stops most questions while, out of fold, at most
  `--stop-max-changed` (3%) of the answers change and EM, F1 and refusals hold (0.2 points over all, 1 on a set),
  lowered while it costs dev tune EM.
- Each only when at least PAYS% of the valid questions then read one passage: two calls (the first passage, then
  the others) cost more than one call with all three, so below that share it is cheaper to read them at once.
"""

from __future__ import annotations

import argparse
import json
import random
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from qa.stopping import FEATURES as STOP_FEATURES

CUTOFFS = tuple(float(c) for c in range(-4, 13))  # margins; the v4 reader's threshold is -6.9
SKIPS = (1, 2, 3, 4)  # question bigrams a passage may hold fewer of than the first one
# reading the first passage alone pays only when enough questions stop there: one window, two and three cost about
# 1 : 1.7 : 2.3 (ONNX Runtime, reader v6, 135 tokens, AVX-512, 2026-12-04: 36.4 / 60.1 / 83.5 ms), so with a share s
# stopping, 1 + (1 - s) * 1.7 < 2.3 needs s > 24%; under that, every passage is read at once
PAYS = 25.0
STOP_CUTOFFS = tuple(round(0.02 * k, 2) for k in range(1, 21))  # P(reading on changes the answer) under which to stop


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
        rows.append({"source": ex.source, "paragraph": zlib.crc32(ex.context.encode("utf-8")),
                     "answers": [a[0] for a in ex.answers], "question": question,
                     "passages": passages, "spans": spans, "overlap": question_overlap(question, passages)})
    return rows


def chosen_span(row: dict, cutoff: float | None, skip_behind: int | None, threshold: float, type_slack: float,
                stop_model=None):
    """(the span the product picks, before its no-answer threshold, or None; passages read) with this early stop,
    skip and stop model (qa.stopping), as the reader and the shape step give it."""
    from qa.answer_shape import CANDIDATES, shape
    from qa.reader import bigrams, read_in_turn

    stop = None if stop_model is None else (lambda spans: stop_model.stops(
        spans, row["overlap"], len(bigrams(row["question"])), threshold))
    spans, read = read_in_turn(lambda indices: [s for i in indices for s in row["spans"][i]], row["overlap"],
                               CANDIDATES, cutoff, skip_behind, threshold, stop)
    return shape(row["question"], spans, row["passages"], type_slack), len(read)


def replay(row: dict, cutoff: float | None, skip_behind: int | None, threshold: float,
           type_slack: float, stop_model=None) -> tuple[str | None, int]:
    """(the answer, passages read) with this early stop and skip: chosen_span's text where it clears the threshold."""
    span, read = chosen_span(row, cutoff, skip_behind, threshold, type_slack, stop_model)
    return (span.text if span is not None and span.margin >= threshold else None), read


def figures(rows, cutoff: float | None, skip_behind: int | None = None, threshold: float = 0.0,
            type_slack: float = 0.0, stop_model=None) -> dict:
    """Answers changed (against reading every passage), questions that read one passage alone, passages read,
    EM, F1 and refusals (answerable and not) with this early stop, skip and stop model (one for all the rows, or a
    list of one per row: each row's out-of-fold model)."""
    from qa.metrics import char_f1, exact_match

    n = max(len(rows), 1)
    models = stop_model if isinstance(stop_model, list) else [stop_model] * len(rows)
    # (row, answer, passages read, the answer reading all)
    picks = [(r, *replay(r, cutoff, skip_behind, threshold, type_slack, m),
              replay(r, None, None, threshold, type_slack)[0]) for r, m in zip(rows, models)]
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


def set_parts(rows) -> dict[str, list[int]]:
    """Each set's row indices, the sets in name order."""
    return {name: [k for k, r in enumerate(rows) if r["source"] == name]
            for name in sorted({r["source"] for r in rows})}


def set_changes(parts: dict[str, list[int]], figures_of, set_bases: dict[str, dict],
                max_set_loss: float) -> tuple[dict, bool]:
    """Each set's change in EM, F1 and one-passage share against its base (figures_of(its row indices) gives its
    figures with the setting tried), and whether no set loses more than max_set_loss EM or F1 points."""
    sets, within = {}, True
    for name, idx in parts.items():
        got, base = figures_of(idx), set_bases[name]
        sets[name] = {k: round(got[k] - base[k], 2) for k in ("em", "f1", "one_passage")}
        within = within and got["em"] >= base["em"] - max_set_loss and got["f1"] >= base["f1"] - max_set_loss
    return sets, within


def choose_skip(rows, cutoff: float | None, max_set_loss: float = 1.0, **decoding) -> tuple[int | None, list[dict]]:
    """The smallest skip_behind (question bigrams) that, with this cutoff, costs nothing over all the valid
    questions (EM, F1, refusals) and at most max_set_loss EM or F1 points on any one set (about 400 questions
    each: a point is 4 answers); skipping changes answers, and the look-alikes it skips lose as often as they
    win. None: no skip passes."""
    parts = set_parts(rows)
    unskipped = figures(rows, cutoff, None, **decoding)  # the same for every gap: once
    set_bases = {name: figures([rows[k] for k in idx], cutoff, None, **decoding) for name, idx in parts.items()}
    table = []
    for gap in SKIPS:
        entry = {"skip_behind": gap, **figures(rows, cutoff, gap, **decoding)}
        entry["sets"], within = set_changes(parts, lambda idx: figures([rows[k] for k in idx], cutoff, gap, **decoding),
                                            set_bases, max_set_loss)
        entry["ok"] = no_worse(entry, unskipped, 0.0) and within
        table.append(entry)
    return next((t["skip_behind"] for t in table if t["ok"]), None), table


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 30) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-regularised logistic regression on raw features (Newton steps on standardised
    ones, mapped back): seven inputs and a few thousand rows need no library."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -50, 50)))
        grad = z.T @ (p - y) + penalty @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + penalty
        w = w - np.linalg.solve(hess, grad)
    return w[:-1] / scale, float(w[-1] - np.sum(w[:-1] * mean / scale))


def stop_examples(rows, threshold: float = 0.0, type_slack: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, whether reading on changes the answer, the row's index) of every row whose first passage has an
    answer over the threshold: the only rows a stop model may stop."""
    from qa.reader import bigrams
    from qa.stopping import stop_features

    x, y, at = [], [], []
    for i, r in enumerate(rows):
        first = sorted(r["spans"][0], key=lambda s: s.margin, reverse=True)
        if not first or first[0].margin < threshold:
            continue
        x.append(stop_features(first, r["overlap"], len(bigrams(r["question"])), threshold))
        y.append(replay(r, float("-inf"), None, threshold, type_slack)[0] != replay(r, None, None, threshold,
                                                                                    type_slack)[0])
        at.append(i)
    return np.array(x).reshape(-1, len(STOP_FEATURES)), np.array(y, dtype=float), np.array(at, dtype=int)


def choose_stop(rows, max_changed: float = 3.0, max_loss: float = 0.2, max_set_loss: float = 1.0,
                **decoding) -> tuple[object | None, list[dict]]:
    """The stop model (qa.stopping) fitted on every row, with the cutoff that lets the most questions stop while,
    measured out of fold (two folds by paragraph), at most max_changed % of the answers change, EM, F1 and
    refusals fall by at most max_loss points over all and max_set_loss on any one set. None: no cutoff passes."""
    from qa.stopping import StopModel

    x, y, at = stop_examples(rows, **decoding)
    fold = np.array([rows[i]["paragraph"] % 2 for i in at])
    fitted = [fit_logistic(x[fold != f], y[fold != f]) for f in (0, 1)]  # each fold's model, fitted on the other
    per_row = [fitted[r["paragraph"] % 2] for r in rows]
    parts = set_parts(rows)
    base = figures(rows, None, **decoding)
    set_bases = {name: figures([rows[k] for k in idx], None, **decoding) for name, idx in parts.items()}
    table = []
    for cutoff in STOP_CUTOFFS:
        models = [StopModel(tuple(w), b, cutoff) for w, b in per_row]
        entry = {"cutoff": cutoff, **figures(rows, None, None, stop_model=models, **decoding)}
        entry["sets"], within = set_changes(
            parts, lambda idx: figures([rows[k] for k in idx], None, None, stop_model=[models[k] for k in idx],
                                       **decoding), set_bases, max_set_loss)
        entry["ok"] = entry["changed"] <= max_changed and no_worse(entry, base, max_loss) and within
        table.append(entry)
    passing = [t for t in table if t["ok"]]
    if not passing:
        return None, table
    best = max(passing, key=lambda t: t["one_passage"])
    weights, bias = fit_logistic(x, y)
    return StopModel(tuple(float(w) for w in weights), bias, best["cutoff"]), table


def reading_alone_pays(rows, cutoff: float | None, skip_behind: int | None, stop_model=None, **decoding) -> bool:
    """Whether enough valid questions (PAYS%) read the first passage alone for the two-call reading to be the
    cheaper one."""
    return figures(rows, cutoff, skip_behind, stop_model=stop_model, **decoding)["one_passage"] >= PAYS


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

    def answers(stop, skip, model=None):
        pipeline.reader.early_stop, pipeline.reader.skip_behind, pipeline.reader.stop_model = stop, skip, model
        return [pipeline.ask(q["question"]).answer for q in items]

    def em(got):
        return 100 * sum(bool(q["answers"]) and a is not None and exact_match(a, q["answers"])
                         for q, a in zip(items, got)) / max(len(items), 1)

    # every passage read as the early stop reads them (the first alone, then the rest), not all three at once: the
    # same arithmetic as stopping (batched windows are padded, and bf16 sums padded windows in another order: a
    # margin moves by hundredths and a close answer can flip)
    full = answers(float("inf"), None)

    def changes(cutoff, skip=None, model=None):
        got = answers(cutoff, skip, model)
        print(f"dev tune, early stop {cutoff}, skip {skip}, stop model {model and model.cutoff}: EM {em(got):.1f} "
              f"(reading all {em(full):.1f}), {100 * sum(a != b for a, b in zip(full, got)) / len(items):.1f}% changed")
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
    parser.add_argument("--learned", action="store_true",
                        help="fit a stop model (qa.stopping) instead of the margin cutoff and the skip")
    parser.add_argument("--stop-max-changed", type=float, default=3.0,
                        help="%% of answers the stop model may change (held to EM, F1 and refusals besides)")
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
    changes = None if args.skip_dev_tune else dev_tune_changes(args.reader, args.questions)
    if args.learned:
        return learned(args, rows, decoding, changes)
    cutoff, table = choose(rows, args.max_changed, **decoding)
    for t in table:
        print(json.dumps(t))
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
    print_sets(rows, cutoff, skip, None, decoding)
    print(f"chosen early_stop: {cutoff}, skip_behind: {skip} over {len(rows)} valid questions")
    if args.write:
        write_settings(args.reader, early_stop=cutoff, skip_behind=skip)


def learned(args, rows, decoding, changes) -> None:
    """--learned: the stop model and its cutoff on the valid slices, lowered while it costs dev tune EM."""
    from qa.stopping import StopModel

    model, table = choose_stop(rows, args.stop_max_changed, **decoding)
    for t in table:
        print(json.dumps(t))
    lower = sorted((t["cutoff"] for t in table if t["ok"]), reverse=True)
    while model is not None and changes is not None and changes(None, None, model)[1] < 0:
        below = [c for c in lower if c < model.cutoff]
        model = StopModel(model.weights, model.bias, below[0]) if below else None
    if model is not None and not reading_alone_pays(rows, None, None, model, **decoding):
        print(f"stop model {model.cutoff}: under {PAYS}% of the valid questions read one passage alone: every "
              "passage is read at once")
        model = None
    print_sets(rows, None, None, model, decoding)
    print(f"chosen stop model: {model and model.to_config()} over {len(rows)} valid questions")
    if args.write:
        write_settings(args.reader, early_stop=None, skip_behind=None,
                       stop_model=model and model.to_config())


def print_sets(rows, cutoff: float | None, skip: int | None, stop_model, decoding: dict) -> None:
    """Each set's figures as chosen and reading every passage."""
    for source, idx in set_parts(rows).items():
        part = [rows[k] for k in idx]
        print(source, len(part), "as chosen:", figures(part, cutoff, skip, stop_model=stop_model, **decoding),
              "reading all:", figures(part, None, **decoding))


def write_settings(reader: Path, **settings) -> None:
    config = reader / "qa_reader.json"
    stored = json.loads(config.read_text(encoding="utf-8"))
    stored.update(settings)
    config.write_text(json.dumps(stored, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written to {config}")


if __name__ == "__main__":
    main()
