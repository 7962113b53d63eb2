"""Hostile documents and the API's defences: binary files, bombs, huge files, broken and encrypted PDFs,
HTML with scripts, odd encodings, path traversal in upload names; tokens, size limits, data confinement.

Through POST /v1/documents (in-process app over a throw-away index) and through the real `qa add` CLI.
Every refusal is a clear 4xx JSON error (or a "skipped:" line from the CLI), never a 500 or a traceback,
and nothing is written outside the data directory.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reliability_support import ROOT, isolated_pipeline, reader_env


from fastapi.testclient import TestClient  # noqa: E402

from retriever.documents import MAX_FILE_BYTES  # noqa: E402
from test_documents import make_pdf  # noqa: E402

ARTICLE = "白鹭湖观鸟节开幕\n第九届白鹭湖观鸟节于5月3日开幕，共记录到黑脸琵鹭等188种鸟类。"
SCRIPT_HTML = ("<html><head><title>白鹭湖观鸟节</title><script>alert('pwned');document.cookie</script>"
               "<style>body{display:none}</style></head><body><p>第九届白鹭湖观鸟节于5月3日开幕。</p>"
               "<img src=x onerror=\"alert('img')\"><noscript>NOSCRIPT</noscript>"
               "<SCRIPT type='module'>fetch('//evil')</SCRIPT><p>共记录到188种鸟类。</p></body></html>")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def own(pipeline, sandbox):
    return isolated_pipeline(pipeline, sandbox / "home")


@pytest.fixture(scope="module")
def client(own):
    from api.app import create_app

    with TestClient(create_app(pipeline=own), raise_server_exceptions=False) as c:
        yield c


def multipart(name: str, data: bytes, field: str = "file", extra: dict | None = None):
    """A hand-made multipart body, so any file name (NUL, backslashes, quotes) reaches the server as sent."""
    boundary = "qa-hostile-boundary-7f3a"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogateescape") + data + b"\r\n"]
    for key, value in (extra or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


def error_message(r) -> str:
    assert r.status_code < 500, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == r.status_code and body["error"]["message"], body
    return body["error"]["message"]


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.txt", b"0" * 50_000_000)  # 50 MB of zeros in ~50 KB
    return buffer.getvalue()


def pdf_bytes(tmp_path: Path, password: str | None = None) -> bytes:
    return make_pdf(tmp_path / f"p{password or ''}.pdf", password=password).read_bytes()


# ------------------------------------------------------------------------------------------ hostile files
REFUSED = [  # (file name, bytes or factory, status, words in the message)
    ("binary.txt", bytes(range(256)) * 64, 400, "binary"),
    ("noise.txt", bytes((i * 7919 + 13) % 251 + 1 for i in range(8192)), 400, "decode"),
    ("bomb.txt", zip_bomb, 400, ""),
    ("bomb.zip", zip_bomb, 415, "unsupported"),
    ("bomb.html", lambda: gzip.compress(b"<p>" + b"a" * 20_000_000), 400, ""),
    ("huge.txt", lambda: ("新闻" * (MAX_FILE_BYTES // 6 + 10)).encode(), 413, "limit"),
    ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nxref\ngarbage\n%%EOF", 400, "PDF"),
    ("utf16-broken.txt", b"\xff\xfe" + "新闻".encode("utf-16-le") + b"\x00\xd8", 400, "UTF-16"),
    ("utf16-odd.txt", b"\xff\xfe" + "新闻".encode("utf-16-le") + b"\x41", 400, "UTF-16"),
    ("empty.md", b"", 400, "empty"),
    ("script-only.html", b"<script>alert(1)</script><style>p{}</style>", 400, "no text"),
    ("photo.exe", b"MZ\x90\x00", 415, "unsupported"),
]


@pytest.mark.parametrize("name, data, status, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_hostile_files_are_refused_clearly(client, own, name, data, status, words):
    before = set(own.index.documents)
    r = client.post("/v1/documents", **multipart(name, data() if callable(data) else data))
    assert r.status_code == status, r.text[:300]
    assert words in error_message(r)
    assert set(own.index.documents) == before


def test_broken_and_encrypted_pdfs(client, own, tmp_path):
    good = pdf_bytes(tmp_path)
    for name, data, words in [("encrypted.pdf", pdf_bytes(tmp_path, "s3cret"), "encrypted"),
                              ("truncated.pdf", good[: len(good) // 2], ""),
                              ("flipped.pdf", bytes(b ^ 0x55 if 400 < i < 900 else b for i, b in enumerate(good)), "")]:
        r = client.post("/v1/documents", **multipart(name, data))
        assert r.status_code in (200, 201, 400), (name, r.status_code, r.text[:300])  # read what is readable, or 400
        if r.status_code == 400:
            assert words in error_message(r)
        elif words:
            pytest.fail(f"{name} was accepted")


def test_html_scripts_never_reach_the_stored_text(client, own):
    r = client.post("/v1/documents", **multipart("page.html", SCRIPT_HTML.encode()))
    assert r.status_code == 201, r.text
    doc_id = r.json()["added"][0]
    assert r.headers["content-type"].startswith("application/json")
    stored = client.get(f"/v1/documents/{doc_id}").json()
    for bad in ("<script", "<SCRIPT", "alert", "fetch(", "cookie", "onerror", "display:none", "NOSCRIPT", "<"):
        assert bad not in stored["text"] and bad not in stored["title"], bad
    assert "188种鸟类" in stored["text"]
    # a JSON document whose text *is* markup is stored as plain text and only ever returned as JSON
    r = client.post("/v1/documents", json={"id": "markup", "text": "标题\n<script>alert(1)</script>正文"})
    assert r.status_code == 201 and r.headers["content-type"].startswith("application/json")
    page = client.get("/")
    assert "alert(1)" not in page.text
    client.delete("/v1/documents/markup")


@pytest.mark.parametrize("name, encoding", [("gbk.txt", "gbk"), ("big5.txt", "big5"), ("u16le.txt", "utf-16"),
                                            ("u16be.md", "utf-16-be-bom"), ("bom8.txt", "utf-8-sig"),
                                            ("gb18030.html", "gb18030")])
def test_odd_encodings_are_decoded(client, own, name, encoding):
    text = f"{encoding}编码的新闻报道\n本届观鸟节共记录到188种鸟类，游客达3万人次。" if encoding != "big5" else \
        "繁體中文新聞報導\n本屆觀鳥節共記錄到188種鳥類，遊客達3萬人次。"
    data = b"\xfe\xff" + text.encode("utf-16-be") if encoding == "utf-16-be-bom" else text.encode(encoding)
    r = client.post("/v1/documents", **multipart(name, data))
    assert r.status_code in (200, 201), r.text
    doc_id = (r.json()["added"] + r.json()["skipped"])[0]
    stored = own.index.documents[doc_id].text
    assert stored.strip() == text.strip()


TRAVERSAL = ["../../etc/passwd.txt", "/etc/passwd.txt", "..\\..\\windows\\win.ini.txt", "a\x00b.txt",
             "....//....//escape.txt", "%2e%2e%2f%2e%2e%2fescape.txt", "C:\\Windows\\evil.md", "~/.bashrc.txt",
             "x" * 5000 + ".txt", ".hidden.txt", "..txt", "新闻/../../报道.txt", "\u202egnp.txt"]


def test_path_traversal_in_upload_names_writes_nothing_outside(client, own, sandbox, monkeypatch):
    cwd = sandbox / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    home = sandbox / "home"
    for n, name in enumerate(TRAVERSAL):
        r = client.post("/v1/documents", **multipart(name, f"{ARTICLE}\n第{n}号文件。".encode()))
        assert r.status_code in (201, 400, 409, 422), (name, r.status_code, r.text[:300])
        if r.status_code == 201:
            doc_id = r.json()["added"][0]
            assert "/" not in doc_id and "\\" not in doc_id and ".." not in doc_id and "\x00" not in doc_id
            assert not doc_id.startswith(".") and len(doc_id) <= 128
            source = r.json()["documents"][0]["source"]
            label = source.removeprefix("upload:")  # only a label (the base name), never used as a path
            assert "/" not in label and "\\" not in label and label not in ("", ".", "..")
        else:
            error_message(r)
    r = client.post("/v1/documents", **multipart("ok.txt", ARTICLE.encode() + b"\n!", extra={"id": "../../escape"}))
    assert r.status_code == 422 and "invalid document id" in error_message(r)
    outside = [p for p in sandbox.rglob("*") if p.is_file() and home not in p.parents]
    assert outside == [], outside
    assert not Path("/etc/passwd.txt").exists() and not Path("/escape.txt").exists()
    stored = {p.name for p in (home / "index" / "documents").iterdir()}
    assert all(len(n) == len("0123456789abcdef.txt") for n in stored), stored  # content-addressed names only


# ------------------------------------------------------------------------------------------ qa add
def test_qa_add_with_hostile_files(pipeline, tmp_path):
    """The real CLI on a folder of hostile files: refusals are 'skipped:' lines, the good ones go in."""
    home = tmp_path / "home"
    isolated_pipeline(pipeline, home)  # the index exists already: qa add only adds
    folder = tmp_path / "incoming"
    folder.mkdir()
    files = {
        "binary.txt": bytes(range(256)) * 64, "bomb.txt": zip_bomb(),
        "broken.pdf": b"%PDF-1.7\nnothing here\n%%EOF", "encrypted.pdf": pdf_bytes(tmp_path, "pw"),
        "utf16-broken.txt": b"\xff\xfe\x00\xd8", "page.html": SCRIPT_HTML.encode(),
        "gbk.txt": ARTICLE.replace("白鹭湖", "云溪湖").encode("gbk"),
        "u16.md": ARTICLE.replace("白鹭湖", "松柏湖").encode("utf-16"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with open(folder / "huge.txt", "wb") as f:  # over the limit without writing 20 MB: a sparse file
        f.truncate(MAX_FILE_BYTES + 1)
    r = subprocess.run([sys.executable, "-m", "qa.cli", "add", str(folder), "--home", str(home)], cwd=ROOT,
                       env={**reader_env(), "QA_HOME": str(home), "COLUMNS": "200"}, capture_output=True,
                       text=True, timeout=600)
    out, err = r.stdout, r.stderr
    assert r.returncode == 0, (out, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    for name in ("binary", "bomb", "broken", "encrypted", "utf16-broken", "huge"):
        assert f"skipped:" in err and name in err, (name, err)
    for doc_id in ("page", "gbk", "u16"):
        assert f"added {doc_id}" in out, out
    from reliability_support import load_index

    docs = load_index(home / "index").documents
    assert "<script" not in docs["page"].text and "alert" not in docs["page"].text
    assert docs["gbk"].text == ARTICLE.replace("白鹭湖", "云溪湖")
    assert docs["u16"].text == ARTICLE.replace("白鹭湖", "松柏湖")


# ------------------------------------------------------------------------------------------ security
def test_write_endpoints_need_the_token(own):
    from api.app import create_app

    app = create_app(dataclasses.replace(own.settings, api_token="t0ken-long-42"), own)
    with TestClient(app, raise_server_exceptions=False) as c:
        before = set(own.index.documents)
        attempts = [
            ("post", "/v1/documents", {"json": {"text": ARTICLE}}, {}),
            ("post", "/v1/documents", multipart("a.txt", ARTICLE.encode()), {}),
            ("delete", "/v1/documents/000_cde3536eadafbe36", {}, {}),
        ]
        bad_headers = [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
                       {"Authorization": "Basic dDBrZW4="}, {"Authorization": "Bearer t0ken-"},
                       {"Authorization": "bearer t0ken-long-42-and-more"}, {"X-API-Token": "t0ken-long-42"}]
        for method, path, kwargs, _ in attempts:
            for headers in bad_headers:
                merged = {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}
                r = getattr(c, method)(path, **merged) if method == "post" else c.delete(path, headers=headers)
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text[:200])
                assert r.headers["www-authenticate"] == "Bearer" and error_message(r)
        assert set(own.index.documents) == before
        assert c.get("/v1/documents").status_code == 200 and c.get("/health").status_code == 200


def test_size_limits(own):
    from api.app import create_app

    app = create_app(pipeline=own, max_json_bytes=4096, max_upload_bytes=64 * 1024)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/ask", json={"question": "问" * 10, "history": ["字" * 5000]})
        assert r.status_code == 413 and "limit" in error_message(r)
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "字" * 5000}]})
        assert r.status_code == 413

        def chunks():  # no Content-Length: counted while reading
            for _ in range(100):
                yield b"x" * 1024

        r = c.post("/v1/documents", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in error_message(r)
        r = c.post("/v1/documents", **multipart("big.txt", ("新" * 30_000).encode()))
        assert r.status_code == 413
        r = c.post("/v1/ask", content=b"{}", headers={"content-type": "application/json", "content-length": "x"})
        assert r.status_code in (400, 422)
        assert c.post("/v1/documents", **multipart("small.txt", (ARTICLE + "小").encode())).status_code == 201


def test_no_file_outside_the_data_directory_is_read(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-机密", encoding="utf-8")
    paths = [f"/v1/documents/{p}" for p in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                              "....%2F%2Fetc%2Fpasswd", str(secret).replace("/", "%2F"),
                                              "..%5C..%5Cwindows%5Cwin.ini", "%00", "CURRENT", "..", ".lock")]
    paths += ["/static/..%2F..%2F..%2Fetc%2Fpasswd", "/static/..%2Fapp.py", "/static/%2Fetc%2Fpasswd",
              "/../../etc/passwd", "/static/../../api/app.py"]
    for path in paths:
        r = client.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert "root:" not in r.text and "TOP-SECRET" not in r.text and "create_app" not in r.text, path
    # JSON bodies carry text, never paths: a source field or a file path is not an accepted way in
    r = client.post("/v1/documents", json={"text": str(secret), "source": str(secret)})
    assert r.status_code == 422
    r = client.post("/v1/documents", json={"id": "path-as-text", "text": str(secret)})
    assert r.status_code == 201
    assert client.get("/v1/documents/path-as-text").json()["text"] == str(secret)
    client.delete("/v1/documents/path-as-text")
