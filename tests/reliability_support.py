"""Shared helpers for the reliability tests (crash, concurrency, load, fuzz, hostile input).

FULL is on when QA_RELIABILITY=full (set by `python tests/reliability.py --full`); the tests then run their
long forms. record() appends figures to the JSON Lines file named by QA_RELIABILITY_REPORT (the runner turns
it into RELIABILITY.md); without that variable figures are only printed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL = os.environ.get("QA_RELIABILITY") == "full"
LOOPBACK = "127.0.0.1"


def reader_env() -> dict[str, str]:
    """Environment for child processes: no token, the project importable."""
    env = dict(os.environ)
    env.pop("QA_API_TOKEN", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def record(name: str, figures: dict) -> None:
    line = json.dumps({"test": name, "full": FULL, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures},
                      ensure_ascii=False)
    print(f"\n[reliability] {line}")
    target = os.environ.get("QA_RELIABILITY_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------------------ live server
class Server:
    """`uvicorn api.app:create_app --factory` on 127.0.0.1 and a free port, in its own process."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, log: Path | None = None):
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.env = {**reader_env(), "QA_HOME": str(self.home), **(env or {})}
        self.log = log or self.home.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> "Server":
        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", LOOPBACK,
             "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the server did not get ready"
            try:
                r = httpx.get(self.url + "/ready", timeout=5)
                if r.status_code == 200:
                    return self
                assert r.json().get("status") != "failed", r.text
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ index checks
def article(n: int) -> str:
    """A deterministic, unique article for document number n (length and content vary with n)."""
    city = ["青岚", "白鹭", "云溪", "龍潭", "海棠", "松柏"][n % 6]
    body = "".join(f"第{n}号报道第{k}段：{city}湖湿地公园记录到{n * 7 + k}种鸟类，游客{n + k}万人次。"
                   for k in range(1 + n % 5))
    return f"{city}观鸟节第{n}期开幕 🐦\n{body}\n（记者 王{n}）"


def load_index(root: Path):
    """The live generation as CorpusIndex.open would load it (None when it cannot be loaded)."""
    from retriever.index import CorpusIndex

    index = CorpusIndex(Path(root), embedder=None)
    return index._load_current()


def check_index(root: Path, expected: dict[str, str], must_have: set[str]) -> set[str]:
    """The index loads, holds every acknowledged document, and only whole, known documents.

    expected maps every id that may be in the index to its exact text; returns the ids found.
    """
    from retriever.normalize import normalize

    state = load_index(root)
    assert state is not None, f"the index at {root} does not load"
    docs = state.documents
    missing = must_have - set(docs)
    assert not missing, f"acknowledged documents lost: {sorted(missing)[:5]}"
    for doc_id, doc in docs.items():
        assert doc_id in expected, f"unknown document {doc_id!r} in the index"
        assert doc.text == expected[doc_id], f"document {doc_id} is not whole ({len(doc.text)} characters)"
    listed = [cid for meta in state.manifest.documents.values() for cid in meta["chunk_ids"]]
    assert len(listed) == len(set(listed)) == len(state.chunks) == len(state.store), "chunks and vectors disagree"
    assert set(listed) == set(state.chunks)
    for cid, chunk in state.chunks.items():
        norm = normalize(docs[chunk.doc_id].text)
        assert norm.text[chunk.norm_start:chunk.norm_end] == chunk.text, f"chunk {cid} does not match its document"
        assert cid in state.manifest.documents[chunk.doc_id]["chunk_ids"]
    return set(docs)


def isolated_pipeline(pipeline, home: Path):
    """The session pipeline's models over an index of its own (bundled articles) in `home`: tests that write
    documents or fuzz the API do not disturb the shared index, and load no second copy of the models."""
    import copy
    import dataclasses

    from retriever.documents import bundled_documents
    from retriever.index import CorpusIndex

    own = copy.copy(pipeline)
    own.settings = s = dataclasses.replace(pipeline.settings, home=Path(home), api_token=None)
    own.index = CorpusIndex.open(Path(home) / "index", pipeline.index.embedder, bundled_documents, s.chunk_size,
                                 s.overlap)
    own.retriever = dataclasses.replace(pipeline.retriever, index=own.index)  # same models, own index
    return own
