"""qa.client against a live uvicorn server on 127.0.0.1 (real models, shared session pipeline)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from test_api import ARTICLE, EASY, NONSENSE, free_port, live_server  # noqa: F401  (fixtures too)

from qa.client import (AsyncClient, AuthenticationError, BadRequestError, Client, NotFoundError, QAClientError,
                       QAConnectionError)
from qa.types import Answer, ChatReply, DocumentInfo

TOKEN = "client-test-token"


@pytest.fixture(scope="module")
def server(pipeline):
    from api.app import create_app

    app = create_app(dataclasses.replace(pipeline.settings, api_token=TOKEN), pipeline)
    with live_server(app) as url:
        yield url


@pytest.fixture
def qa(server):
    with Client(server, token=TOKEN, timeout=120) as c:
        yield c


def test_ready_and_documents(qa):
    state = qa.ready()
    assert state.ready and state.documents >= 2
    docs = qa.documents()
    assert docs and all(isinstance(d, DocumentInfo) for d in docs)


def test_ask_and_chat(qa):
    answer = qa.ask(EASY)
    assert isinstance(answer, Answer) and "2007" in answer.answer
    reply = qa.chat("他认为人才要怎样才能变得更好？", history=["西湖大学校长是谁？", "施一公"])
    assert isinstance(reply, ChatReply) and reply.text.startswith("答案：")
    assert "施一公" in reply.answer.searched_question
    assert qa.ask(EASY, top_k=1).passages.__len__() == 1


def test_stream_chat_yields_text_then_the_answer(qa):
    items = list(qa.stream_chat(NONSENSE))
    assert isinstance(items[-1], Answer) and items[-1].answer is None
    text = "".join(items[:-1])
    assert all(isinstance(i, str) for i in items[:-1]) and "文章中没有找到答案" in text
    assert text == qa.chat(NONSENSE).text


def test_documents_round_trip(qa, tmp_path):
    path = tmp_path / "青岚湖.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    added = qa.add_document(path)
    assert added.added == ["青岚湖"]
    try:
        assert qa.add_document(text=ARTICLE).skipped  # same content is not indexed twice
        assert "青岚湖" in [d.id for d in qa.documents()]
    finally:
        assert qa.remove_document("青岚湖").removed == ["青岚湖"]
    with pytest.raises(NotFoundError) as info:
        qa.remove_document("青岚湖")
    assert info.value.status_code == 404 and "青岚湖" in info.value.message
    with pytest.raises(ValueError):
        qa.add_document()


def test_errors_carry_status_and_message(qa, server):
    with pytest.raises(BadRequestError) as info:
        qa.ask("   ")
    assert info.value.status_code == 422 and "empty" in info.value.message
    with pytest.raises(BadRequestError) as info:
        list(qa.stream_chat(""))
    assert info.value.status_code == 422
    with pytest.raises(BadRequestError) as info:
        qa.ask(EASY, top_k=0)
    assert info.value.status_code == 422
    with Client(server, token="wrong") as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.add_document(text=ARTICLE)
        assert info.value.status_code == 401
        assert bad.documents()  # reads need no token
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2) as nowhere:
        with pytest.raises(QAConnectionError):
            nowhere.ask(EASY)
    assert issubclass(QAConnectionError, QAClientError) and issubclass(NotFoundError, QAClientError)


def test_async_client(server):
    async def run():
        async with AsyncClient(server, token=TOKEN, timeout=120) as qa:
            assert (await qa.ready()).ready
            answer = await qa.ask(EASY)
            reply = await qa.chat("它的主题是什么？", history=["中关村论坛是哪一年诞生的？", answer.answer])
            items = [item async for item in qa.stream_chat(EASY)]
            changed = await qa.add_document(text=ARTICLE, id="async-doc", title="观鸟节")
            removed = await qa.remove_document("async-doc")
            with pytest.raises(NotFoundError):
                await qa.remove_document("async-doc")
            return answer, reply, items, changed, removed, await qa.documents()

    answer, reply, items, changed, removed, docs = asyncio.run(run())
    assert "2007" in answer.answer
    assert "中关村论坛" in reply.answer.searched_question
    assert isinstance(items[-1], Answer) and "".join(items[:-1]).startswith("答案：")
    assert changed.added == ["async-doc"] and changed.documents[0].title == "观鸟节"
    assert removed.removed == ["async-doc"] and "async-doc" not in [d.id for d in docs]


def test_ask_command_through_a_server(server):
    """`ask --server URL` answers through the client, without loading models in its own process."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    ask = Path(sys.executable).with_name("ask")
    out = subprocess.run([str(ask), "--server", server, "--json", EASY], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = Answer.model_validate(json.loads(out.stdout))
    assert answer.question == EASY and answer.passages
    bad = subprocess.run([str(ask), "--server", server, "？？"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error" in bad.stderr and "Traceback" not in bad.stderr
