"""Fuzzing: schemathesis over the whole OpenAPI spec, hypothesis over normalising, chunking and questions.

schemathesis (every operation, nothing excluded, max_examples per operation: 25, or 150 in the full run)
calls the ASGI app in-process with generated valid and invalid requests and applies two checks:
  - not_a_server_error: no 5xx response, whatever the input;
  - response_schema_conformance: when the spec documents a response for the status, the body conforms.
(Status-code conformance is not checked: 401/413/415/503 are deliberate and not all listed in the spec.)
The app runs over its own throw-away index, so generated uploads and deletes touch nothing else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_support import FULL, isolated_pipeline, record


import schemathesis  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

from retriever.chunking import chunk_normalized  # noqa: E402
from retriever.normalize import normalize  # noqa: E402

API_EXAMPLES = 150 if FULL else 25
TEXT_EXAMPLES = 1000 if FULL else 150
QUESTION_EXAMPLES = 150 if FULL else 25

# hostile characters hypothesis does not draw by default: lone surrogates, bidi controls, NUL, separators
HOSTILE = ["\ud800", "\udfff", "\ud83d", "\u202e", "\u202d", "\u200f", "\u200b", "\u2066", "\x00", "\x1b", "\u2028",
           "\u2029", "\x0b", "\x0c", "\x85", "\r", "\r\n", "\n", "\n\n", "\u3000", "\u00a0", "\t", "\ufeff", "\ufffe",
           "🐦", "👨‍👩‍👧", "🇨🇳", "é", "e\u0301", "ﷺ", "עברית", "العربية", "。", "！", "？", "…", "；", "，", "“", "」",
           "▲", "龍", "𠀀", "中文", "2023年", "U.S.", " "]
hostile_text = st.lists(st.one_of(st.characters(), st.sampled_from(HOSTILE)), max_size=200).map("".join)


# ------------------------------------------------------------------------------------------ schemathesis
@pytest.fixture(scope="module")
def fuzz_app(pipeline):
    from api.app import create_app

    with tempfile.TemporaryDirectory(prefix="qa-fuzz-") as home:
        yield create_app(pipeline=isolated_pipeline(pipeline, Path(home)))


def test_openapi_fuzz(fuzz_app):
    """Every operation of /openapi.json, valid and invalid requests (schemathesis's Python API: its pytest
    plugin does not run under pytest 9 yet)."""
    from schemathesis import GenerationMode

    api_schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}
    for operation in operations:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=strategy)
        @settings(max_examples=API_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=not FULL, database=None)
        def run(case):
            response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
            calls[operation.label] = calls.get(operation.label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        run()
    record("fuzz: schemathesis over the OpenAPI spec", {
        "operations": len(operations), "calls": sum(calls.values()), "max_examples_per_operation": API_EXAMPLES,
        "status_codes": dict(sorted(statuses.items())), "server_errors": 0})


# ------------------------------------------------------------------------------------------ normalising
def check_normalized(text: str):
    norm = normalize(text)
    assert norm.original == text and len(norm.offsets) == len(norm.text)
    assert all(a < b for a, b in zip(norm.offsets, norm.offsets[1:])), "offsets must increase"
    for ch, at in zip(norm.text, norm.offsets):
        assert 0 <= at < len(text)
        assert ch == text[at] or (ch in " \n" and text[at].isspace()), (ch, text[at])
    return norm


def check_chunks(text: str, size: int = 200, overlap: int = 60):
    norm = check_normalized(text)
    chunks = chunk_normalized("doc", norm, size, overlap)
    for c in chunks:
        assert c.text == norm.text[c.norm_start:c.norm_end] and c.text.strip()
        assert 0 <= c.start < c.end <= len(text)
        assert (c.start, c.end) == norm.to_original(c.norm_start, c.norm_end)
        # the original span holds the same characters; only whitespace differs
        assert "".join(text[c.start:c.end].split()) == "".join(c.text.split())
    covered = "".join(norm.text[c.norm_start:c.norm_end] for c in chunks)
    assert set("".join(norm.text.split())) <= set(covered) | set(" \n")


@given(hostile_text)
@settings(max_examples=TEXT_EXAMPLES, deadline=None)
def test_normalize_and_chunk_any_unicode(text):
    check_chunks(text)


@given(st.lists(st.one_of(hostile_text, st.sampled_from(["", " ", "　", "▲", "12"])), max_size=30),
       st.integers(5, 120), st.integers(0, 60))
@settings(max_examples=TEXT_EXAMPLES, deadline=None)
def test_chunk_any_lines_and_sizes(lines, size, overlap):
    check_chunks("\n".join(lines), size, min(overlap, size - 1))


@pytest.mark.parametrize("kind", ["hanzi", "latin-no-space", "spaces", "nul-and-surrogates", "emoji", "rtl"])
def test_one_megabyte_line(kind):
    unit = {"hanzi": "中国新闻报道", "latin-no-space": "abcdefghij", "spaces": "a b  c\t",
            "nul-and-surrogates": "字\x00\ud800\udfff", "emoji": "👨‍👩‍👧🐦", "rtl": "\u202eעברית العربية"}[kind]
    text = unit * (1_000_000 // len(unit))
    norm = normalize(text)
    assert len(norm.offsets) == len(norm.text)
    chunks = chunk_normalized("big", norm, 200, 60)
    assert chunks and chunks[-1].end <= len(text)
    for c in chunks[:: max(1, len(chunks) // 50)]:
        assert "".join(text[c.start:c.end].split()) == "".join(c.text.split())


# ------------------------------------------------------------------------------------------ questions
@given(st.one_of(hostile_text, st.text(max_size=600), st.sampled_from(["", " ", "\x00", "\ud800", "？" * 501])),
       st.lists(st.one_of(hostile_text, st.just("\ud800")), max_size=4))
@settings(max_examples=QUESTION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_question_gets_an_answer_or_a_clear_refusal(pipeline, question, history):
    from qa.pipeline import QuestionError
    from qa.types import Answer

    try:
        answer = pipeline.ask(question, history=history)
    except QuestionError as exc:
        assert str(exc)
        return
    assert isinstance(answer, Answer)
    assert (answer.answer is None) == (answer.citations == [])
    for c in answer.citations:
        assert pipeline.index.documents[c.document].text[c.start:c.end] == c.quote
