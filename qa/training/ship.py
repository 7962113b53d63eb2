"""Ship a trained reader: pick the no-answer threshold on tune slices only, write fp16 weights.

    python -m qa.training.ship runs/reader-v1/best --out qa/weights/reader [--data ../shared/data/reading-comprehension]

Every setting is chosen on tune slices only, never on a report slice:

- the clause penalty (what crossing a comma costs a span; qa.reader.Reader), with --data: answerable EM + F1;
- the answer-type slack (qa.answer_shape.shape): end to end on the tune half of tests/data/dev_questions.jsonl;
- the no-answer threshold: F1 + no-answer accuracy, with at most 5% of the tune half's answerable questions refused;
- with --data, smoothing scales for an int8 copy, kept only when that copy answers as fp32 does on 98% of the tune
  half and of --agreement-questions `valid` questions (qa.training.int8_scales): `auto` serves it where they ship.

With --verifier N an answer verifier (qa.verifier) is fitted first, on N train-split questions of --data and fresh
synthetic news questions (qa.training.verifier); its log-odds then stand in for the margin in every choice above.

With --data the clause penalty and the threshold weigh several domains: half the weight on the tune half (news,
end to end), half on the mean of the `valid` slices of the reading-comprehension sets, read passage by passage
(for the threshold, the sets with unanswerable questions: Chinese SQuAD 2.0, CAIL2019, DuReader-checklist). The
sigmoid that turns a margin into a [0, 1] confidence is fitted on the pooled questions. All of it is stored with
the weights in qa_reader.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from qa.training.verifier import PASSAGES, TARGETS
from retriever.local_models import replace_folder


def margins(pipeline, items: list[dict], type_slack: float = 0.0) -> list[tuple[dict, float, str | None]]:
    """(question, best span margin, span text) with refusals switched off."""
    pipeline.reader.no_answer_threshold = -1e9
    pipeline.reader.type_slack = type_slack
    out = []
    for item in items:
        answer = pipeline.ask(item["question"])
        out.append((item, answer.score, answer.answer))
    return out


def domain_margins(reader, examples, refusal_checks: bool = False) -> list[tuple[dict, float, str | None]]:
    """(question, best span margin, span text) for each example read alone with its own passage, in the shape
    `margins` gives (the answers as a list of texts). refusal_checks: the text is None where one of the pipeline's
    refusal checks (qa.training.refusal_check.checks, the passage standing in for the article) refuses the span, as
    `margins` gives None for an answer the pipeline's checks refused: the threshold is then chosen for the product as
    it answers, checks included (before 2026-12-06 the domains were read with the checks off). The span is the one
    the pipeline would pick: the reader's n-best, then the shape step (before 2026-12-06: the reader's best alone)."""
    from qa.answer_shape import CANDIDATES, shape
    from qa.training.refusal_check import checks

    out = []
    for ex in examples:
        span = shape(ex.question, reader.read(ex.question, [ex.context], n_best=CANDIDATES), [ex.context],
                     reader.type_slack)
        item = {"question": ex.question, "answers": [a[0] for a in ex.answers]}
        refused = span is not None and refusal_checks and any(checks(ex.question, span, [ex.context]).values())
        out.append((item, span.margin, None if refused else span.text) if span else (item, float("-inf"), None))
    return out


CLAUSE_PENALTIES = (None, 0.0, 0.5, 1.0, 2.0, 4.0)  # None: an answer never crosses a comma (qa.reader.Reader)


def product_weighted(tune: float, domains: list[float]) -> float:
    """Half the weight on the tune half (the product's own questions, end to end), half on the other domains."""
    return tune if not domains else (tune + sum(domains) / len(domains)) / 2


def choose_clause_penalty(pipeline, tune: list[dict], domains: dict[str, list]) -> tuple[float | None, dict]:
    """The clause penalty with the best answerable EM + F1 over the tune half (end to end) and each domain's valid
    questions (read alone), product_weighted: encyclopaedia answers often hold a comma, news answers rarely do."""
    from qa.metrics import char_f1, exact_match

    def em_f1(rows):  # EM + F1: F1 alone pays a long span that holds the answer almost as well as the answer
        rows = [r for r in rows if r[0]["answers"]]
        return 100 * sum(exact_match(a, q["answers"]) + char_f1(a, q["answers"]) for q, _, a in rows) / max(len(rows), 1)

    best = None
    for penalty in CLAUSE_PENALTIES:
        pipeline.reader.clause_penalty = penalty
        per = {"dev tune": em_f1(margins(pipeline, tune))}
        per |= {name: em_f1(domain_margins(pipeline.reader, group)) for name, group in domains.items()}
        mean = product_weighted(per["dev tune"], [v for k, v in per.items() if k != "dev tune"])
        print(f"clause_penalty {penalty}: weighted EM + F1 {mean:.1f} {json.dumps({k: round(v, 1) for k, v in per.items()})}")
        if best is None or mean > best[0]:
            best = (mean, penalty, per)
    pipeline.reader.clause_penalty = best[1]
    return best[1], best[2]


def figures_at(scored, t: float) -> dict:
    """Answerable F1, no-answer accuracy and false refusals (fractions) with threshold t."""
    from qa.metrics import char_f1

    answerable = [s for s in scored if s[0]["answers"]]
    unanswerable = [s for s in scored if not s[0]["answers"]]
    # an answer of None with refusals switched off was refused by a check that is not the threshold
    return {
        "f1": sum(char_f1(a if m >= t else None, q["answers"]) for q, m, a in answerable) / max(len(answerable), 1),
        "no_answer_accuracy": sum(m < t or a is None for _, m, a in unanswerable) / max(len(unanswerable), 1),
        "false_refusals": sum(m < t or a is None for _, m, a in answerable) / max(len(answerable), 1),
    }


def choose_threshold(scored, max_false_refusal: float = 0.05, domains: dict | None = None) -> tuple[float, dict]:
    """The threshold with the best F1 + no-answer accuracy on `scored` (end to end, the tune half), product_weighted
    with every domain in `domains` when given; never more than max_false_refusal of the tune half's answerable
    questions refused."""
    domains = domains or {}
    candidates = {round(m, 2) for _, m, _ in scored} | {0.0}
    for rows in domains.values():  # a coarser grid over the (many more) domain margins
        candidates |= {round(m, 1) for _, m, _ in rows if m != float("-inf")}
    best = None
    for t in sorted(candidates):
        tune = figures_at(scored, t)
        if tune["false_refusals"] > max_false_refusal:
            continue
        per_domain = {name: figures_at(rows, t) for name, rows in domains.items()}
        both = lambda f: f["f1"] + f["no_answer_accuracy"]  # noqa: E731
        key = (product_weighted(both(tune), [both(f) for f in per_domain.values()]), -abs(t))
        if best is None or key > best[0]:
            pct = lambda f: {k: round(100 * v, 1) for k, v in f.items()}
            best = (key, t, {**pct(tune), **({"domains": {n: pct(f) for n, f in per_domain.items()}} if domains else {})})
    return best[1], best[2]


def fit_calibration(scored) -> tuple[float, float]:
    """Platt scaling: sigmoid(a * margin + b) = P(the best span is right), right meaning char-F1 >= 0.5 with
    an accepted answer (never, for an unanswerable question). Newton steps on a lightly L2-penalised log loss."""
    import numpy as np

    from qa.metrics import char_f1

    from qa.training.verifier import newton_logistic

    x = np.array([m for _, m, _ in scored], dtype=np.float64)
    y = np.array([bool(q["answers"]) and char_f1(a, q["answers"]) >= 0.5 for q, _, a in scored], dtype=np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = newton_logistic(design, y, np.array([1e-2, 1e-4]), iterations=50, tolerance=1e-8)  # (a, b)
    return float(w[0]), float(w[1])


def bundled_pipeline(reader: Path):
    """A pipeline over the bundled articles, in a throw-away data directory, reading with the reader folder given
    (set as QA_READER_MODEL for this process): the end-to-end yardstick of the dev questions' tune half."""
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    settings = Settings()
    settings.home = Path(tempfile.mkdtemp(prefix="qa-ship-"))
    os.environ["QA_READER_MODEL"] = str(Path(reader).resolve())
    return QAPipeline(settings)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("qa/weights/reader"))
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=96)
    parser.add_argument("--data", type=Path, default=None,
                        help="reading-comprehension folder: choose the clause penalty and the threshold on the valid slices of its sets "
                             "too (several domains)")
    parser.add_argument("--domain-limit", type=int, default=400, help="at most this many valid questions a set")
    parser.add_argument("--agreement-questions", type=int, default=400,
                        help="valid questions (besides the tune half) the int8 copy must answer as fp32 does")
    parser.add_argument("--verifier", type=int, default=0, metavar="N",
                        help="fit an answer verifier on N train-split questions of --data first (0: none)")
    parser.add_argument("--verifier-target", choices=TARGETS, default="f1",
                        help="what the verifier learns: f1 (a span's F1 as a soft label, so the nearest of nested "
                             "spans ranks first; v6.1) or right (F1 >= 0.5; v6)")
    parser.add_argument("--verifier-passages", choices=PASSAGES, default="own",
                        help="own: the verifier's questions are read over their own passage; retrieved: over the top "
                             "3 BM25 chunks of their set (the right one and look-alikes, as the product reads); both: "
                             "each way, the rows pooled")
    parser.add_argument("--verifier-evidence", action="store_true",
                        help="the verifier also reads each span's lexical evidence (qa.verifier.evidence: the "
                             "question's names and figures near the span, the asked type, overlap)")
    parser.add_argument("--verifier-rows", type=Path, default=None,
                        help="keep the verifier's collected rows in this .npz and reuse them when it exists")
    parser.add_argument("--clause-penalty", type=float, default=None, metavar="P",
                        help="keep this clause penalty instead of choosing one (a comparison of verifiers at the "
                             "same decoding, and half an hour less with --data); -1: never cross a comma")
    parser.add_argument("--domains-without-checks", action="store_true",
                        help="read the valid domains for the threshold with the refusal checks off (as before "
                             "2026-12-06; reader v6.1's threshold was chosen so)")
    parser.add_argument("--no-int8", action="store_true", help="with --data: skip the int8 smoothing scales")
    parser.add_argument("--frozen-embeddings", default=None, metavar="BASE",
                        help="the checkpoint kept BASE's word embeddings frozen (multilingual-e5-small): leave them "
                             "and the tokenizer out of the shipped folder; they are put back from BASE's package")
    args = parser.parse_args(argv)
    if args.verifier and not args.data:
        parser.error("--verifier needs --data")

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.evaluate import load_questions

    # fp16 first: the threshold is chosen on the weights that ship (a margin on the threshold can flip in fp16)
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.checkpoint), dtype=torch.float16)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(args.checkpoint)).save_pretrained(tmp)
    boundary = args.checkpoint / "boundary.safetensors"  # the character-level boundary head, when trained
    if boundary.exists():
        from safetensors.torch import load_file, save_file

        save_file({k: v.half() for k, v in load_file(str(boundary)).items()}, str(tmp / "boundary.safetensors"))

    pipeline = bundled_pipeline(tmp)
    pipeline.reader.max_length, pipeline.reader.stride = args.max_length, args.stride
    if args.verifier:
        from qa.training import verifier

        examples = verifier.questions(args.data, args.verifier, args.verifier // 3, seed=11)
        pipeline.reader.verifier, figures = verifier.fit(pipeline.reader, examples, rows=args.verifier_rows,
                                                         target=args.verifier_target,
                                                         reads_evidence=args.verifier_evidence,
                                                         passages=args.verifier_passages, data=args.data)
        pipeline.reader.verifier.save(tmp)
        print(f"verifier: held-out log loss {json.dumps(figures)}")
    tune = load_questions(args.questions, "tune")
    by_source, splits = {}, None  # the valid slice of each reading-comprehension set, with --data
    if args.data:
        from qa.training.data import load_all

        splits = load_all(args.data)
        for ex in splits["valid"]:
            by_source.setdefault(ex.source, []).append(ex)
        answerable = {name: [ex for ex in group if ex.answerable][: args.domain_limit // 2]
                      for name, group in sorted(by_source.items())}
        if args.clause_penalty is None:
            penalty, _ = choose_clause_penalty(pipeline, tune, answerable)
            print(f"clause_penalty {penalty} chosen")
    if args.clause_penalty is not None:
        pipeline.reader.clause_penalty = None if args.clause_penalty < 0 else args.clause_penalty
        print(f"clause_penalty {pipeline.reader.clause_penalty} kept")
    choices = []
    for slack in (0.0, 1.0, 2.0, 4.0):
        threshold, figures = choose_threshold(margins(pipeline, tune, slack))
        print(f"type_slack {slack}: threshold {threshold:.2f} on the tune split: {figures}")
        choices.append((figures["f1"] + figures["no_answer_accuracy"], -slack, threshold, slack))
    _, _, threshold, slack = max(choices)
    scored = margins(pipeline, tune, slack)
    domains = {}
    if args.data:
        for source, group in sorted(by_source.items()):
            if any(not ex.answerable for ex in group):  # the sets that can teach a threshold
                domains[source] = domain_margins(pipeline.reader, group[: args.domain_limit],
                                                 refusal_checks=not args.domains_without_checks)
        threshold, figures = choose_threshold(scored, domains=domains)
        print(f"threshold {threshold:.2f} on the tune split and {len(domains)} valid domains: {json.dumps(figures, ensure_ascii=False)}")
    calibration = fit_calibration(scored + [row for rows in domains.values() for row in rows])
    print(f"calibration: confidence = sigmoid({calibration[0]:.3f} * margin + {calibration[1]:.3f})")

    (tmp / "qa_reader.json").write_text(json.dumps(
        {"no_answer_threshold": threshold, "type_slack": slack, "calibration": calibration,
         "max_length": args.max_length, "stride": args.stride,
         "clause_spans": pipeline.reader.clause_spans, "clause_penalty": pipeline.reader.clause_penalty,
         "threshold_domains": ["dev tune (news, end to end)", *domains]}, indent=2, ensure_ascii=False))
    if args.data and not args.no_int8:  # smoothing scales for the int8 copy, from train-split windows, kept only if its answers agree
        from qa.training.int8_scales import keep_if_agrees, write_scales
        from qa.training.train import valid_sample

        write_scales(tmp, args.data)
        keep_if_agrees(tmp, pipeline, tune, valid_sample(splits, args.agreement_questions),
                       pipeline.settings.home)
    if args.frozen_embeddings:
        from qa.reader_folder import strip_frozen_embeddings

        strip_frozen_embeddings(tmp, args.frozen_embeddings)
    replace_folder(tmp, args.out)
    print(f"wrote {args.out} ({sum(p.stat().st_size for p in args.out.iterdir()) / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
