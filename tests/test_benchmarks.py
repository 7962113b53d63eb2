"""A smoke run of the benchmark suite at tiny sizes, so it cannot rot. Nothing here asserts on wall-clock time."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke(tmp_path):
    out = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--parts", "latency,scale,filtered", "--questions", "6", "--scale", "3000",
         "--filtered-chunks", "3000",
         "--write", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    for figure in ("| embed query |", "| reader |", "| reader, all 3 passages read |", "| total |", "Agreement with PyTorch fp32 on 6 dev questions", "recall@10 vs exact",
                   "| FAISS flat (exact) |", "| milvus-lite FLAT |", "50/50 |"):
        assert figure in text, figure
