"""Reader-only figures on the held-back slice of the reading-comprehension sets (split by article).

    python -m qa.training.reader_eval --data ../shared/data/reading-comprehension [--split report] [--model DIR]

Uses the same windows and decoding as `qa read` (qa.reader.Reader). The "report" slice is never used for
training, checkpoint choice or thresholds.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="report")
    parser.add_argument("--model", default=None, help="reader folder (default: models.txt)")
    parser.add_argument("--runtime", default=None,
                        help="auto, torch, torch-bf16, onnx-fp32 or onnx-int8 (default: models.txt)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions of each set")
    parser.add_argument("--sets", default="", help="comma-separated set files (default: all)")
    parser.add_argument("--valid-score", type=int, default=0, metavar="N",
                        help="instead: the score training picks checkpoints by, on the same N valid questions "
                             "(600 in scripts/train_reader.sh), so a shipped reader compares with a run's log")
    args = parser.parse_args(argv)

    from qa.models import model_for, runtime_for
    from qa.reader import Reader
    from qa.settings import Settings
    from qa.training.data import load_all
    from qa.training.train import checkpoint_score, evaluate, valid_sample
    from retriever.local_models import resolve_model_path

    reader = Reader.load(resolve_model_path(args.model or model_for("reader")), args.runtime or runtime_for("reader"),
                         Settings().home)
    if args.valid_score:
        result = evaluate(reader, valid_sample(load_all(args.data), args.valid_score))
        score, t = checkpoint_score(result)
        print(json.dumps({"score": score, "threshold": t, "at threshold": result[t], "forced": result["forced"]},
                         indent=2))
        return
    wanted = {name for name in args.sets.split(",") if name}
    by_source = defaultdict(list)
    for ex in load_all(args.data)[args.split]:
        if not wanted or ex.source in wanted:
            by_source[ex.source].append(ex)
    t = reader.no_answer_threshold
    report, weighted, n_answerable = {"threshold": t}, defaultdict(float), 0
    for source, group in sorted(by_source.items()):
        group = group[: args.limit] if args.limit else group
        result = evaluate(reader, group, thresholds=(t,))
        report[source] = {"n": len(group), **result[t], "forced": result["forced"]}
        n = sum(ex.answerable for ex in group)
        n_answerable += n
        for key in ("em", "f1", "false_refusal"):
            weighted[key] += n * result[t][key]
    report["all answerable"] = {"n": n_answerable, **{k: v / max(n_answerable, 1) for k, v in weighted.items()}}
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
