"""The README runs as written: every `ask` / `qa` command in its code blocks, in order, in one fresh data directory;
every `curl` example against the server its own `qa serve` line starts, answering with the status it shows
(`# → 200`); every Python example against that server. A console block's shown answer must still be the answer.

The commands run through bash from the repository root, with the venv's `ask` / `qa` first on the PATH and no QA_*
settings but QA_HOME, exactly as a reader who activated the venv types them. The one mapping: the server listens on
a free port instead of 8000 (another server may hold 8000), and the examples' URLs follow it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa.client import Client, QAClientError
from tests.reliability_support import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
STATUS = re.compile(r"\s#\s*→\s*(\d{3})\b.*$")
PORT_IN_URL = re.compile(r"(127\.0\.0\.1|localhost):8000")
MAX_README_BYTES = 15 * 1024


@dataclass
class Example:
    kind: str  # "cli", "serve", "curl" or "python"
    text: str
    line: int
    shown: list[str]  # a console block's output lines
    status: int | None = None

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.text.split(chr(10))[0][:40]}"


def examples(markdown: str) -> list[Example]:
    """The runnable examples, in README order."""
    found = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", markdown, re.M | re.S):
        language, body = block.group(1), block.group(2)
        first_line = markdown[: block.start()].count("\n") + 2
        if language == "python":
            found.append(Example("python", body, first_line - 1, []))
            continue
        if language not in ("bash", "console", "sh"):
            continue
        current = None
        for offset, line in enumerate(body.replace("\\\n", "\0").splitlines()):
            if language == "console" and not line.startswith("$ "):
                if current is not None and line.strip():
                    current.shown.append(line)
                continue
            command = line.removeprefix("$ ").replace("\0", "\\\n").strip()
            word = command.split(" ", 1)[0]
            current = None
            if word in ("ask", "qa"):
                kind = "serve" if command.split()[:2] == ["qa", "serve"] else "cli"
                current = Example(kind, command, first_line + offset, [])
            elif word == "curl":
                status = STATUS.search(command)
                current = Example("curl", STATUS.sub("", command) if status else command, first_line + offset, [],
                                  int(status.group(1)) if status else None)
            if current:
                found.append(current)
    return found


EXAMPLES = examples(README.read_text(encoding="utf-8"))


class Reader:
    """A reader of the README: one data directory, one server once `qa serve` has been typed."""

    def __init__(self, home: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        self.env.update(QA_HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", COLUMNS="120")
        self.port = free_port()
        self.server: subprocess.Popen | None = None

    def url(self, text: str) -> str:
        return PORT_IN_URL.sub(f"127.0.0.1:{self.port}", text)

    def bash(self, command: str, timeout: float = 1200) -> subprocess.CompletedProcess:  # a busy 2-core CI box
        return subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def serve(self, command: str) -> None:
        command = shlex.join(shlex.split(command, comments=True))  # its comment would swallow the added --port
        self.server = subprocess.Popen(["bash", "-c", f"exec {command} --port {self.port}"], cwd=ROOT, env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                       start_new_session=True)
        try:
            with Client(f"http://127.0.0.1:{self.port}") as client:
                state = client.wait_ready(timeout=300)
        except QAClientError as exc:
            state = exc
        log = self.server.stderr.read() if self.server.poll() is not None else ""
        assert getattr(state, "ready", False), f"`{command}`: {state}\n{log}"

    def stop(self) -> None:
        if self.server and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=30)


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    reader = Reader(tmp_path_factory.mktemp("readme-home"))
    yield reader
    reader.stop()


def test_readme_is_short_and_its_examples_were_found():
    assert len(README.read_bytes()) <= MAX_README_BYTES, "README.md is the front door: keep it within 15 KB"
    kinds = [e.kind for e in EXAMPLES]
    assert kinds.count("cli") >= 5 and kinds.count("serve") == 1 and kinds.count("curl") >= 3, kinds
    assert kinds.index("serve") < kinds.index("curl"), "the server is started before the curl examples"
    assert all(e.status for e in EXAMPLES if e.kind == "curl"), "every curl example shows its status (# → 200)"


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)#:]+(?:#[^)]*)?)\)", text)}
    assert targets, "no relative links found"
    assert [t for t in targets if not (ROOT / t).exists()] == []


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_readme_example_runs(example: Example, reader: Reader):
    if example.kind == "serve":
        reader.serve(example.text)
        return
    if example.kind == "python":
        assert reader.server is not None, "a Python example before `qa serve`"
        result = subprocess.run([sys.executable, "-c", reader.url(example.text)], cwd=ROOT, env=reader.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return
    if example.kind == "curl":
        assert reader.server is not None, "a curl example before `qa serve`"
        result = reader.bash(reader.url(example.text) + " -w '\\n%{http_code}'", timeout=120)
        assert result.returncode == 0, result.stderr
        body, _, status = result.stdout.rpartition("\n")
        assert int(status) == example.status, f"{example.text}\n→ {status} {body[:500]}"
        return
    result = reader.bash(example.text)
    assert result.returncode == 0, f"{example.text}\n{result.stdout}\n{result.stderr}"
    if example.shown:  # the answer line shown under the command is still the answer
        shown = example.shown[0].split("  confidence")[0]
        printed = [line for line in result.stdout.splitlines() if "━" not in line]  # not the first build's bar
        got = printed[0].split("  confidence")[0] if printed else ""
        assert got == shown, f"{example.text}: the README shows {shown!r}, the command now prints {got!r}"
