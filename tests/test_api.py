"""The HTTP API with the real models: status codes, the Answer JSON, chat completions (also through the
official openai SDK against a live uvicorn server), documents, tokens and bad input.

Assertions hold for any sane reader: shapes, offsets, refusals for nonsense, status codes; the few
answer-text checks use easy questions, at the shipped no-answer threshold.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

from fastapi.testclient import TestClient  # noqa: E402

from conftest import DOC_000, DOC_002, original  # noqa: E402
from qa.types import Answer, DocumentInfo, DocumentsChanged  # noqa: E402

NONSENSE = "火星上有多少只猫？"
EASY = "中关村论坛是哪一年诞生的？"


# fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def app(pipeline):
    from api.app import create_app

    return create_app(pipeline=pipeline)


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app):
    """uvicorn on 127.0.0.1 and a free port, in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == response.status_code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def check_citations(answer: Answer, texts: dict[str, str]) -> None:
    for c in answer.citations:
        text = texts[c.document]
        assert text[c.start:c.end] == c.quote
        assert c.passage_start <= c.start < c.end <= c.passage_end


def bundled_texts() -> dict[str, str]:
    return {DOC_000: original(DOC_000), DOC_002: original(DOC_002)}


# start-up --------------------------------------------------------------------------------------------------------
def test_health_answers_at_once_and_ready_waits_for_the_models(session_home, pipeline):
    from api.app import create_app
    from qa.settings import Settings

    settings = Settings()
    settings.home = session_home
    app = create_app(settings)  # no pipeline: the lifespan loads it in a background thread
    with TestClient(app) as c:
        started = time.monotonic()
        assert c.get("/health").json() == {"status": "ok"}
        early = c.get("/ready")
        assert time.monotonic() - started < 2
        assert early.status_code == 503 and early.json()["ready"] is False
        assert early.json()["status"] == "loading"
        assert c.post("/v1/ask", json={"question": EASY}).status_code == 503
        assert app.state.service.wait(600)
        ready = c.get("/v1/ready")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True and ready.json()["documents"] >= 2
        assert c.post("/v1/ask", json={"question": EASY}).status_code == 200


# ask --------------------------------------------------------------------------------------------------------------
def test_ask_returns_exactly_the_answer_json(client):
    r = client.post("/v1/ask", json={"question": EASY})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == set(Answer.model_fields)
    answer = Answer.model_validate(body)
    assert answer.question == EASY and answer.searched_question == EASY
    assert len(answer.passages) == 3
    assert (answer.answer is None) == (answer.citations == [])
    check_citations(answer, bundled_texts())


def test_ask_easy_question_answers_with_exact_offsets(client):
    r = client.post("/v1/ask", json={"question": EASY, "top_k": 3})
    answer = Answer.model_validate(r.json())
    assert len(answer.passages) == 3
    assert answer.answer is not None and "2007" in answer.answer
    assert answer.citations and answer.citations[0].document == DOC_002
    check_citations(answer, bundled_texts())


def test_ask_nonsense_is_refused(client):
    body = client.post("/v1/ask", json={"question": NONSENSE}).json()
    assert body["answer"] is None and body["citations"] == []
    assert body["passages"]  # the closest passages are still shown


def test_ask_with_history_rewrites_the_follow_up(client):
    body = client.post("/v1/ask", json={"question": "他认为人才要怎样才能变得更好？",
                                        "history": ["西湖大学校长是谁？", "施一公"]}).json()
    assert body["question"] == "他认为人才要怎样才能变得更好？"
    assert "施一公" in body["searched_question"]
    assert any("更充分交流" in p["text"] for p in body["passages"])


@pytest.mark.parametrize("content, status, words", [
    ('{"question": ', 400, "malformed JSON"),
    ("[]", 422, ""),
    ('"中关村"', 422, ""),
    ('{"question": 5}', 422, "question"),
    ('{"question": ["a"]}', 422, "question"),
    ("{}", 422, "question"),
    ('{"question": ""}', 422, "empty"),
    ('{"question": "   \\n "}', 422, "empty"),
    ('{"question": "' + "问" * 600 + '"}', 422, "longer"),
    ('{"question": "中关村论坛", "top_k": 0}', 422, "top_k"),
    ('{"question": "中关村论坛", "top_k": "many"}', 422, "top_k"),
    ('{"question": "中关村论坛", "history": "施一公"}', 422, "history"),
    ('{"question": "中关村论坛", "colour": "red"}', 422, "colour"),
    ("", 422, "missing"),
])
def test_ask_bad_input_is_a_clear_4xx(client, content, status, words):
    r = client.post("/v1/ask", content=content.encode(), headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in error_of(r)


def test_ask_wrong_content_type_and_huge_body(client):
    r = client.post("/v1/ask", content="中关村论坛是哪一年诞生的？".encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in error_of(r)
    huge = json.dumps({"question": "问" * 10, "history": ["字" * 3_000_000]})
    r = client.post("/v1/ask", content=huge.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in error_of(r)


def test_unknown_endpoint_and_method(client):
    assert client.get("/v1/nothing").status_code == 404
    r = client.get("/v1/ask")
    assert r.status_code == 405 and "GET" in error_of(r)


# chat completions ---------------------------------------------------------------------------------------------
def chat(client, messages, **extra):
    return client.post("/v1/chat/completions", json={"model": "qa-zh", "messages": messages, **extra})


def test_chat_completion_shape(client):
    r = chat(client, [{"role": "system", "content": "你是助手"}, {"role": "user", "content": NONSENSE}])
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "qa-zh"
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant" and body["choices"][0]["finish_reason"] == "stop"
    assert "文章中没有找到答案" in message["content"]
    answer = Answer.model_validate(body["qa"])
    assert answer.answer is None and answer.question == NONSENSE
    assert body["usage"]["total_tokens"] > 0


def test_chat_answer_text_has_numbered_sources(client):
    body = chat(client, [{"role": "user", "content": [{"type": "text", "text": EASY}]}]).json()
    content = body["choices"][0]["message"]["content"]
    answer = Answer.model_validate(body["qa"])
    assert content.startswith("答案：") and answer.answer in content.splitlines()[0]
    assert "[1] 《" in content and answer.citations[0].title in content
    check_citations(answer, bundled_texts())


def test_chat_three_turn_follow_up(client):
    messages = [{"role": "user", "content": "北京量子信息科学研究院的哪位研究员介绍了量子计算云平台？"},
                {"role": "assistant", "content": "答案：范桁。\n\n来源：\n[1] 《…》：“…”"},
                {"role": "user", "content": "他介绍的量子计算云平台叫什么？"},
                {"role": "assistant", "content": "答案：Quafu。\n\n来源：\n[1] 《…》：“…”"},
                {"role": "user", "content": "它最多可同时操控多少个量子比特？"}]
    qa = chat(client, messages).json()["qa"]
    assert qa["question"] == "它最多可同时操控多少个量子比特？"
    assert qa["searched_question"].startswith("Quafu")
    assert any("136" in p["text"] for p in qa["passages"])


# follow-ups over the bundled articles: earlier turns (question, answer, ...), the follow-up, the right answer
FOLLOW_UPS = [
    (["百度创始人是谁？", "李彦宏"], "他认为拥有先进AI技术的国家需要怎么做？", "通力协作"),
    (["夺得大赛冠军的是哪家公司？", "北京深势科技有限公司"], "这家公司的政企事务副总裁是谁？", "刘会师"),
    (["2023中关村论坛在哪个城市举行？", "北京"], "那里的数字经济占比提升至多少？", "41.6%"),
    (["北京术锐机器人股份有限公司的副总经理是谁？", "胡慧慧"], "她介绍的机械臂有多长的展开距离？", "7厘米"),
    (["北京量子信息科学研究院的哪位研究员介绍了量子计算云平台？", "范桁", "他介绍的量子计算云平台叫什么？", "Quafu"],
     "它最多可同时操控多少个量子比特？", "136"),
    (["中关村论坛吸引了多少个国家和地区的嘉宾？", "86个国家和地区", "论坛期间累计签约多少个合作项目？", "129个"],
     "该论坛是哪一年诞生的？", "2007年"),
]


@pytest.mark.parametrize("history, question, expected", FOLLOW_UPS)
def test_chat_follow_ups_are_answered_correctly(client, history, question, expected):
    roles = ["user", "assistant"] * len(history)
    messages = [{"role": r, "content": c} for r, c in zip(roles, history)] + [{"role": "user", "content": question}]
    body = chat(client, messages).json()
    qa = body["qa"]
    assert qa["answer"] is not None and expected in qa["answer"], qa["searched_question"]
    assert qa["searched_question"] != question  # the pronoun was resolved before retrieval
    assert qa["answer"] in body["choices"][0]["message"]["content"]


def test_chat_follow_up_after_a_refusal_uses_the_question(client):
    messages = [{"role": "user", "content": "西湖大学校长是谁？"},
                {"role": "assistant", "content": "文章中没有找到答案。"},
                {"role": "user", "content": "他认为人才要怎样才能变得更好？"}]
    qa = chat(client, messages).json()["qa"]
    assert "西湖大学校长" in qa["searched_question"]
    assert any("更充分交流" in p["text"] for p in qa["passages"])


def stream_events(client, messages, **extra):
    body = {"model": "qa-zh", "messages": messages, "stream": True, **extra}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return [line for line in r.iter_lines() if line]


def test_chat_stream_matches_the_plain_reply(client):
    messages = [{"role": "user", "content": EASY}]
    lines = stream_events(client, messages, stream_options={"include_usage": True})
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop"]
    assert len(final) == 1 and "qa" in final[0]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(text)
    plain = chat(client, messages).json()
    assert text == plain["choices"][0]["message"]["content"]
    assert Answer.model_validate(final[0]["qa"]).answer == plain["qa"]["answer"]


@pytest.mark.parametrize("body, words", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "只有系统消息"}]}, "no user message"),
    ({"messages": [{"role": "user", "content": "  "}]}, "empty"),
    ({"messages": [{"role": "user", "content": "  "}], "stream": True}, "empty"),
    ({"messages": [{"role": "wizard", "content": "中关村"}]}, "role"),
    ({"messages": [{"role": "user", "content": 42}]}, "content"),
    ({"messages": "中关村论坛"}, "messages"),
    ({"messages": [{"role": "user", "content": "中关村论坛"}], "stream": "yes please"}, "stream"),
])
def test_chat_bad_input(client, body, words):
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 422, r.text
    assert words in error_of(r)


def test_models(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["qa-zh"]
    assert client.get("/v1/models/qa-zh").status_code == 200
    assert client.get("/v1/models/gpt-4").status_code == 404


def test_openai_sdk_against_a_live_server(app):
    openai = pytest.importorskip("openai")
    with live_server(app) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        assert [m.id for m in sdk.models.list()] == ["qa-zh"]
        completion = sdk.chat.completions.create(model="qa-zh", messages=[{"role": "user", "content": EASY}])
        content = completion.choices[0].message.content
        assert "2007" in content.splitlines()[0]
        answer = Answer.model_validate(completion.model_extra["qa"])
        assert answer.citations and answer.citations[0].quote in original(answer.citations[0].document)
        stream = sdk.chat.completions.create(model="qa-zh", messages=[{"role": "user", "content": EASY}],
                                             stream=True)
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content
        assert chunks[-1].model_extra["qa"]["answer"] == answer.answer
        with pytest.raises(openai.UnprocessableEntityError) as info:
            sdk.chat.completions.create(model="qa-zh", messages=[{"role": "user", "content": ""}])
        assert "empty" in str(info.value)


# documents ----------------------------------------------------------------------------------------------------
ARTICLE = "青岚湖观鸟节开幕\n第七届青岚湖观鸟节于4月12日在青岚湖湿地公园开幕，本届观鸟节共记录到黑脸琵鹭等213种鸟类。"


def test_list_documents(client):
    body = client.get("/v1/documents").json()
    ids = [d["id"] for d in body["documents"]]
    assert {DOC_000, DOC_002} <= set(ids) and body["count"] == len(ids)
    DocumentInfo.model_validate(body["documents"][0])
    detail = client.get(f"/v1/documents/{DOC_002}").json()
    assert detail["text"] == original(DOC_002)
    assert client.get("/v1/documents/no-such-doc").status_code == 404


def test_add_ask_and_delete_a_json_document(client):
    r = client.post("/v1/documents", json={"id": "qinglan-birds", "text": ARTICLE})
    try:
        assert r.status_code == 201, r.text
        changed = DocumentsChanged.model_validate(r.json())
        assert changed.added == ["qinglan-birds"] and changed.documents[0].title == "青岚湖观鸟节开幕"
        assert "qinglan-birds" in [d["id"] for d in client.get("/v1/documents").json()["documents"]]
        again = client.post("/v1/documents", json={"id": "qinglan-birds", "text": ARTICLE})
        assert again.status_code == 200 and again.json()["skipped"] == ["qinglan-birds"]
        clash = client.post("/v1/documents", json={"id": "qinglan-birds", "text": "别的内容\n完全不同。"})
        assert clash.status_code == 409 and "qinglan-birds" in error_of(clash)
        answer = Answer.model_validate(client.post("/v1/ask", json={"question": "青岚湖观鸟节共记录到多少种鸟类？"}).json())
        assert answer.passages[0].document == "qinglan-birds"
        check_citations(answer, {**bundled_texts(), "qinglan-birds": ARTICLE})
    finally:
        r = client.delete("/v1/documents/qinglan-birds")
    assert r.status_code == 200 and r.json()["removed"] == ["qinglan-birds"]
    gone = client.delete("/v1/documents/qinglan-birds")
    assert gone.status_code == 404 and "qinglan-birds" in error_of(gone)


def test_upload_a_file_with_a_hostile_name(client):
    r = client.post("/v1/documents", files={"file": ("../../etc/青岚 湖.txt", ARTICLE.encode("gb18030"))})
    assert r.status_code == 201, r.text
    doc_id = r.json()["added"][0]
    try:
        assert doc_id == "青岚_湖" and "/" not in doc_id and ".." not in doc_id
        info = r.json()["documents"][0]
        assert info["title"] == "青岚湖观鸟节开幕" and info["characters"] == len(ARTICLE)
    finally:
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200


@pytest.mark.parametrize("files, status, words", [
    ({"file": ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64))}, 415, "unsupported"),
    ({"file": ("notes", b"plain words")}, 415, "unsupported"),
    ({"file": ("binary.txt", b"\x00\x01\x02\x03" * 16)}, 400, "binary"),
    ({"file": ("empty.txt", b"")}, 400, "empty"),
    ({"file": ("blank.md", b" \n\n  ")}, 400, "empty"),
    ({"file": ("broken.pdf", b"%PDF-1.4 not really")}, 400, "PDF"),
    ({"other": ("a.txt", ARTICLE.encode())}, 422, "file"),
])
def test_bad_uploads(client, files, status, words):
    r = client.post("/v1/documents", files=files)
    assert r.status_code == status, r.text
    assert words in error_of(r)


@pytest.mark.parametrize("body, status, words", [
    ({"text": ""}, 422, "empty"),
    ({"text": "  \n"}, 422, "empty"),
    ({"text": 12}, 422, "text"),
    ({"title": "no text"}, 422, "text"),
    ({"text": ARTICLE, "id": "../../etc/passwd"}, 422, "invalid document id"),
    ({"text": ARTICLE, "id": ".hidden"}, 422, "invalid document id"),
    ({"text": ARTICLE, "id": "a/b"}, 422, "invalid document id"),
])
def test_bad_json_documents(client, body, status, words):
    r = client.post("/v1/documents", json=body)
    assert r.status_code == status, r.text
    assert words in error_of(r)


def test_document_body_errors(client):
    r = client.post("/v1/documents", content=b'{"text": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in error_of(r)
    r = client.post("/v1/documents", content=ARTICLE.encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart" in error_of(r)
    r = client.post("/v1/documents", files={"file": ("big.txt", b"a" * (26 * 1024 * 1024))})
    assert r.status_code == 413 and "limit" in error_of(r)


def test_reads_continue_during_a_write(client):
    results: dict = {}

    def write():
        results["write"] = client.post("/v1/documents", json={"id": "concurrent-doc", "text": ARTICLE * 20})

    thread = threading.Thread(target=write)
    thread.start()
    try:
        statuses = [client.get("/v1/documents").status_code for _ in range(3)]
        statuses.append(client.post("/v1/ask", json={"question": EASY}).status_code)
        thread.join(120)
        assert statuses == [200, 200, 200, 200]
        assert results["write"].status_code == 201
    finally:
        thread.join(120)
        client.delete("/v1/documents/concurrent-doc")


def test_writes_need_the_token_when_one_is_set(pipeline):
    from api.app import create_app

    app = create_app(dataclasses.replace(pipeline.settings, api_token="s3cret-token"), pipeline)
    with TestClient(app) as c:
        body = {"id": "token-doc", "text": ARTICLE}
        r = c.post("/v1/documents", json=body)
        assert r.status_code == 401 and "token" in error_of(r) and r.headers["www-authenticate"] == "Bearer"
        r = c.post("/v1/documents", json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "invalid" in error_of(r)
        r = c.post("/v1/documents", json=body, headers={"Authorization": "Basic s3cret-token"})
        assert r.status_code == 401
        assert c.delete("/v1/documents/token-doc").status_code == 401
        assert c.get("/v1/documents").status_code == 200  # reads stay open
        assert c.post("/v1/ask", json={"question": EASY}).status_code == 200
        auth = {"Authorization": "Bearer s3cret-token"}
        assert c.post("/v1/documents", json=body, headers=auth).status_code == 201
        assert c.delete("/v1/documents/token-doc", headers=auth).status_code == 200


def test_cors_is_configurable(pipeline):
    from api.app import create_app

    app = create_app(pipeline=pipeline, cors=["https://news.example"])
    with TestClient(app) as c:
        r = c.options("/v1/ask", headers={"Origin": "https://news.example", "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://news.example"
        r = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
