"""The chat page (GET /) end to end: the real server (uvicorn, in a subprocess, with a fresh QA_HOME) and the
real page in headless Chromium driven by Selenium.

One scenario, in order: the page says loading/ready, a question streams in, its source chip opens the article
with the answer highlighted inside the cited passage, a follow-up carries the history, a document is uploaded
through the file input (401 without the token, then with it) and asked about, then removed; a not-found answer
is shown as such; Enter/Shift+Enter; the phone layout; and the page says "down" once the server is stopped.
Screenshots (desktop 1280x900, phone 390x844) go to artifacts/screenshots/.

Needs Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`); skipped without them.
It runs with the shipped reader at its shipped threshold: this tests the page, not the reader.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium chromium-driver to run the page test",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from conftest import DOC_002, original  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
TOKEN = "page-test-token"
EASY = "中关村论坛是哪一年诞生的？"
FOLLOW_UP = "它的主题是什么？"  # -> 中关村论坛的主题是什么？ only if the history was sent
NONSENSE = "火星上有多少只猫？"
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
UPLOAD_NAME = "moonlake.txt"
UPLOAD_TEXT = (
    '月光湖科技节闭幕<img src=x onerror="window.__pwned=1">\n\n'
    "本报讯 第三届月光湖科技节于昨日在青禾市闭幕。组委会介绍，本届科技节为期五天，共吸引约三万八千名观众入场参观。"
    "<script>window.__pwned=2</script>\n"
    "科技节的主办方是青禾市科学技术协会，明年将继续在月光湖畔举办。\n"
)
UPLOAD_QUESTION = "月光湖科技节吸引了多少名观众？"


# the server ----------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, QA_HOME=str(home), QA_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    env.pop("QA_CORS_ORIGINS", None)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """uvicorn api.app:create_app --factory on 127.0.0.1:<free port>; yields (base url, process)."""
    home = tmp_path_factory.mktemp("page-home")
    port = free_port()
    log = open(home / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=server_env(home), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # /health answers at once; readiness is what the page itself has to report
        assert process.poll() is None, (home / "server.log").read_text(errors="replace")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def wait_ready(url: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url + "/ready", timeout=5)
        if r.status_code == 200:
            return r.json()
        assert r.json()["status"] != "failed", r.json()
        time.sleep(0.5)
    raise AssertionError("the server never became ready")


# the browser ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=zh-CN",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, timeout: float = 300, message: str = ""):
    # the page re-renders lists while a condition reads them: an element gone stale means "look again"
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)) \
        .until(lambda d: condition(d), message)


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def status(driver) -> tuple[str, str]:
    node = driver.find_element(By.ID, "status")
    return node.get_attribute("data-state"), node.get_property("textContent")


def replies(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#messages > .msg:not(.user)")


def ask(driver, question: str):
    """Type the question, press Enter, wait for the streamed reply to finish; returns the reply element."""
    before = len(replies(driver))
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait(driver, lambda d: len(replies(d)) > before
         and replies(d)[-1].get_attribute("data-state") in ("done", "error"), message=f"no reply to {question}")
    reply = replies(driver)[-1]
    assert reply.get_attribute("data-state") == "done", reply.get_property("textContent")
    assert not box.get_property("value")
    return reply


def open_source(driver, reply, number: int = 1) -> dict:
    """Click a source chip; wait for the article; returns what the article pane shows."""
    chip = reply.find_elements(By.CSS_SELECTOR, ".chip")[number - 1]
    chip.click()
    wait(driver, lambda d: d.find_element(By.ID, "article").get_attribute("data-state") == "done",
         timeout=30, message="the article did not open")
    return js(driver, """
        const box = document.getElementById('article-text');
        const answer = box.querySelector('mark.answer'), passage = box.querySelector('mark.passage');
        return {
          document: document.getElementById('article').dataset.document,
          title: document.getElementById('article-title').textContent,
          text: box.textContent,
          answer: answer && answer.textContent,
          passage: passage && passage.textContent,
          answerInPassage: !!(answer && passage && passage.contains(answer)),
          marks: box.querySelectorAll('mark').length,
          elements: box.querySelectorAll('*:not(mark)').length,
          visible: !!answer && answer.getBoundingClientRect().top >= 0
                   && answer.getBoundingClientRect().bottom <= window.innerHeight,
        };""")


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))


def same_text(highlight: str | None, answer: str) -> bool:
    """The highlight quotes the original file, Answer.answer the normalised passage: spaces may differ
    (成为 2023 中关村论坛 / 成为2023中关村论坛)."""
    return highlight is not None and "".join(highlight.split()) == "".join(answer.split()) != ""


def check_reply(driver, reply) -> str | None:
    """What holds for any reply: found -> the answer and numbered source chips; not found -> said so, with no
    answer and no source chips. Returns the answer (None: not found)."""
    if reply.get_attribute("data-found") == "false":
        assert "文章中没有找到答案" in reply.find_element(By.CSS_SELECTOR, ".not-found").text
        assert not reply.find_elements(By.CSS_SELECTOR, ".answer-text, .chip.source")
        return None
    assert reply.get_attribute("data-found") == "true"
    answer = reply.find_element(By.CSS_SELECTOR, ".answer-text").get_property("textContent")
    chips = reply.find_elements(By.CSS_SELECTOR, ".chip.source")
    assert answer and chips
    assert [c.find_element(By.CSS_SELECTOR, ".num").text for c in chips] == \
        [f"[{n}]" for n in range(1, len(chips) + 1)]
    return answer


# the scenario --------------------------------------------------------------------------------------------------
def test_collection_picker_and_filters(server, browser):
    """A second collection made over the API shows up in the picker; questions go to the chosen one and the
    source chip shows outlet and date and links the URL; a source filter keeps the answer inside it, and a
    filter that matches nothing says so."""
    from conftest import DOC_000
    from tests.test_collections import FINANCE, FINANCE_Q, WHEN

    url, _ = server
    wait_ready(url)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"text": FINANCE.text, "id": FINANCE.id,
            "metadata": {"source": "财新", "published": "2023-06-15", "url": "https://example.com/rrr"}}
    assert httpx.post(url + "/v1/documents?collection=finance", json=body, headers=auth, timeout=120).status_code == 201
    driver = browser
    driver.get(url + "/")
    wait(driver, lambda d: status(d)[0] == "ready", message="the page never said ready")
    picker = driver.find_element(By.ID, "collection-select")
    wait(driver, lambda d: "finance" in [o.get_attribute("value") for o in picker.find_elements(By.TAG_NAME, "option")],
         timeout=30, message="the picker does not list the new collection")
    from selenium.webdriver.support.ui import Select

    Select(picker).select_by_value("finance")
    wait(driver, lambda d: [li.get_attribute("data-id") for li in d.find_elements(By.CSS_SELECTOR, "#doc-list li")]
         == [FINANCE.id], timeout=30, message="the document list did not switch collection")
    reply = ask(driver, FINANCE_Q)
    assert check_reply(driver, reply) == "5000亿元"
    chip = reply.find_element(By.CSS_SELECTOR, ".chip.source")
    assert chip.find_element(By.CSS_SELECTOR, ".outlet").text == "财新 · 2023-06-15"
    assert reply.find_element(By.CSS_SELECTOR, "a.source-link").get_attribute("href") == "https://example.com/rrr"
    assert open_source(driver, reply)["document"] == FINANCE.id
    assert "财新" in driver.find_element(By.ID, "article-meta").text
    screenshot(driver, "collection-finance.png")

    Select(picker).select_by_value("default")
    source = driver.find_element(By.ID, "filter-source")
    source.send_keys("人民日报")
    assert "来源：人民日报" in driver.find_element(By.ID, "scope-summary").text
    reply = ask(driver, WHEN)
    assert check_reply(driver, reply)
    chips = reply.find_elements(By.CSS_SELECTOR, ".chip.source")
    assert {c.get_attribute("data-document") for c in chips} == {DOC_000}
    assert "人民日报 · 2023-05-31" in chips[0].text
    source.clear()
    source.send_keys("路透社")
    reply = ask(driver, WHEN)
    assert check_reply(driver, reply) is None
    assert "筛选条件没有匹配任何文章" in reply.find_element(By.CSS_SELECTOR, ".no-match").text
    screenshot(driver, "filter-no-match.png")
    driver.find_element(By.ID, "filter-clear").click()
    assert not source.get_property("value")


def test_chat_page_end_to_end(server, browser, tmp_path):
    url, process = server
    driver = browser

    # the page and its assets come from the package; the status says loading until /ready is 200 --------------
    assert httpx.get(url + "/").headers["content-type"].startswith("text/html")
    assert httpx.get(url + "/static/app.js").status_code == 200
    assert httpx.get(url + "/static/../api/app.py").status_code == 404
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)
    driver.get(url + "/")
    assert driver.title.startswith("新闻问答")
    assert js(driver, "return [window.innerWidth, window.innerHeight]") == [1280, 900]
    wait(driver, lambda d: status(d)[1] != "正在连接服务器…", timeout=30, message="the page never polled /ready")
    state, text = status(driver)
    if httpx.get(url + "/ready").status_code == 503:  # still loading now: the page's earlier poll saw 503 too
        assert state == "loading" and "加载" in text, text
    else:
        assert state in ("loading", "ready"), text
    wait_ready(url)
    wait(driver, lambda d: status(d)[0] == "ready", timeout=30, message="the page never said ready")
    assert "2 篇文档" in status(driver)[1]
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list li")) == 2, timeout=30)
    assert js(driver, "return getComputedStyle(document.body).fontFamily").startswith('"PingFang SC"')

    # Shift+Enter breaks the line and sends nothing -------------------------------------------------------------
    box = driver.find_element(By.ID, "question")
    box.send_keys("第一行", Keys.SHIFT, Keys.ENTER, Keys.NULL, "第二行")
    assert box.get_property("value") == "第一行\n第二行"
    assert not replies(driver)
    box.clear()

    # a question: the answer streams in (busy meanwhile), with numbered source chips -----------------------------
    js(driver, """window.__states = [];
        new MutationObserver(() => window.__states.push(document.getElementById('status').dataset.state))
          .observe(document.getElementById('status'), {attributes: true, childList: true, characterData: true});""")
    reply = ask(driver, EASY)
    assert "busy" in js(driver, "return window.__states")
    assert status(driver)[0] == "ready"
    answer = check_reply(driver, reply)
    assert answer is not None and "2007" in answer, reply.text
    user = driver.find_elements(By.CSS_SELECTOR, "#messages > .msg.user")[-1]
    assert user.text == EASY

    # its chip opens the article: the cited passage highlighted, the answer span inside it highlighted more ----------
    shown = open_source(driver, reply)
    assert shown["document"] == DOC_002
    assert shown["text"] == original(DOC_002)  # the original text, offsets intact
    assert shown["answer"] == answer
    assert shown["answerInPassage"] and answer in shown["passage"] and len(shown["passage"]) > len(answer)
    assert shown["marks"] == 2 and shown["elements"] == 0
    assert shown["visible"]
    styles = js(driver, """const a = document.querySelector('mark.answer'), p = document.querySelector('mark.passage');
        return [getComputedStyle(a).backgroundColor, getComputedStyle(p).backgroundColor,
                getComputedStyle(a).fontWeight];""")
    assert styles[0] != styles[1] and int(styles[2]) >= 600
    screenshot(driver, "desktop-answer.png")

    # a follow-up: the history goes along, so 它 becomes 中关村论坛 -------------------------------------------------
    reply = ask(driver, FOLLOW_UP)
    searched = reply.find_element(By.CSS_SELECTOR, ".searched").text
    assert "中关村论坛" in searched, searched
    follow_answer = check_reply(driver, reply)
    if follow_answer is not None:
        shown = open_source(driver, reply)
        assert same_text(shown["answer"], follow_answer) and shown["answerInPassage"]

    # upload: refused without the token, indexed with it; the HTML inside stays text -----------------------------
    path = tmp_path / UPLOAD_NAME
    path.write_text(UPLOAD_TEXT, encoding="utf-8")
    driver.find_element(By.ID, "file-input").send_keys(str(path))
    driver.find_element(By.ID, "upload-button").click()
    message = driver.find_element(By.ID, "doc-message")
    wait(driver, lambda d: "error" in message.get_attribute("class"), timeout=30)
    assert "令牌" in message.text, message.text
    driver.find_element(By.ID, "token-input").send_keys(TOKEN)
    driver.find_element(By.ID, "file-input").send_keys(str(path))
    driver.find_element(By.ID, "upload-button").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list li")) == 3, timeout=300,
         message="the uploaded document never appeared in the list")
    assert "moonlake" in message.text and "ok" in message.get_attribute("class")
    item = driver.find_element(By.CSS_SELECTOR, "#doc-list li[data-id='moonlake']")
    assert 'onerror="window.__pwned=1"' in item.find_element(By.CSS_SELECTOR, ".doc-title").text
    wait(driver, lambda d: "3 篇文档" in status(d)[1], timeout=30)

    reply = ask(driver, UPLOAD_QUESTION)
    upload_answer = check_reply(driver, reply)
    assert upload_answer is not None, reply.text
    chip = reply.find_element(By.CSS_SELECTOR, ".chip.source")
    assert chip.get_attribute("data-document") == "moonlake"
    shown = open_source(driver, reply)
    assert shown["text"] == UPLOAD_TEXT and shown["answer"] == upload_answer and shown["answerInPassage"]
    assert shown["elements"] == 0  # <img>/<script> in the document are text, not elements
    assert "<script>" in shown["text"]
    assert js(driver, "return window.__pwned === undefined && !document.querySelector('img')")
    screenshot(driver, "desktop-upload.png")

    # remove it again (two clicks: arm, confirm) --------------------------------------------------------------------
    remove = item.find_element(By.CSS_SELECTOR, ".doc-remove")
    remove.click()
    assert remove.text == "确认删除"
    remove.click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#doc-list li")) == 2, timeout=120,
         message="the document was not removed")
    assert driver.find_element(By.ID, "article").get_attribute("hidden") is not None  # its article closed
    assert "moonlake" not in [d["id"] for d in httpx.get(url + "/v1/documents").json()["documents"]]

    # not found is shown as such: the real reply when the reader refuses, and a refusal streamed from a stub ----------
    reply = ask(driver, NONSENSE)
    if (nonsense := check_reply(driver, reply)) is not None:  # the early reader answers everything
        shown = open_source(driver, reply)
        assert same_text(shown["answer"], nonsense) and shown["answerInPassage"]
    refusal = httpx.post(url + "/v1/ask", json={"question": NONSENSE}, timeout=120).json()
    refusal.update(answer=None, citations=[], score=0.0)
    stream = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in (
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "文章中没有找到答案。"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "qa": refusal})) + "data: [DONE]\n\n"
    js(driver, """const body = arguments[0], real = window.fetch;
        window.fetch = (input, init) => String(input).endsWith('/v1/chat/completions')
          ? Promise.resolve(new Response(body, {headers: {'Content-Type': 'text/event-stream'}}))
          : real(input, init);""", stream)
    reply = ask(driver, NONSENSE)
    assert check_reply(driver, reply) is None
    nearest = reply.find_elements(By.CSS_SELECTOR, ".chip.nearest")
    assert len(nearest) == len(refusal["passages"]) > 0
    shown = open_source(driver, reply)
    first = refusal["passages"][0]
    assert shown["answer"] is None and shown["document"] == first["document"]
    assert shown["passage"] == original(first["document"])[first["start"]:first["end"]]
    js(driver, "location.reload()")  # drop the stub and the conversation
    wait(driver, lambda d: status(d)[0] == "ready", timeout=30)

    # the phone: one column, documents in a drawer, the article over the chat ----------------------------------------
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        assert js(driver, "return [window.innerWidth, window.innerHeight]") == [390, 844]
        reply = ask(driver, EASY)
        assert "2007" in (check_reply(driver, reply) or "")
        assert js(driver, "return document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(driver, "phone-chat.png")
        shown = open_source(driver, reply)
        assert shown["answer"] == check_reply(driver, reply) and shown["visible"]
        rect = js(driver, "const r = document.getElementById('article').getBoundingClientRect();"
                          "return [r.left, r.width]")
        assert rect == [0, 390]
        screenshot(driver, "phone-article.png")
        driver.find_element(By.ID, "article-close").click()
        driver.find_element(By.ID, "docs-toggle").click()
        wait(driver, lambda d: d.find_element(By.ID, "sidebar").rect["x"] >= 0, timeout=10)
        time.sleep(0.4)  # the drawer slides in
        screenshot(driver, "phone-documents.png")
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", DESKTOP)

    # the server goes away: the page says so, and a question fails with a clear message ---------------------------
    process.terminate()
    process.wait(30)
    wait(driver, lambda d: status(d)[0] == "down", timeout=30, message="the page never noticed the server is down")
    assert "无法连接" in status(driver)[1]
    box = driver.find_element(By.ID, "question")
    box.send_keys(EASY, Keys.ENTER)
    wait(driver, lambda d: replies(d)[-1].get_attribute("data-state") == "error", timeout=30)
    assert "无法连接服务器" in replies(driver)[-1].text
    assert box.get_property("value") == EASY  # the question is kept for when the server is back
    screenshot(driver, "desktop-down.png")
