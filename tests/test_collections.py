"""Metadata, collections and filters, on FAISS and on Milvus (milvus-lite): metadata read from front matter, HTML
<meta>, PDF info and a sidecar with its precedence; filters by source, date range and tag that only ever cite
matching documents (also when the best passage overall is outside the filter); metadata changes without
re-embedding; two collections answering independently; atomic drops; the API, the client and the OpenAI SDK
choosing a collection; and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import DOC_000, DOC_002
from retriever.collections import CollectionError, CollectionNotFound, Collections
from retriever.documents import Document, DocumentError, read_document
from retriever.filters import Filter, FilterError

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
WHEN = "2023中关村论坛什么时候举行？"  # best passage overall: 新华社 (002); 人民日报 (000) says it too
BORN = "中关村论坛是哪一年诞生的？"  # only 新华社 (002) says it
FINANCE = Document("rrr_cut", "央行宣布下调存款准备金率",
                   "央行宣布下调存款准备金率\n中国人民银行2023年6月15日宣布，下调金融机构存款准备金率0.25个百分点，"
                   "释放长期资金约5000亿元。此次降准是今年第二次降准。", "test",
                   {"source": "财新", "published": "2023-06-15", "tags": ["货币政策"]})
SPORT = Document("volleyball", "中国女排夺得世界联赛冠军",
                 "中国女排夺得世界联赛冠军\n2023年7月16日，中国女排在决赛中以3比1战胜波兰队，夺得世界女排联赛冠军。"
                 "主教练蔡斌表示，队员们表现出色。", "test", {"source": "新华社", "published": "2023-07-16"})
FINANCE_Q = "降准释放长期资金约多少？"
SPORT_Q = "中国女排在决赛中战胜了哪支队伍？"


def cited(answer) -> set[str]:
    return {c.document for c in answer.citations} | {p.document for p in answer.passages}


# ------------------------------------------------------------------------------------------ the pipelines
@pytest.fixture(scope="module", params=["faiss", "milvus"])
def qa(request, tmp_path_factory, pipeline):
    """A pipeline of its own (its metadata is changed here) on each store, over the bundled articles."""
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    home = tmp_path_factory.mktemp(f"collections-{request.param}")
    settings = Settings()
    settings.home = home
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
        settings.store = str(home / "qa.db")
    own = QAPipeline(settings)
    own.reader = pipeline.reader  # one reader in memory for the session
    return own


def test_bundled_articles_carry_their_outlet_and_date(qa):
    meta = {d.id: d.metadata for d in qa.documents()}
    assert (meta[DOC_000].source, meta[DOC_000].published) == ("人民日报", "2023-05-31")
    assert (meta[DOC_002].source, meta[DOC_002].published) == ("新华社", "2023-05-27")
    answer = qa.ask(BORN)
    assert answer.answer == "2007年" and answer.filtered_documents is None
    c = answer.citations[0]
    assert (c.document, c.source, c.published) == (DOC_002, "新华社", "2023-05-27")
    assert all(p.source in ("人民日报", "新华社") for p in answer.passages)


def test_filter_finds_the_best_passage_inside_it_not_the_global_one(qa):
    overall = qa.ask(WHEN)
    assert overall.citations[0].document == DOC_002  # the best passage overall is 新华社's
    for filters in ({"source": "人民日报"}, {"since": "2023-05-28"}, {"since": "2023-05-31", "until": "2023-05-31"}):
        answer = qa.ask(WHEN, filters=filters)
        assert answer.filtered_documents == 1
        assert answer.answer and "30" in answer.answer, (filters, answer.answer)
        assert cited(answer) == {DOC_000}, filters
        assert answer.citations[0].source == "人民日报"
    # a question only the other article answers: the filtered one says the articles don't say, citing nothing else
    answer = qa.ask(BORN, filters={"source": ["人民日报"]})
    assert answer.answer is None and cited(answer) <= {DOC_000}
    answer = qa.ask(BORN, filters={"until": "2023-05-27", "source": "新华社"})
    assert answer.answer == "2007年" and cited(answer) == {DOC_002}


def test_tag_filter_and_metadata_change_without_reembedding(qa, monkeypatch):
    index = qa.index
    chunks_before = dict(index.state.chunks)

    def no_embedding(*args, **kwargs):
        raise AssertionError("a metadata change must not embed anything")

    with monkeypatch.context() as m:
        m.setattr(index.embedder, "embed_passages", no_embedding)
        m.setattr(index.embedder, "embed_queries", no_embedding)
        info = qa.update_metadata(DOC_000, {"tags": ["科技", "综述"], "url": "https://example.com/a", "栏目": "要闻"})
    assert info.metadata.tags == ["科技", "综述"] and info.metadata.extra["栏目"] == "要闻"
    assert info.metadata.source == "人民日报"  # keys not given stay
    assert index.state.chunks == chunks_before and len(index.state.store) == len(chunks_before)
    answer = qa.ask(WHEN, filters={"tags": ["综述"]})
    assert cited(answer) == {DOC_000} and answer.citations[0].url == "https://example.com/a"
    assert cited(qa.ask(WHEN, filters={"栏目": "要闻"})) == {DOC_000}  # a free key is a filter key too
    assert qa.ask(WHEN, filters={"tags": ["科技", "综述"]}).filtered_documents == 1  # every tag given
    assert qa.ask(WHEN, filters={"tags": ["科技"]}).filtered_documents == 2
    # another instance on the same store sees the change (FAISS generation / Milvus token)
    index.refresh()
    qa.update_metadata(DOC_000, {"tags": ["科技", "中关村论坛"], "url": None, "栏目": None})
    assert qa.documents()[0].metadata.extra == {"note": qa.documents()[0].metadata.extra["note"]}
    # bad values change nothing
    from retriever.metadata import MetadataError

    with pytest.raises(MetadataError, match="not a date"):
        qa.update_metadata(DOC_000, {"published": "2023-02-30"})
    assert qa.documents()[0].metadata.published == "2023-05-31"


def test_filter_matching_nothing_and_bad_filters(qa):
    answer = qa.ask(WHEN, filters={"source": "路透社"})
    assert answer.answer is None and answer.passages == [] and answer.citations == []
    assert answer.filtered_documents == 0 and answer.note == "the filter matched no document"
    with pytest.raises(FilterError, match="unknown filter key 'colour'"):
        qa.ask(WHEN, filters={"colour": "red"})
    with pytest.raises(FilterError, match="not a date"):
        qa.ask(WHEN, filters={"since": "2023-13-01"})
    with pytest.raises(FilterError, match="after until"):
        qa.ask(WHEN, filters={"since": "2023-06-01", "until": "2023-05-01"})


def test_two_collections_answer_independently_and_drop_atomically(qa):
    assert qa.create_collection("finance") is True and qa.create_collection("finance") is False
    qa.add_documents([FINANCE], collection="finance")
    qa.add_documents([SPORT], collection="体育")  # created on first add
    names = [c.name for c in qa.collection_infos()]
    assert names[0] == "default" and set(names[1:]) == {"finance", "体育"}
    a = qa.ask(FINANCE_Q, collection="finance")
    assert a.answer == "5000亿元" and cited(a) == {"rrr_cut"} and a.collection == "finance"
    assert a.citations[0].source == "财新"
    b = qa.ask(SPORT_Q, collection="体育")
    assert b.answer == "波兰队" and cited(b) == {"volleyball"}
    assert "rrr_cut" not in cited(qa.ask(FINANCE_Q, collection="体育"))
    assert cited(qa.ask(FINANCE_Q)) <= {DOC_000, DOC_002}  # the default collection is untouched
    assert {d.id for d in qa.documents()} == {DOC_000, DOC_002}
    assert qa.ask(SPORT_Q, collection="体育", filters={"source": "财新"}).filtered_documents == 0
    qa.drop_collection("体育")
    with pytest.raises(CollectionNotFound, match="体育"):
        qa.ask(SPORT_Q, collection="体育")
    with pytest.raises(CollectionError):
        qa.drop_collection("default")
    with pytest.raises(CollectionError, match="invalid collection name"):
        qa.add_documents([SPORT], collection="../escape")
    assert [c.name for c in qa.collection_infos()] == ["default", "finance"]
    # another process opening the store sees the same collections
    assert Collections(qa.settings, qa.index.embedder).names() == ["finance"]


# ------------------------------------------------------------------------------------------ reading metadata
def test_metadata_from_front_matter_html_pdf_and_sidecar(tmp_path):
    md = tmp_path / "a.md"
    md.write_text("---\ntitle: 标题一\nsource: 人民日报\ndate: 2023-05-31\ntags: [科技, 论坛]\nurl: https://x.cn/a\n"
                  "栏目: 要闻\n---\n正文第一行。\n第二行。\n", encoding="utf-8")
    doc = read_document(md)
    assert doc.title == "标题一" and doc.text == "正文第一行。\n第二行。\n"  # offsets count from the body
    assert doc.meta == {"source": "人民日报", "published": "2023-05-31", "tags": ["科技", "论坛"],
                        "url": "https://x.cn/a", "extra": {"栏目": "要闻"}}

    html = tmp_path / "b.html"
    html.write_text('<html><head><title>新华网标题</title><meta property="og:site_name" content="新华网">'
                    '<meta property="article:published_time" content="2023-05-27T08:30:00+08:00">'
                    '<meta name="author" content="张三"><meta property="article:tag" content="科技">'
                    '<meta property="article:tag" content="机器人"><link rel="canonical" href="https://xinhua.net/b">'
                    "</head><body><p>正文。</p></body></html>", encoding="utf-8")
    doc = read_document(html)
    assert doc.title == "新华网标题"
    assert doc.meta == {"source": "新华网", "published": "2023-05-27T08:30:00+08:00", "author": "张三",
                        "tags": ["科技", "机器人"], "url": "https://xinhua.net/b"}
    assert Filter.parse({"since": "2023-05-27", "until": "2023-05-27"}).matches("b", doc.meta)

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = tmp_path / "c.pdf"
    c = canvas.Canvas(str(pdf))
    c.setAuthor("李四")
    c.setKeywords("财经, 股市")
    c.setTitle("untitled")
    c.setFont("STSong-Light", 12)
    c.drawString(72, 720, "上证指数今天上涨。")
    c.save()
    doc = read_document(pdf)
    assert doc.meta["author"] == "李四" and doc.meta["tags"] == ["财经", "股市"]
    assert len(doc.meta["published"]) >= 10  # /CreationDate, as nothing better says when
    assert doc.title == "上证指数今天上涨。"  # not the placeholder /Title

    # precedence: explicit > sidecar NAME.meta.json > the file's own, key by key
    (tmp_path / "a.meta.json").write_text(json.dumps({"source": "新华社", "author": "王五"}), encoding="utf-8")
    doc = read_document(md)
    assert (doc.meta["source"], doc.meta["author"], doc.meta["published"]) == ("新华社", "王五", "2023-05-31")
    doc = read_document(md, meta={"source": "光明日报", "tags": ["一"]})
    assert (doc.meta["source"], doc.meta["author"], doc.meta["tags"]) == ("光明日报", "王五", ["一"])


@pytest.mark.parametrize("text, message", [
    ("---\nsource: [unclosed\n---\n正文。", "malformed front matter"),
    ("---\npublished: 2023-02-30\n---\n正文。", "not a date"),
    ("---\n- a list\n---\n正文。", "not key: value"),
])
def test_bad_front_matter_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DocumentError, match=message):
        read_document(path)


# ------------------------------------------------------------------------------------------ collections on disk
def test_drop_and_create_are_atomic_on_faiss(tmp_path):
    from qa.settings import Settings
    from tests.test_milvus import FakeEmbedder

    settings = Settings()
    settings.home = tmp_path
    collections = Collections(settings, FakeEmbedder("fake", 8))
    collections.open("news", create=True).add([FINANCE])
    # a crash half-way through a drop (renamed away, not yet deleted) or a create (built, not yet renamed in)
    (tmp_path / "collections" / ".dropped-abc").mkdir()
    (tmp_path / "collections" / ".new-abc").mkdir()
    assert collections.names() == ["news"]
    collections.drop("news")
    assert collections.names() == [] and not (tmp_path / "collections" / ".dropped-abc").exists()
    assert collections.open("news", create=True).documents == {}  # created again: empty, nothing resurrected
    with pytest.raises(CollectionNotFound):
        collections.open("missing")


def test_drop_and_create_are_atomic_on_milvus(tmp_path):
    pytest.importorskip("milvus_lite")
    from qa.settings import Settings
    from retriever.collections import REGISTRY, milvus_prefix
    from tests.test_milvus import FakeEmbedder

    settings = Settings()
    settings.home = tmp_path
    settings.store = str(tmp_path / "qa.db")
    collections = Collections(settings, FakeEmbedder("fake", 8))
    index = collections.open("news", create=True)
    index.add([FINANCE])
    assert collections.names() == ["news"]
    # a crash right after the registry row went: the collection is gone for everyone, leftovers stay...
    collections.client.delete(REGISTRY, ids=["news"])
    assert collections.names() == [] and any(n.startswith(milvus_prefix("news"))
                                              for n in collections.client.list_collections())
    with pytest.raises(CollectionNotFound):
        collections.open("news")
    # ...and are cleared when the name is created again: nothing resurrected
    assert collections.open("news", create=True).documents == {}
    collections.drop("news")
    assert not any(n.startswith(milvus_prefix("news")) for n in collections.client.list_collections())


# ------------------------------------------------------------------------------------------ the HTTP API
@pytest.fixture(scope="module")
def api(tmp_path_factory, pipeline):
    from api.app import create_app
    from qa.pipeline import QAPipeline
    from qa.settings import Settings

    settings = Settings()
    settings.home = tmp_path_factory.mktemp("collections-api")
    settings.api_token = "secret"
    own = QAPipeline(settings)
    own.reader = pipeline.reader
    app = create_app(pipeline=own)
    with TestClient(app, headers={"Authorization": "Bearer secret"}) as client:
        yield app, client


def error(r) -> str:
    return r.json()["error"]["message"]


def test_api_collections_metadata_and_filters(api):
    _, client = api
    assert client.post("/v1/collections", json={"name": "finance"}, headers={"Authorization": ""}).status_code == 401
    assert client.post("/v1/collections", json={"name": "finance"}).status_code == 201
    assert client.post("/v1/collections", json={"name": "finance"}).status_code == 409
    r = client.post("/v1/collections", json={"name": "a/b"})
    assert r.status_code == 422 and "invalid collection name" in error(r)
    body = {"text": FINANCE.text, "id": FINANCE.id, "metadata": {"source": "财新", "published": "2023-06-15"}}
    r = client.post("/v1/documents?collection=finance", json=body)
    assert r.status_code == 201 and r.json()["documents"][0]["metadata"]["source"] == "财新"
    r = client.post("/v1/documents?collection=finance", json={**body, "id": "x", "text": "另一篇。",
                                                              "metadata": {"published": "May 5"}})
    assert r.status_code == 422 and "not a date" in error(r)
    # a file upload with metadata beside it: the file's front matter, overridden by the field
    files = {"file": ("sport.md", f"---\nsource: 体坛周报\ntags: 排球\n---\n{SPORT.text}".encode())}
    r = client.post("/v1/documents?collection=sport", files=files, data={"metadata": '{"published": "2023-07-16"}'})
    assert r.status_code == 201
    meta = r.json()["documents"][0]["metadata"]
    assert (meta["source"], meta["published"], meta["tags"]) == ("体坛周报", "2023-07-16", ["排球"])

    docs = client.get("/v1/documents", params={"collection": "finance"}).json()
    assert docs["collection"] == "finance" and [d["id"] for d in docs["documents"]] == [FINANCE.id]
    r = client.patch(f"/v1/documents/{FINANCE.id}?collection=finance", json={"tags": ["货币政策"], "author": "记者甲"})
    assert r.status_code == 200 and r.json()["metadata"]["tags"] == ["货币政策"]
    assert r.json()["metadata"]["source"] == "财新"
    assert client.patch(f"/v1/documents/{FINANCE.id}?collection=finance", json={"published": "x"}).status_code == 422
    assert client.patch("/v1/documents/nope?collection=finance", json={"tags": []}).status_code == 404
    assert client.patch(f"/v1/documents/{FINANCE.id}?collection=finance", json={"tags": ["x"]},
                        headers={"Authorization": ""}).status_code == 401

    r = client.post("/v1/ask", json={"question": FINANCE_Q, "collection": "finance",
                                     "filters": {"source": "财新", "tags": ["货币政策"]}})
    assert r.status_code == 200 and r.json()["answer"] == "5000亿元"
    assert r.json()["citations"][0]["source"] == "财新" and r.json()["citations"][0]["published"] == "2023-06-15"
    r = client.post("/v1/ask", json={"question": WHEN, "filters": {"source": "人民日报"}})
    assert {c["document"] for c in r.json()["citations"]} == {DOC_000}
    r = client.post("/v1/ask", json={"question": WHEN, "filters": {"source": "路透社"}})
    assert r.status_code == 200 and r.json()["answer"] is None and r.json()["note"] == "the filter matched no document"
    for bad, status, words in (({"collection": "nope"}, 404, "no collection named 'nope'"),
                               ({"filters": {"since": "2023-02-30"}}, 422, "not a date"),
                               ({"filters": {"colour": "red"}}, 422, "unknown filter key 'colour'")):
        r = client.post("/v1/ask", json={"question": WHEN, **bad})
        assert r.status_code == status and words in error(r), r.text
    assert client.get("/v1/documents", params={"collection": "nope"}).status_code == 404

    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert models == ["qa-zh", "qa-zh/finance", "qa-zh/sport"]
    assert client.get("/v1/models/qa-zh/finance").status_code == 200
    chat = {"messages": [{"role": "user", "content": SPORT_Q}]}
    r = client.post("/v1/chat/completions", json={**chat, "model": "qa-zh/sport"})
    assert r.status_code == 200 and r.json()["qa"]["answer"] == "波兰队" and r.json()["model"] == "qa-zh/sport"
    assert "（体坛周报，2023-07-16）" in r.json()["choices"][0]["message"]["content"]
    r = client.post("/v1/chat/completions", json={**chat, "model": "qa-zh/nope", "stream": True})
    assert r.status_code == 404 and "nope" in error(r)
    r = client.post("/v1/chat/completions", json={**chat, "model": "qa-zh/sport", "filters": {"source": "新华社"}})
    assert r.json()["qa"]["filtered_documents"] == 0 and "筛选条件没有匹配任何文章" in r.json()["choices"][0]["message"]["content"]
    assert client.get("/v1/collections").json()["count"] == 3
    assert client.delete("/v1/collections/default").status_code == 422
    assert client.delete("/v1/collections/sport").status_code == 200
    r = client.delete("/v1/collections/sport")
    assert r.status_code == 404 and "sport" in error(r)


def test_client_and_openai_sdk_choose_the_collection(api):
    openai = pytest.importorskip("openai")
    from qa.client import Client, NotFoundError
    from tests.test_api import live_server

    app, client = api
    client.post("/v1/documents?collection=finance", json={"text": FINANCE.text, "id": FINANCE.id})
    with live_server(app) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="secret", max_retries=0, timeout=120)
        assert "qa-zh/finance" in [m.id for m in sdk.models.list().data]
        reply = sdk.chat.completions.create(model="qa-zh/finance", messages=[{"role": "user", "content": FINANCE_Q}])
        assert reply.model == "qa-zh/finance" and "5000亿元" in reply.choices[0].message.content
        reply = sdk.chat.completions.create(model="qa-zh", messages=[{"role": "user", "content": FINANCE_Q}])
        assert "5000亿元" not in reply.choices[0].message.content
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="qa-zh/nope", messages=[{"role": "user", "content": FINANCE_Q}])
        with Client(url, token="secret") as qa:
            assert "finance" in [c.name for c in qa.collections()]
            assert qa.ask(FINANCE_Q, collection="finance").answer == "5000亿元"
            assert qa.ask(WHEN, filters={"source": "人民日报"}).citations[0].document == DOC_000
            assert qa.chat(FINANCE_Q, collection="finance").answer.answer == "5000亿元"
            qa.add_document(text=SPORT.text, id="v", collection="client", metadata={"source": "新华社"})
            assert qa.documents(collection="client")[0].metadata.source == "新华社"
            assert qa.update_document("v", {"tags": ["排球"]}, collection="client").metadata.tags == ["排球"]
            qa.drop_collection("client")
            with pytest.raises(NotFoundError, match="client"):
                qa.documents(collection="client")


# ------------------------------------------------------------------------------------------ the CLI
def run(*args, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, QA_HOME=str(home))
    done = subprocess.run([str(VENV_BIN / "qa"), *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_cli_add_list_tag_ask_and_collections(tmp_path):
    home = tmp_path / "home"
    article = tmp_path / "sport.txt"
    article.write_text(SPORT.text, encoding="utf-8")
    bad = tmp_path / "bad.md"
    bad.write_text("---\nsource: [unclosed\n---\n正文。", encoding="utf-8")
    done = run("add", str(article), str(bad), "--collection", "sport", "--source", "新华社", "--published",
               "2023-07-16", "--tag", "排球", home=home)
    assert "added sport" in done.stdout and "skipped:" in done.stderr and "malformed front matter" in done.stderr
    listed = json.loads(run("list", "--collection", "sport", "--json", home=home).stdout)
    assert [(d["id"], d["metadata"]["source"], d["metadata"]["tags"]) for d in listed] == [("sport", "新华社", ["排球"])]
    assert json.loads(run("tag", "sport", "-c", "sport", "--tag", "女排", "--meta", "栏目=体育", home=home).stdout) == {
        "source": "新华社", "published": "2023-07-16", "url": None, "author": None, "tags": ["排球", "女排"],
        "extra": {"栏目": "体育"}}
    answer = json.loads(run("ask", SPORT_Q, "--json", "-c", "sport", "--where", "source=新华社", "--since",
                            "2023-07-01", "--tag", "女排", home=home).stdout)
    assert answer["answer"] == "波兰队" and answer["citations"][0]["published"] == "2023-07-16"
    shown = run("ask", SPORT_Q, "-c", "sport", home=home).stdout
    assert "波兰队" in shown and "新华社 2023-07-16" in shown
    nothing = run("ask", SPORT_Q, "-c", "sport", "--where", "source=财新", home=home).stdout
    assert "the articles don't say" in nothing and "the filter matched no document" in nothing
    for args, words in ((["--where", "colour=red"], "unknown filter key"), (["--since", "yesterday"], "not a date"),
                        (["-c", "nope"], "no collection named 'nope'")):
        done = run("ask", SPORT_Q, "-c", "sport", *args, home=home, check=False)
        assert done.returncode == 2 and words in done.stderr, done.stderr
    assert "sport 1 documents 1 chunks" in " ".join(run("collection", "list", home=home).stdout.split())
    run("collection", "drop", "sport", home=home)
    assert "sport" not in run("collection", "list", home=home).stdout
