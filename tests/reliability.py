"""Run the reliability tests (issue 10) and write their figures to RELIABILITY.md.

    python tests/reliability.py            # the fast forms (as in `python -m pytest -q`), figures to RELIABILITY.md
    python tests/reliability.py --full     # the long forms: 100+10+6 kills, 60 s of concurrency, 32 clients x 60 s,
                                           # 150 schemathesis examples per operation, 1000 hypothesis examples

Extra arguments go to pytest (e.g. -k crash); their figures are then appended to RELIABILITY.md. Everything runs on 127.0.0.1 with throw-away QA_HOME folders.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["tests/test_reliability.py", "tests/test_fuzz.py", "tests/test_hostile.py"]


def main(argv: list[str]) -> int:
    full = "--full" in argv
    extra = [a for a in argv if a != "--full"]
    report = Path(tempfile.mkstemp(prefix="reliability-", suffix=".jsonl")[1])
    env = {**os.environ, "QA_RELIABILITY_REPORT": str(report)}
    if full:
        env["QA_RELIABILITY"] = "full"
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES, *extra],
                           cwd=ROOT, env=env)
    minutes = (time.monotonic() - started) / 60
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines() if line.strip()]
    report.unlink(missing_ok=True)
    if extra:  # a partial run (e.g. -k test_load): add its figures below the last whole run's
        with open(ROOT / "RELIABILITY.md", "a", encoding="utf-8") as f:
            f.write(f"\n# Partial re-run: {' '.join(extra)} ({'full' if full else 'fast'}, "
                    f"{time.strftime('%Y-%m-%d %H:%M')}, exit code {code})\n\n")
            f.write("\n".join(section(row) for row in rows))
        return code
    write_markdown(rows, full, code, minutes)
    return code


def section(row: dict) -> str:
    row = dict(row)
    name = row.pop("test")
    row.pop("full", None)
    row.pop("at", None)
    return "\n".join([f"## {name}", ""] + [f"- {k.replace('_', ' ')}: {json.dumps(v, ensure_ascii=False)}"
                                             for k, v in row.items()] + [""])


def write_markdown(rows: list[dict], full: bool, code: int, minutes: float) -> None:
    lines = [
        "# Reliability figures",
        "",
        "Written by `python tests/reliability.py" + (" --full" if full else "") + "` (issue 10): crash safety, "
        "concurrency, load and fuzzing. The fast forms also run in `python -m pytest -q`; `--full` runs the long "
        "ones. All on 127.0.0.1 with throw-away QA_HOME folders.",
        "",
        f"- run: **{'full' if full else 'fast (CI) forms'}**, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{minutes:.1f} min, pytest exit code {code} ({'all passed' if code == 0 else 'FAILURES'})",
        f"- machine: {os.cpu_count()} CPU cores (shared with a training job), Python {platform.python_version()}",
        "",
    ]
    lines += [section(row) for row in rows]
    lines += [
        "## What is checked",
        "",
        "- crash: after every SIGKILL the index loads (the live generation reads back), holds every document whose "
        "add had returned (acknowledged), holds only documents whose text is exactly what was sent, chunks and "
        "FAISS vectors agree one to one, and a `qa add` batch is all in or all out; a later writer recovers and "
        "leaves no temporary files.",
        "- concurrency: no non-2xx answer, no lost or duplicated document at the end, every passage and citation of "
        "every answer agrees with its document's text (one consistent index snapshot per question).",
        "- load: zero errors; server RSS taken after a warm-up at full concurrency and after the run; growth must "
        "stay under the stated bound.",
        "- schemathesis: every operation of /openapi.json, valid and invalid requests; checks `not_a_server_error` "
        "(no 5xx) and `response_schema_conformance`.",
        "- hypothesis: normalising and chunking of any Unicode (lone surrogates, bidi, NUL, emoji, 1 MB lines) map "
        "offsets back to the original; any question string gives an Answer or a QuestionError.",
        "",
    ]
    (ROOT / "RELIABILITY.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"figures written to {ROOT / 'RELIABILITY.md'}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
