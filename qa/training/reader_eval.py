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
    parser.add_argument("--runtime", default=None, help="torch or onnx-int8 (default: models.txt)")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args(argv)

    from qa.models import model_for, runtime_for
    from qa.reader import Reader
    from qa.settings import Settings
    from qa.training.data import load_all
    from qa.training.train import evaluate
    from retriever.local_models import resolve_model_path

    reader = Reader.load(resolve_model_path(args.model or model_for("reader")), args.runtime or runtime_for("reader"),
                         Settings().home)
    examples = load_all(args.data)[args.split]
    if args.limit:
        examples = examples[: args.limit]
    by_source = defaultdict(list)
    for ex in examples:
        by_source[ex.source].append(ex)
    t = reader.no_answer_threshold
    report = {"threshold": t}
    for source, group in sorted(by_source.items()):
        result = evaluate(reader, group, thresholds=(t,))
        report[source] = {"n": len(group), **result[t], "forced": result["forced"]}
    answerable = [ex for ex in examples if ex.answerable]
    report["all answerable"] = {"n": len(answerable), **evaluate(reader, answerable, thresholds=(t,))[t]}
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
