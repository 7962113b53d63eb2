"""The `ask` and `qa` commands as a user runs them: separate processes sharing one data directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DOC_000, DOC_002, original
from tests.test_documents import make_pdf

BIN = Path(sys.executable).parent


def run(home: Path, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_HOME": str(home), "COLUMNS": "200"}
    result = subprocess.run([str(BIN / args[0]), *args[1:]], env=env, input=input, capture_output=True, text=True,
                            timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


def test_ask_json_gives_a_cited_answer(home):
    answer = json.loads(run(home, "ask", "中关村论坛是在哪一年创办的？", "--json").stdout)
    assert "2007" in answer["answer"]
    c = answer["citations"][0]
    assert original(c["document"])[c["start"] : c["end"]] == c["quote"]


def test_ask_plain_output_and_errors(home):
    out = run(home, "ask", "火星表面的平均温度是多少摄氏度？").stdout
    assert "没有找到答案" in out
    bad = run(home, "ask", "   ", check=False)
    assert bad.returncode == 2 and "empty" in bad.stderr
    missing = run(home, "ask", "问题", "--corpus", str(home / "nope"), check=False)
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_ask_json_lines_from_stdin(home):
    out = run(home, "ask", "--json", "-", input="中关村论坛是在哪一年创办的？\n\n？？\n火星表面的平均温度是多少摄氏度？\n").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    assert "2007" in rows[0]["answer"] and rows[0]["citations"][0]["text"]
    assert "error" in rows[1]
    assert rows[2]["answer"] is None


def test_bad_corpus_folders_get_one_line_errors(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.docx").write_bytes(b"PK\x03\x04")
    result = run(home, "ask", "问题", "--corpus", str(empty), check=False)
    assert result.returncode == 2 and "no .txt" in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.txt").write_bytes(b"\xff\xfe\x00")  # UTF-16 BOM with a broken body
    result = run(home, "ask", "问题", "--corpus", str(broken), check=False)
    assert result.returncode == 2 and "bad.txt" in result.stderr and "Traceback" not in result.stderr


def test_traditional_question_is_answered_with_the_original_span(home):
    answer = json.loads(run(home, "ask", "中關村論壇是在哪一年創辦的？", "--json").stdout)
    assert answer["answer"] is not None and "2007" in answer["answer"]
    assert answer["citations"][0]["document"] == DOC_002


def test_add_pdf_and_html_then_remove_persisting_across_processes(home, tmp_path):
    pdf = make_pdf(tmp_path / "port.pdf", ["青岛港启用无人集装箱码头", "12月3日，青岛港第三座自动化集装箱码头正式投入运",
                                            "营。该码头由青岛港集团与华为公司联合研发，全年设计吞吐能力为520万标准箱。"])
    html = tmp_path / "birds.html"
    html.write_text("<html><body><h1>青岚湖观鸟节开幕</h1><script>alert(1)</script>"
                    "<p>第七届青岚湖观鸟节于4月12日开幕，今年共记录到鸟类163种，其中白鹤是首次在湖区被观测到。</p>"
                    "</body></html>", encoding="utf-8")
    out = run(home, "qa", "add", str(pdf), str(html)).stdout
    assert "added port" in out and "added birds" in out
    assert "already indexed" in run(home, "qa", "add", str(pdf)).stdout

    listed = {d["id"] for d in json.loads(run(home, "qa", "list", "--json").stdout)}
    assert listed == {DOC_000, DOC_002, "port", "birds"}

    answer = json.loads(run(home, "ask", "青岛港的新码头一年能处理多少标准箱？", "--json").stdout)
    assert answer["answer"] is not None and "520万" in answer["answer"]
    assert answer["citations"][0]["document"] == "port"
    answer = json.loads(run(home, "ask", "今年观鸟节一共记录到多少种鸟类？", "--json").stdout)
    assert answer["answer"] is not None and "163" in answer["answer"]

    assert "removed port" in run(home, "qa", "remove", "port").stdout
    assert run(home, "qa", "remove", "port", check=False).returncode == 1
    answer = json.loads(run(home, "ask", "青岛港的新码头一年能处理多少标准箱？", "--json").stdout)
    assert all(c["document"] != "port" for c in answer["citations"])
    assert all(p["document"] != "port" for p in answer["passages"])
    # the bundled articles are untouched
    assert "2007" in json.loads(run(home, "ask", "中关村论坛是在哪一年创办的？", "--json").stdout)["answer"]
    run(home, "qa", "remove", "birds")


def test_qa_add_refuses_bad_files_clearly(home, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02" * 1000)
    result = run(home, "qa", "add", str(tmp_path / "empty.txt"), str(tmp_path / "blob.txt"), check=False)
    assert result.returncode == 1
    assert "no text" in result.stderr and "binary" in result.stderr


def test_qa_read_reader_alone(home):
    context = original(DOC_002).replace("\n", "")
    lines = [
        {"id": "a", "question": "中关村论坛是哪一年诞生的？", "context": context[:400]},
        {"id": "b", "question": "火星表面的平均温度是多少？", "context": "今天天气晴朗，气温适宜，市民纷纷出门踏青。"},
        {"question": 3},
    ]
    out = run(home, "qa", "read", "-", input="\n".join(json.dumps(x, ensure_ascii=False) for x in lines)).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["id"] == "a" and "2007" in rows[0]["answer"]
    assert context[:400][rows[0]["start"] : rows[0]["end"]] == rows[0]["answer"]
    assert rows[1]["answer"] is None
    assert 0.0 <= rows[1]["confidence"] < rows[0]["confidence"] <= 1.0
    assert "error" in rows[2]


def test_qa_eval_end_to_end_and_retrieval(home, tmp_path):
    questions = tmp_path / "dev.jsonl"
    rows = [
        {"id": "a", "question": "中关村论坛是哪一年诞生的？", "answers": ["2007年"], "kind": "factoid", "split": "tune"},
        {"id": "b", "question": "火星表面的平均温度是多少？", "answers": [], "kind": "unanswerable", "split": "tune"},
        {"id": "c", "question": "邓鸿森担任什么职务？", "answers": ["世界知识产权组织总干事"], "kind": "x", "split": "report"},
    ]
    questions.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    report = json.loads(run(home, "qa", "eval", str(questions), "--split", "tune", "--mode", "bm25", "--json").stdout)
    assert report["summary"]["questions"] == 2 and report["summary"]["answerable"] == 1
    assert report["summary"]["em"] == 100.0 and report["summary"]["no_answer_accuracy"] == 100.0
    retrieval = json.loads(run(home, "qa", "eval", str(questions), "--retrieval", "--json").stdout)
    assert set(retrieval) >= {"dense", "bm25", "hybrid"} and retrieval["questions"] == 2
    assert retrieval["bm25"]["recall@5"] == 1.0
    bad = run(home, "qa", "eval", str(questions), "--mode", "sideways", check=False)
    assert bad.returncode == 2 and "unknown retrieval mode" in bad.stderr and "Traceback" not in bad.stderr


def test_qa_eval_refuses_two_choices_of_articles(home, tmp_path):
    result = run(home, "qa", "eval", "--corpus", str(tmp_path), "--distractors", check=False)
    assert result.returncode == 2 and "--corpus and --distractors" in result.stderr


def test_a_bad_early_stop_setting_is_a_clear_error(home, monkeypatch):
    monkeypatch.setenv("QA_EARLY_STOP", "soon")
    result = run(home, "ask", "中关村论坛是哪一年诞生的？", check=False)
    assert result.returncode == 2 and "QA_EARLY_STOP must be a number or off" in result.stderr
    assert "Traceback" not in result.stderr
