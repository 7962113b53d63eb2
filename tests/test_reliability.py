"""Nothing lost, nothing broken: crash safety, concurrent writers and readers, and a bounded load run.

Fast forms run with `python -m pytest -q`; the long forms with `python tests/reliability.py --full`, which
also writes the figures to RELIABILITY.md. Everything runs on 127.0.0.1 with throw-away QA_HOME folders.

- Crash safety: SIGKILL at random points while documents are being added, (a) in a forked writer that
  drives CorpusIndex.add (fast: the embedder is loaded once), (b) in the real `qa add` CLI, (c) in a live
  uvicorn server taking POST /v1/documents. Afterwards the index loads, holds every document whose add had
  returned, and only whole documents whose chunks and vectors agree.
- Concurrency: writers add and delete documents while readers ask and list, against a live server.
- Load: N clients asking for T seconds: no errors, p50/p95 latency, server RSS at start and end.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from reliability_support import (FULL, ROOT, Server, article, check_index, percentile, reader_env, record,
                                 rss_mb)

FORK_KILLS = 100 if FULL else 20
CLI_KILLS = 10 if FULL else 3
API_KILLS = 6 if FULL else 2
CONCURRENT_SECONDS = 60 if FULL else 12
LOAD_CLIENTS, LOAD_SECONDS = (32, 60) if FULL else (16, 15)
RSS_GROWTH_BOUND_MB = 200  # the stated bound on server memory growth over a load run (after warm-up)


def bundled() -> dict[str, str]:
    from retriever.documents import bundled_documents

    return {d.id: d.text for d in bundled_documents()}


# ------------------------------------------------------------------------------------------ crash worker
class Worker:
    """tests/crash_worker.py in a subprocess; lines it prints arrive on a queue."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "crash_worker.py")], cwd=ROOT,
                                     env=reader_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        assert self.expect("READY", 300)

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float) -> str | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return ""  # nothing yet
        assert line is not None, "the crash worker died"
        return line

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(max(0.01, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} from the crash worker in {timeout}s")

    def close(self):
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


def run_trial(worker: Worker, root: Path, first: int, count: int, kill_after: float | None,
              anchor: str = "start"):
    """One writer; SIGKILL it kill_after seconds after it starts (anchor "start") or after its first commit
    begins writing (anchor "commit"); None lets it finish. Returns (acked ids, last phase, commit seconds)."""
    worker.send(f"trial {root} {first} {count}")
    pid = int(worker.expect("PID ", 60).split()[1])
    started = time.monotonic()
    t0 = started if anchor == "start" else None
    acked, phase, exited, killed, commit_began, commits = [], "start", None, False, None, []
    while exited is None:
        due = None if killed or kill_after is None or t0 is None else t0 + kill_after
        wait = 120.0 if due is None else due - time.monotonic()
        line = worker.next(wait) if wait > 0 else ""
        if line == "" and due is not None and time.monotonic() >= due:
            os.kill(pid, signal.SIGKILL)  # the worker has not reaped it yet: no EXIT line was read
            killed = True
            continue
        if line.startswith("ADDED "):
            acked += [i for i in line[6:].split(",") if i]
            if commit_began is not None:
                commits.append(time.monotonic() - commit_began)
                commit_began = None
        elif line.startswith("PHASE "):
            phase = line[6:]
            if phase.startswith("write") and commit_began is None:
                commit_began = time.monotonic()
                t0 = t0 or commit_began
        elif line == "DONE":
            phase = "done"
        elif line.startswith("EXIT "):
            exited = int(line.split()[1])
        elif line == "" and killed:
            raise AssertionError("the killed writer was never reaped")
        elif line:
            print("worker:", line)
    if not killed:
        assert exited == 0, f"the writer failed (status {exited})"
    return acked, (phase if killed else "not killed"), max(commits, default=0.0)


def test_sigkill_during_index_writes(worker, tmp_path):
    root = tmp_path / "index"
    worker.send(f"build {root}")
    worker.expect("BUILT", 300)
    expected, must_have = bundled(), set(bundled())
    rng = random.Random(int(os.environ.get("QA_RELIABILITY_SEED", time.time_ns() % 10**6)))
    number = 0

    def trial(kill_after, anchor="start"):
        nonlocal number
        first, count = number, 6
        number += count
        for k in range(first, first + count):
            expected[f"crash-{k:05d}"] = article(k)
        acked, phase, commit = run_trial(worker, root, first, count, kill_after, anchor)
        must_have.update(acked)
        return acked, phase, commit

    started = time.monotonic()
    _, _, commit = trial(None)  # a whole trial, to size the windows the kills land in
    window = time.monotonic() - started
    phases: Counter = Counter()
    n = kills = 0
    while kills < FORK_KILLS:
        n += 1
        assert n < 3 * FORK_KILLS, "the kills keep missing the writers"
        if n % 2:  # anywhere in a writer's life
            _, phase, _ = trial(rng.uniform(0.0, window))
        else:  # inside the write of a generation: from its first file to the add's return
            _, phase, _ = trial(rng.uniform(0.0, commit * 1.1), anchor="commit")
        phases[phase] += 1
        kills += phase != "not killed"
        found = check_index(root, expected, must_have)
        must_have |= found  # whatever is in the index now must stay there
    acked, _, _ = trial(None)  # recovery: a later writer works and cleans up
    assert len(acked) == 6
    found = check_index(root, expected, must_have)
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
    leftovers += [p.name for p in (root / "documents").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind after a clean write: {leftovers}"
    record("crash: SIGKILL of a CorpusIndex.add writer", {
        "kills": FORK_KILLS, "window_seconds": round(window, 2), "commit_seconds": round(commit, 3), "documents_at_end": len(found),
        "acknowledged_lost": 0, "half_documents": 0, "kill_points": dict(phases.most_common()),
    })


def _commit_started(root: Path, before: set[str]) -> bool:
    names = {p.name for p in os.scandir(root)} | {"documents/" + p.name for p in os.scandir(root / "documents")}
    return bool(names - before)


def test_sigkill_during_qa_add(worker, tmp_path):
    """The real CLI: `qa add FOLDER --home HOME`, killed once its write has begun (random delay after that)."""
    home = tmp_path / "home"
    root = home / "index"
    worker.send(f"build {root}")
    worker.expect("BUILT", 300)
    expected, must_have = bundled(), set(bundled())
    rng = random.Random()
    outcomes = Counter()
    for trial in range(CLI_KILLS):
        folder = tmp_path / f"batch-{trial}"
        folder.mkdir()
        batch = [f"crash-{9000 + trial * 10 + k:05d}" for k in range(3)]
        for k, doc_id in enumerate(batch):
            expected[doc_id] = article(9000 + trial * 10 + k)
            (folder / f"{doc_id}.txt").write_text(expected[doc_id], encoding="utf-8")
        before = {p.name for p in os.scandir(root)} | {"documents/" + p.name for p in os.scandir(root / "documents")}
        proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "add", str(folder), "--home", str(home)], cwd=ROOT,
                                env={**reader_env(), "QA_HOME": str(home)}, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 300
        while proc.poll() is None and not _commit_started(root, before):
            assert time.monotonic() < deadline, "qa add never started writing"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.08))  # a commit here takes ~50 ms
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished before the kill"] += 1
        out, _ = proc.communicate(timeout=60)
        acked = {line.split()[1] for line in out.splitlines() if line.startswith("added ")}
        must_have |= acked
        found = check_index(root, expected, must_have)
        assert set(batch) & found in (set(), set(batch)), "one `qa add` went in halfway"
        outcomes["batch in" if set(batch) <= found else "batch out"] += 1
        must_have |= found
    assert outcomes["killed"] >= 1
    record("crash: SIGKILL of `qa add`", {"runs": CLI_KILLS, **dict(outcomes)})


def test_sigkill_server_during_uploads(tmp_path):
    """POST /v1/documents to a live server, SIGKILLed at a random moment; restarted on the same QA_HOME."""
    home = tmp_path / "home"
    expected, must_have = bundled(), set(bundled())
    rng = random.Random()
    number, outcomes = 20000, Counter()
    for trial in range(API_KILLS):
        server = Server(home).start()
        check_index(home / "index", expected, must_have)  # what the server loaded on start is still all there
        acked: list[str] = []
        stop = threading.Event()

        def post():
            nonlocal number
            with httpx.Client(base_url=server.url, timeout=60) as client:
                while not stop.is_set():
                    doc_id = f"api-{number:05d}"
                    expected[doc_id] = article(number)
                    number += 1
                    try:
                        r = client.post("/v1/documents", json={"id": doc_id, "text": expected[doc_id]})
                    except httpx.TransportError:
                        return
                    assert r.status_code == 201, r.text
                    acked.append(doc_id)

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.3, 4.0))
        server.kill()
        stop.set()
        thread.join(60)
        must_have |= set(acked)
        found = check_index(home / "index", expected, must_have)
        must_have |= found
        outcomes["acknowledged"] += len(acked)
    record("crash: SIGKILL of the API server during uploads", {"kills": API_KILLS, **dict(outcomes),
                                                               "documents_at_end": len(must_have)})


# ------------------------------------------------------------------------------------------ live server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("reliability-home")).start()
    yield s
    s.stop()


def check_answer(body: dict, texts: dict[str, str]) -> None:
    """Every passage and citation of one answer agrees with one version of its document."""
    for p in body["passages"]:
        text = texts[p["document"]]
        assert "".join(p["text"].split()) == "".join(text[p["start"]:p["end"]].split()), "passage/offsets disagree"
    for c in body["citations"]:
        assert texts[c["document"]][c["start"]:c["end"]] == c["quote"]


def test_concurrent_writers_and_readers(server):
    texts = bundled()  # every version any document ever had: ids are never reused with other text
    errors: list[str] = []
    live: dict[int, set[str]] = {}
    stop = time.monotonic() + CONCURRENT_SECONDS
    counts = Counter()
    lock = threading.Lock()

    def writer(w: int):
        rng, mine, n = random.Random(w), set(), 0
        live[w] = mine
        with httpx.Client(base_url=server.url, timeout=120) as c:
            while time.monotonic() < stop:
                if mine and rng.random() < 0.4:
                    doc_id = rng.choice(sorted(mine))
                    r = c.delete(f"/v1/documents/{doc_id}")
                    if r.status_code != 200:
                        errors.append(f"delete {doc_id}: {r.status_code} {r.text[:200]}")
                        return
                    mine.discard(doc_id)
                    counts["deletes"] += 1
                else:
                    k = 30000 + w * 1000 + n
                    n += 1
                    doc_id = f"cw{w}-{k}"
                    with lock:
                        texts[doc_id] = article(k)
                    r = c.post("/v1/documents", json={"id": doc_id, "text": texts[doc_id]})
                    if r.status_code != 201 or r.json()["added"] != [doc_id]:
                        errors.append(f"add {doc_id}: {r.status_code} {r.text[:200]}")
                        return
                    mine.add(doc_id)
                    counts["adds"] += 1

    def reader(r_: int):
        rng = random.Random(100 + r_)
        with httpx.Client(base_url=server.url, timeout=120) as c:
            while time.monotonic() < stop:
                if rng.random() < 0.3:
                    r = c.get("/v1/documents")
                    if r.status_code != 200:
                        errors.append(f"list: {r.status_code} {r.text[:200]}")
                        continue
                    ids = [d["id"] for d in r.json()["documents"]]
                    if len(ids) != len(set(ids)):
                        errors.append("duplicate ids in the list")
                    counts["lists"] += 1
                    continue
                k = 30000 + rng.randrange(3) * 1000 + rng.randrange(20)
                question = rng.choice([f"观鸟节第{k}期记录到多少种鸟类？", "中关村论坛是哪一年诞生的？", "火星上有多少只猫？"])
                r = c.post("/v1/ask", json={"question": question})
                if r.status_code != 200:
                    errors.append(f"ask: {r.status_code} {r.text[:200]}")
                    continue
                with lock:
                    snapshot = dict(texts)
                try:
                    check_answer(r.json(), snapshot)
                except (AssertionError, KeyError) as exc:
                    errors.append(f"inconsistent answer: {exc!r}")
                counts["asks"] += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CONCURRENT_SECONDS + 300)
    assert not errors, errors[:5]
    listed = httpx.get(server.url + "/v1/documents", timeout=60).json()["documents"]
    ids = [d["id"] for d in listed]
    assert len(ids) == len(set(ids)), "duplicated documents"
    wanted = set(bundled()) | set().union(*live.values())
    assert set(ids) == wanted, f"lost {sorted(wanted - set(ids))[:5]}, extra {sorted(set(ids) - wanted)[:5]}"
    for doc_id in sorted(set().union(*live.values()))[:10]:
        assert httpx.get(f"{server.url}/v1/documents/{doc_id}", timeout=60).json()["text"] == texts[doc_id]
    check_index(server.home / "index", texts, wanted)
    assert counts["adds"] and counts["asks"]
    record("concurrency: 3 writers + 4 readers on a live server", {
        "seconds": CONCURRENT_SECONDS, **dict(counts), "errors": 0, "documents_at_end": len(ids)})


def ask_load(url: str, clients: int, seconds: float, questions: list[str]):
    """`clients` threads asking in a loop for `seconds`: (latencies of good answers, errors, elapsed)."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def client(n: int):
        with httpx.Client(base_url=url, timeout=300) as c:
            k = n
            while time.monotonic() < stop:
                t = time.perf_counter()
                try:
                    r = c.post("/v1/ask", json={"question": questions[k % len(questions)]})
                    ok = r.status_code == 200 and "answer" in r.json()
                    if not ok:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t)
                k += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    return latencies, errors, time.monotonic() - started


def test_load(server):
    """Memory: RSS is taken after a short warm-up at full concurrency (thread pools and allocator arenas
    reach their working size there), then again after the run; growth beyond the bound would be a leak."""
    questions = ["中关村论坛是哪一年诞生的？", "西湖大学校长是谁？", "量子计算云平台叫什么？", "火星上有多少只猫？"]
    rss_cold = rss_mb(server.pid)
    _, warm_errors, _ = ask_load(server.url, LOAD_CLIENTS, 10 if FULL else 5, questions)
    assert not warm_errors, warm_errors[:5]
    rss_start = rss_mb(server.pid)
    latencies, errors, elapsed = ask_load(server.url, LOAD_CLIENTS, LOAD_SECONDS / 2, questions)
    rss_mid = rss_mb(server.pid)  # growth that keeps going in the second half would be a leak
    more = ask_load(server.url, LOAD_CLIENTS, LOAD_SECONDS / 2, questions)
    latencies, errors, elapsed = latencies + more[0], errors + more[1], elapsed + more[2]
    rss_end = rss_mb(server.pid)
    figures = {
        "clients": LOAD_CLIENTS, "seconds": LOAD_SECONDS, "requests": len(latencies) + len(errors),
        "errors": len(errors), "throughput_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(percentile(latencies, 50) * 1000), "p95_ms": round(percentile(latencies, 95) * 1000),
        "max_ms": round(max(latencies, default=0) * 1000), "rss_before_warm_up_mb": round(rss_cold),
        "rss_start_mb": round(rss_start), "rss_half_way_mb": round(rss_mid), "rss_end_mb": round(rss_end), "rss_growth_bound_mb": RSS_GROWTH_BOUND_MB,
    }
    record("load: /v1/ask", figures)
    assert not errors, errors[:5]
    assert latencies
    assert rss_end - rss_start <= RSS_GROWTH_BOUND_MB, figures
