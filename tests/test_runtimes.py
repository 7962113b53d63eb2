"""The `auto` runtime follows the CPU's flags (mocked with QA_CPU_FLAGS), and with every role on ONNX Runtime an
answer is given without importing torch (checked in a fresh process: sys.modules after the answer)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.models import model_for, runtime_for, runtimes_line
from qa.reader import Reader
from retriever import cpu
from retriever.local_models import resolve_model_path
from retriever.smoothing import SCALES_FILE, has_scales

ROOT = Path(__file__).resolve().parent.parent
AVX2_ONLY = "fpu sse4_2 avx avx2 fma"  # an AMD EPYC cloud VM: no AVX-512, no bf16
SAPPHIRE = "avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile"


FLAG_SETS = [AVX2_ONLY, "avx2 fma avx512f avx512_vnni", "avx2 fma avx512f avx512_bf16", "avx2 amx_bf16", ""]


V5 = ROOT / "qa" / "weights" / "reader-v5"  # reader v5 ships smoothing scales; v6 (the default) does not


@pytest.fixture
def reader_without_scales(tmp_path):
    """Reader v5 without its smoothing scales: a reader whose int8 copy would not agree."""
    folder = tmp_path / "reader"
    folder.mkdir()
    for f in V5.iterdir():
        if f.name != SCALES_FILE:
            (folder / f.name).symlink_to(f)
    return folder


@pytest.mark.parametrize("flags, reader", list(zip(FLAG_SETS, [
    "onnx-fp32",
    "onnx-fp32",  # AVX-512 without bf16: autocast would be emulated
    "torch-bf16",
    "torch-bf16",
    "onnx-fp32",  # nothing known (not Linux): the portable choice
])))
def test_auto_follows_the_cpu_flags_for_a_reader_without_scales(monkeypatch, reader_without_scales, flags, reader):
    monkeypatch.setenv("QA_CPU_FLAGS", flags)
    monkeypatch.setenv("QA_READER_RUNTIME", "auto")
    monkeypatch.setenv("QA_EMBEDDER_RUNTIME", "auto")
    monkeypatch.setenv("QA_READER_MODEL", str(reader_without_scales))
    assert runtime_for("reader") == reader
    assert runtime_for("embedder") == "onnx-fp32"
    line = runtimes_line()
    assert f"reader {reader} (auto)" in line and "embedder onnx-fp32 (auto)" in line
    assert ("no avx512_bf16/amx_bf16" in line) == (reader == "onnx-fp32")
    if reader == "torch-bf16":  # the reader's own loading decides alike
        assert Reader.load(reader_without_scales, "auto").runtime == reader
    # a process that answers one question and exits (`ask`) never pays torch's import for bf16
    monkeypatch.setenv("QA_AUTO_TORCH_FREE", "1")
    assert runtime_for("reader") == "onnx-fp32"


def test_the_shipped_reader_has_no_int8_scales_and_runs_bf16_or_fp32(monkeypatch):
    """Reader v6's smoothed int8 copy agreed with fp32 on 91.6% of the dev answers (the bar is 98%): no scales ship,
    so `auto` never runs it on int8."""
    monkeypatch.delenv("QA_READER_MODEL", raising=False)
    monkeypatch.delenv("QA_AUTO_TORCH_FREE", raising=False)
    monkeypatch.setenv("QA_READER_RUNTIME", "auto")
    assert not has_scales(resolve_model_path(model_for("reader")))
    for flags, reader in ((SAPPHIRE, "torch-bf16"), ("avx2 fma avx512f avx512_vnni", "onnx-fp32"), (AVX2_ONLY, "onnx-fp32")):
        monkeypatch.setenv("QA_CPU_FLAGS", flags)
        assert runtime_for("reader") == reader


@pytest.mark.parametrize("flags, reader", list(zip(FLAG_SETS + ["avx2 fma avx_vnni"], [
    "onnx-fp32",  # no VNNI: int8 sums can saturate there, and it was barely faster
    "onnx-int8",
    "torch-bf16",  # bf16 without VNNI
    "torch-bf16",
    "onnx-fp32",
    "onnx-int8",  # AVX-VNNI (recent laptop CPUs)
])))
def test_auto_runs_a_reader_with_scales_on_smoothed_int8_where_the_cpu_has_vnni(monkeypatch, flags, reader):
    """Reader v5 has smoothing scales, so its int8 copy agrees with fp32: auto takes it with VNNI."""
    monkeypatch.setenv("QA_CPU_FLAGS", flags)
    monkeypatch.setenv("QA_READER_RUNTIME", "auto")
    monkeypatch.delenv("QA_AUTO_TORCH_FREE", raising=False)
    monkeypatch.setenv("QA_READER_MODEL", str(V5))
    assert has_scales(V5)
    assert runtime_for("reader") == reader
    assert f"reader {reader} (auto)" in runtimes_line()
    assert cpu.auto_runtime("reader", frozenset(flags.split()), int8_agrees=True) == reader


def test_an_explicit_runtime_is_kept_and_said_where_it_came_from(monkeypatch):
    monkeypatch.setenv("QA_CPU_FLAGS", SAPPHIRE)
    monkeypatch.setenv("QA_READER_RUNTIME", "onnx-int8")
    assert runtime_for("reader") == "onnx-int8"
    assert "reader onnx-int8 (QA_READER_RUNTIME)" in runtimes_line()
    monkeypatch.setenv("QA_READER_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="unknown reader runtime 'tensorrt'"):
        runtime_for("reader")
    with pytest.raises(ValueError, match="unknown embedder runtime 'torch-bf16'"):
        cpu.resolve("embedder", "torch-bf16")  # bf16 autocast is the reader's only


def test_models_txt_asks_for_auto():
    from qa.models import read_models_file

    roles = read_models_file(ROOT / "models.txt")
    assert roles["reader_runtime"] == "auto" and roles["embedder_runtime"] == "auto"


def test_flags_are_read_from_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_CPU_FLAGS", raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx avx2 fma\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu avx avx2 fma\n")
    flags = cpu._proc_flags(str(info))
    assert flags == {"fpu", "avx", "avx2", "fma"}
    assert cpu.auto_runtime("reader", flags) == "onnx-fp32"
    assert cpu._proc_flags(str(tmp_path / "missing")) == frozenset()
    assert cpu.cpu_flags() == cpu._proc_flags()  # no override: this machine's own


HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn")
ASK = """
import json, sys
from qa.cli import ask_entry
sys.argv = ["ask", "--json", "中关村论坛是哪一年诞生的？"]
try:
    ask_entry()
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))))
""" % (HEAVY,)
SERVE = """
import json, sys
from fastapi.testclient import TestClient
from api.app import create_app
with TestClient(create_app()) as client:
    client.get("/ready")
    while client.get("/ready").status_code != 200:
        import time; time.sleep(0.2)
    print(json.dumps(client.post("/v1/ask", json={"question": "中关村论坛是哪一年诞生的？"}).json()["answer"],
                     ensure_ascii=False))
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))))
""" % (HEAVY,)


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    """A data directory whose ONNX exports and index exist (the export itself uses torch, once)."""
    home = tmp_path_factory.mktemp("onnx-home")
    for flags, reader in ((AVX2_ONLY, None), (VNNI, V5)):
        subprocess.run([sys.executable, "-c", ASK], env=_env(home, flags, reader), cwd=ROOT, check=True,
                       capture_output=True, timeout=900)
    assert list(home.glob("onnx/reader-*/model.onnx")) and list(home.glob("onnx/encoder-*/model.onnx"))
    assert list(home.glob("onnx/reader-*/model.int8.onnx"))
    return home


VNNI = "avx2 fma avx512f avx512_vnni"


def _env(home: Path, flags: str = AVX2_ONLY, reader: Path | None = None) -> dict:
    # auto on a CPU without bf16 or VNNI (mocked): both roles on onnx-fp32; with VNNI a reader with scales (v5) on
    # smoothed int8; with bf16, `ask` still on onnx-fp32 (it answers and exits)
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_RUNTIME") and k not in ("QA_ONNX_CACHE", "QA_READER_MODEL", "QA_AUTO_TORCH_FREE")}
    return {**env, "QA_HOME": str(home), "QA_CPU_FLAGS": flags, "QA_READER_RUNTIME": "auto",
            "QA_EMBEDDER_RUNTIME": "auto", **({"QA_READER_MODEL": str(reader)} if reader else {})}


@pytest.mark.parametrize("script, flags, reader", [(ASK, AVX2_ONLY, None), (SERVE, AVX2_ONLY, None), (ASK, VNNI, V5),
                                                   (ASK, SAPPHIRE, None)],
                         ids=["ask", "serve", "ask-int8", "ask-on-a-bf16-cpu"])
def test_the_onnx_path_answers_without_importing_torch(onnx_home, script, flags, reader):
    done = subprocess.run([sys.executable, "-c", script], env=_env(onnx_home, flags, reader), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []  # none of torch, transformers, sentence-transformers, scikit-learn
    answer = json.loads("\n".join(lines[:-1]))
    assert (answer["answer"] if isinstance(answer, dict) else answer) == "2007年"


def test_torch_bf16_stays_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    from qa.models import model_for
    from qa.reader import Reader
    from retriever.local_models import resolve_model_path

    monkeypatch.setenv("QA_CPU_FLAGS", AVX2_ONLY)  # bf16 autocast would be emulated there, slower than fp32
    reader = Reader.load(resolve_model_path(model_for("reader")), "torch-bf16")
    assert reader.runtime == "torch-bf16" and not reader.bf16


def test_qa_serve_says_what_it_picked_and_never_maps_torch(onnx_home):
    """The real `qa serve`: its first line names each role's runtime and the CPU flags; after an answer, no torch
    library is mapped into the server process (/proc/PID/maps)."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    qa = str(Path(sys.executable).with_name("qa"))
    server = subprocess.Popen([qa, "serve", "--port", str(port)], env={**_env(onnx_home), "COLUMNS": "300"},
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        first = server.stderr.readline()
        assert "reader onnx-fp32 (auto), embedder onnx-fp32 (auto)" in first
        assert "CPU flags: avx2 fma, no avx512_bf16/amx_bf16" in first
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": "中关村论坛是哪一年诞生的？"},
                            timeout=60).json()["answer"]
        assert answer == "2007年"
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "onnxruntime" in maps and "libtorch" not in maps
    finally:
        server.terminate()
        server.wait(timeout=30)
