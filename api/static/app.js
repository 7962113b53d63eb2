// qa-zh chat page. Plain JS, no dependencies, no network beyond this server.
// Every piece of document or answer text goes into the page through textContent / text nodes, never
// innerHTML: articles may contain HTML or <script>.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const els = {
    status: $("status"),
    messages: $("messages"),
    form: $("ask-form"),
    question: $("question"),
    send: $("send"),
    clear: $("clear"),
    docList: $("doc-list"),
    docCount: $("doc-count"),
    docEmpty: $("doc-empty"),
    docMessage: $("doc-message"),
    uploadForm: $("upload-form"),
    fileInput: $("file-input"),
    tokenInput: $("token-input"),
    uploadButton: $("upload-button"),
    docsToggle: $("docs-toggle"),
    article: $("article"),
    articleTitle: $("article-title"),
    articleMeta: $("article-meta"),
    articleText: $("article-text"),
    articleClose: $("article-close"),
    collection: $("collection-select"),
    filterSource: $("filter-source"),
    filterSince: $("filter-since"),
    filterUntil: $("filter-until"),
    filterTag: $("filter-tag"),
    filterClear: $("filter-clear"),
    sourceOptions: $("source-options"),
    scopeSummary: $("scope-summary"),
  };

  const state = {
    server: "loading", // loading | ready | failed | down
    serverError: null,
    documents: null,
    chatting: false,
    uploading: false,
    conversation: [], // [{role, content}] of answered turns: sent as the history of the next question
    docCache: new Map(), // collection + "\u0000" + id -> {id, title, text, ...}
    collection: "default", // the collection questions, the document list and uploads go to
    articleRequest: 0,
    pollTimer: null,
  };

  // helpers -------------------------------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function authHeaders() {
    const token = els.tokenInput.value.trim();
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function errorMessage(response) {
    let message = "HTTP " + response.status;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (_) { /* not JSON */ }
    if (response.status === 401) message += "（请在左侧“令牌”一栏填写 API 令牌）";
    if (response.status === 503) message = "服务器还没有准备好：" + message;
    return message;
  }

  function oneLine(text) {
    return String(text || "").replace(/\s*\n\s*/g, " ").trim();
  }

  function scrollMessages() {
    els.messages.scrollTop = els.messages.scrollHeight;
  }

  // server status -------------------------------------------------------------------------------------------
  function renderStatus() {
    let key = state.server;
    let text;
    if (key === "ready" && (state.chatting || state.uploading)) key = "busy";
    switch (key) {
      case "ready":
        text = "就绪" + (state.documents !== null ? " · " + state.documents + " 篇文档" : "");
        break;
      case "busy":
        text = state.chatting ? "正在回答…" : "正在索引文档…";
        break;
      case "loading":
        text = "服务器正在加载模型和索引，请稍候…";
        break;
      case "failed":
        text = "服务器加载失败：" + (state.serverError || "未知错误");
        break;
      default:
        text = "无法连接服务器";
    }
    els.status.dataset.state = key;
    els.status.textContent = text;
    els.status.title = text;
    els.send.disabled = state.chatting;
    els.uploadButton.disabled = state.uploading;
  }

  function setServer(server, error) {
    const wasReady = state.server === "ready";
    state.server = server;
    state.serverError = error || null;
    renderStatus();
    if (server === "ready" && !wasReady) {
      state.docCache.clear(); // the server may have restarted over other documents
      loadCollections();
      loadDocuments();
    }
  }

  function schedulePoll(ms) {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(pollReady, ms);
  }

  async function pollReady() {
    try {
      const response = await fetch("/ready", { cache: "no-store" });
      let body = {};
      try { body = await response.json(); } catch (_) { /* keep {} */ }
      if (response.ok && body.ready) {
        const changed = state.server === "ready" && typeof body.documents === "number"
          && body.documents !== state.documents; // added or removed elsewhere (qa add, another tab)
        if (typeof body.documents === "number") state.documents = body.documents;
        setServer("ready");
        if (changed) loadDocuments();
      } else if (body.status === "failed") {
        setServer("failed", body.error);
      } else {
        setServer("loading");
      }
    } catch (_) {
      setServer("down");
    }
    schedulePoll(state.server === "ready" ? 5000 : 1500);
  }

  function connectionLost() {
    setServer("down");
    schedulePoll(1500);
  }

  // chat ----------------------------------------------------------------------------------------------------
  function addMessage(role, text) {
    const intro = els.messages.querySelector(".intro");
    if (intro) intro.hidden = true;
    const node = el("div", "msg " + role, text);
    els.messages.appendChild(node);
    scrollMessages();
    return node;
  }

  function showError(bubble, message) {
    bubble.className = "msg error";
    bubble.dataset.state = "error";
    bubble.textContent = message;
    scrollMessages();
  }

  // scope: collection and filters ---------------------------------------------------------------------------
  function inCollection(path) {
    return state.collection === "default" ? path
      : path + (path.includes("?") ? "&" : "?") + "collection=" + encodeURIComponent(state.collection);
  }

  function modelName() {
    return state.collection === "default" ? "qa-zh" : "qa-zh/" + state.collection;
  }

  function filters() {
    const f = {};
    const source = els.filterSource.value.trim();
    const tag = els.filterTag.value.trim();
    if (source) f.source = source;
    if (els.filterSince.value) f.since = els.filterSince.value;
    if (els.filterUntil.value) f.until = els.filterUntil.value;
    if (tag) f.tags = tag.split(/[,，、\s]+/).filter(Boolean);
    return Object.keys(f).length ? f : null;
  }

  function renderScope() {
    const f = filters();
    const parts = ["文档集：" + state.collection];
    if (f) {
      if (f.source) parts.push("来源：" + f.source);
      if (f.since || f.until) parts.push("日期：" + (f.since || "…") + " 至 " + (f.until || "…"));
      if (f.tags) parts.push("标签：" + f.tags.join("、"));
    }
    els.scopeSummary.textContent = parts.join(" · ");
  }

  async function loadCollections() {
    let response;
    try {
      response = await fetch("/v1/collections", { cache: "no-store" });
    } catch (_) {
      return;
    }
    if (!response.ok) return;
    const names = ((await response.json()).collections || []).map((c) => c.name);
    if (!names.includes(state.collection)) state.collection = "default";
    els.collection.textContent = "";
    for (const name of names) {
      const option = el("option", null, name);
      option.value = name;
      els.collection.appendChild(option);
    }
    els.collection.value = state.collection;
    renderScope();
  }

  function chooseCollection() {
    state.collection = els.collection.value || "default";
    state.conversation = []; // follow-ups do not cross collections
    closeArticle();
    renderScope();
    loadDocuments();
  }

  // where and when a cited document was published: "新华社 · 2023-05-27"
  function outletLine(item) {
    return [item.source, item.published ? item.published.slice(0, 10) : null].filter(Boolean).join(" · ");
  }

  function sourceLink(url) {
    if (!/^https?:\/\//i.test(url || "")) return null;
    const link = el("a", "source-link", "↗");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.title = url;
    return link;
  }

  function chip(number, label, tooltip, onOpen, nearest) {
    const button = el("button", "chip" + (nearest ? " nearest" : ""));
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.appendChild(el("span", "num", number));
    button.appendChild(document.createTextNode(label));
    button.title = tooltip;
    button.addEventListener("click", () => {
      document.querySelectorAll(".chip[aria-pressed='true']").forEach((c) => c.setAttribute("aria-pressed", "false"));
      button.setAttribute("aria-pressed", "true");
      onOpen();
    });
    return button;
  }

  function renderAnswer(bubble, qa) {
    bubble.textContent = "";
    const found = qa.answer !== null && qa.answer !== undefined;
    bubble.dataset.found = found ? "true" : "false";
    const line = el("div", "answer-line");
    bubble.appendChild(line);
    if (found) {
      line.appendChild(document.createTextNode("答案："));
      line.appendChild(el("span", "answer-text", qa.answer));
      const sources = el("div", "sources");
      sources.appendChild(el("span", "sources-label", "来源："));
      qa.citations.forEach((c, i) => {
        const button = chip("[" + (i + 1) + "]", "《" + c.title + "》", oneLine(c.passage),
          () => openArticle(c.document, c.title, {
            passageStart: c.passage_start, passageEnd: c.passage_end, start: c.start, end: c.end,
          }));
        button.classList.add("source");
        button.dataset.document = c.document;
        const outlet = outletLine(c);
        if (outlet) button.appendChild(el("span", "outlet", outlet));
        sources.appendChild(button);
        const link = sourceLink(c.url);
        if (link) sources.appendChild(link);
      });
      bubble.appendChild(sources);
    } else {
      line.appendChild(el("span", "not-found", "文章中没有找到答案。"));
      if (qa.filtered_documents === 0) bubble.appendChild(el("div", "hint no-match", "筛选条件没有匹配任何文章。"));
      const passages = qa.passages || [];
      if (passages.length) {
        bubble.appendChild(el("div", "hint", "最接近的段落（其中没有这个问题的答案）："));
        const sources = el("div", "sources");
        passages.forEach((p, i) => {
          const button = chip("[" + (i + 1) + "]", "《" + p.title + "》", oneLine(p.text),
            () => openArticle(p.document, p.title, { passageStart: p.start, passageEnd: p.end }), true);
          button.dataset.document = p.document;
          sources.appendChild(button);
        });
        bubble.appendChild(sources);
      }
    }
    if (qa.searched_question && qa.searched_question !== qa.question) {
      bubble.appendChild(el("span", "searched", "按上下文理解为：" + qa.searched_question));
    }
    bubble.dataset.state = "done";
    scrollMessages();
  }

  // Server-sent events from fetch: "data: {...}\n\n" blocks; the last chunk carries the Answer in `qa`.
  async function readStream(response, onText) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffer = "";
    let text = "";
    let qa = null;
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const events = buffer.split(/\r?\n\r?\n/);
      buffer = done ? "" : events.pop();
      for (const event of events) {
        const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        if (data === "[DONE]") return { text, qa };
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "回答失败");
        const choice = chunk.choices && chunk.choices[0];
        if (choice && choice.delta && typeof choice.delta.content === "string" && choice.delta.content) {
          text += choice.delta.content;
          onText(text);
        }
        if (chunk.qa) qa = chunk.qa;
      }
      if (done) return { text, qa };
    }
  }

  async function ask(question) {
    state.chatting = true;
    renderStatus();
    addMessage("user", question);
    const bubble = addMessage("assistant", "");
    bubble.dataset.state = "streaming";
    // the history: earlier answered turns (the last 20), so follow-ups like 它/他 resolve on the server
    const messages = state.conversation.slice(-40).concat([{ role: "user", content: question }]);
    let response;
    try {
      response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(Object.assign({ model: modelName(), stream: true, messages },
          filters() ? { filters: filters() } : {})),
      });
    } catch (_) {
      showError(bubble, "无法连接服务器，问题没有发出。请确认 qa serve 正在运行。");
      restoreQuestion(question);
      connectionLost();
      return finishChat();
    }
    if (!response.ok) {
      showError(bubble, await errorMessage(response));
      restoreQuestion(question);
      if (response.status === 503) pollReady();
      return finishChat();
    }
    try {
      const { text, qa } = await readStream(response, (partial) => {
        bubble.textContent = partial;
        scrollMessages();
      });
      if (!qa) throw new Error("回答不完整（连接中断）");
      renderAnswer(bubble, qa);
      state.conversation.push({ role: "user", content: question }, { role: "assistant", content: text });
    } catch (error) {
      showError(bubble, error instanceof TypeError ? "连接中断：" + error.message : error.message);
      if (error instanceof TypeError) connectionLost();
    }
    finishChat();
  }

  function finishChat() {
    state.chatting = false;
    renderStatus();
  }

  function restoreQuestion(question) {
    if (!els.question.value.trim()) els.question.value = question;
  }

  function submitQuestion() {
    if (state.chatting) return;
    const question = els.question.value.trim();
    if (!question) return;
    els.question.value = "";
    autoGrow();
    ask(question);
  }

  function autoGrow() {
    els.question.style.height = "auto";
    els.question.style.height = Math.min(els.question.scrollHeight + 2, window.innerHeight * 0.3) + "px";
  }

  // article -------------------------------------------------------------------------------------------------
  function closeArticle() {
    els.article.hidden = true;
    document.body.classList.remove("article-open");
    document.querySelectorAll(".chip[aria-pressed='true']").forEach((c) => c.setAttribute("aria-pressed", "false"));
  }

  async function fetchDocument(id) {
    const key = state.collection + "\u0000" + id;
    if (state.docCache.has(key)) return state.docCache.get(key);
    const response = await fetch(inCollection("/v1/documents/" + encodeURIComponent(id)), { cache: "no-store" });
    if (!response.ok) {
      throw new Error(response.status === 404 ? "这篇文档已经不在索引里了。" : await errorMessage(response));
    }
    const doc = await response.json();
    state.docCache.set(key, doc);
    return doc;
  }

  // ranges: {passageStart, passageEnd, start?, end?} — character offsets into the original text
  async function openArticle(id, title, ranges) {
    const request = ++state.articleRequest;
    document.body.classList.add("article-open");
    document.body.classList.remove("docs-open");
    els.docsToggle.setAttribute("aria-expanded", "false");
    els.article.hidden = false;
    els.article.dataset.document = id;
    els.article.dataset.state = "loading";
    els.articleTitle.textContent = title || id;
    els.articleMeta.textContent = "";
    els.articleText.textContent = "正在加载原文…";
    let doc;
    try {
      doc = await fetchDocument(id);
    } catch (error) {
      if (request !== state.articleRequest) return;
      els.articleText.textContent = error instanceof TypeError ? "无法连接服务器。" : error.message;
      els.article.dataset.state = "error";
      if (error instanceof TypeError) connectionLost();
      return;
    }
    if (request !== state.articleRequest) return; // another source was clicked meanwhile
    const text = doc.text || "";
    els.articleTitle.textContent = doc.title || title || id;
    const meta = [id, text.length + " 字"];
    const outlet = outletLine(doc.metadata || {});
    if (outlet) meta.push(outlet);
    const box = els.articleText;
    box.textContent = "";
    let target = null;
    const r = ranges || null;
    const hasPassage = r && Number.isInteger(r.passageStart) && Number.isInteger(r.passageEnd)
      && 0 <= r.passageStart && r.passageStart <= r.passageEnd && r.passageEnd <= text.length;
    const hasAnswer = hasPassage && Number.isInteger(r.start) && Number.isInteger(r.end)
      && r.passageStart <= r.start && r.start < r.end && r.end <= r.passageEnd;
    if (hasPassage) {
      box.appendChild(document.createTextNode(text.slice(0, r.passageStart)));
      const passage = el("mark", "passage");
      if (hasAnswer) {
        passage.appendChild(document.createTextNode(text.slice(r.passageStart, r.start)));
        target = el("mark", "answer", text.slice(r.start, r.end));
        passage.appendChild(target);
        passage.appendChild(document.createTextNode(text.slice(r.end, r.passageEnd)));
        meta.push("黄色：引用的段落，橙色：答案");
      } else {
        passage.appendChild(document.createTextNode(text.slice(r.passageStart, r.passageEnd)));
        target = passage;
        meta.push("黄色：最接近的段落");
      }
      box.appendChild(passage);
      box.appendChild(document.createTextNode(text.slice(r.passageEnd)));
    } else {
      box.textContent = text;
      if (r) meta.push("文档已经改变，无法标出引用位置");
    }
    els.articleMeta.textContent = meta.join(" · ");
    els.article.dataset.state = "done";
    if (target) target.scrollIntoView({ block: "center" });
    else box.scrollTop = 0;
  }

  // documents -----------------------------------------------------------------------------------------------
  function docMessage(text, kind) {
    els.docMessage.textContent = text;
    els.docMessage.className = "message" + (kind ? " " + kind : "");
  }

  async function loadDocuments() {
    let response;
    try {
      response = await fetch(inCollection("/v1/documents"), { cache: "no-store" });
    } catch (_) {
      connectionLost();
      return;
    }
    if (!response.ok) {
      docMessage(await errorMessage(response), "error");
      return;
    }
    const body = await response.json();
    if (state.collection === "default") state.documents = body.count; // /ready counts the default collection
    renderStatus();
    renderDocuments(body.documents || []);
    // the outlets of this collection, offered in the source filter
    const outlets = [...new Set((body.documents || []).map((d) => (d.metadata || {}).source).filter(Boolean))];
    els.sourceOptions.textContent = "";
    outlets.sort().forEach((o) => { const option = el("option"); option.value = o; els.sourceOptions.appendChild(option); });
  }

  function renderDocuments(documents) {
    els.docList.textContent = "";
    els.docCount.textContent = "(" + documents.length + ")";
    els.docEmpty.hidden = documents.length > 0;
    for (const doc of documents) {
      const item = el("li");
      item.dataset.id = doc.id;
      const open = el("button", "doc-open");
      open.type = "button";
      open.appendChild(el("span", "doc-title", doc.title || doc.id));
      const outlet = outletLine(doc.metadata || {});
      open.appendChild(el("span", "doc-meta", [doc.id, outlet, doc.characters + " 字"].filter(Boolean).join(" · ")));
      open.addEventListener("click", () => openArticle(doc.id, doc.title));
      const remove = el("button", "doc-remove", "删除");
      remove.type = "button";
      remove.title = "从索引中删除这篇文档";
      let timer = null;
      remove.addEventListener("click", () => {
        if (!remove.classList.contains("confirm")) { // first click arms, second click deletes
          remove.classList.add("confirm");
          remove.textContent = "确认删除";
          timer = setTimeout(() => { remove.classList.remove("confirm"); remove.textContent = "删除"; }, 4000);
          return;
        }
        clearTimeout(timer);
        removeDocument(doc.id, doc.title, remove);
      });
      item.appendChild(open);
      item.appendChild(remove);
      els.docList.appendChild(item);
    }
  }

  async function removeDocument(id, title, button) {
    button.disabled = true;
    let response;
    try {
      response = await fetch(inCollection("/v1/documents/" + encodeURIComponent(id)),
        { method: "DELETE", headers: authHeaders() });
    } catch (_) {
      button.disabled = false;
      docMessage("无法连接服务器。", "error");
      connectionLost();
      return;
    }
    if (!response.ok) {
      button.disabled = false;
      button.classList.remove("confirm");
      button.textContent = "删除";
      docMessage("删除失败：" + await errorMessage(response), "error");
      return;
    }
    state.docCache.delete(state.collection + "\u0000" + id);
    if (!els.article.hidden && els.article.dataset.document === id) closeArticle();
    docMessage("已删除《" + (title || id) + "》。", "ok");
    loadDocuments();
  }

  async function upload(event) {
    event.preventDefault();
    const file = els.fileInput.files && els.fileInput.files[0];
    if (!file) {
      docMessage("请先选择一个文件（.txt、.md、.html 或 .pdf）。", "error");
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    state.uploading = true;
    renderStatus();
    docMessage("正在索引《" + file.name + "》…");
    try {
      const response = await fetch(inCollection("/v1/documents"), { method: "POST", headers: authHeaders(), body: form });
      if (!response.ok) {
        docMessage("上传失败：" + await errorMessage(response), "error");
        return;
      }
      const result = await response.json();
      if (result.added && result.added.length) {
        result.added.forEach((id) => state.docCache.delete(state.collection + "\u0000" + id));
        docMessage("已添加：" + result.added.join("、"), "ok");
      } else {
        docMessage("内容相同的文档已经在索引里：" + (result.skipped || []).join("、"), "ok");
      }
      els.fileInput.value = "";
      await loadDocuments();
    } catch (_) {
      docMessage("无法连接服务器，上传没有完成。", "error");
      connectionLost();
    } finally {
      state.uploading = false;
      renderStatus();
    }
  }

  // wiring --------------------------------------------------------------------------------------------------
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitQuestion();
  });
  els.question.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter breaks the line; Enter that confirms an IME composition does neither
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submitQuestion();
    }
  });
  els.question.addEventListener("input", autoGrow);
  els.clear.addEventListener("click", () => {
    state.conversation = [];
    els.messages.querySelectorAll(".msg").forEach((m) => m.remove());
    const intro = els.messages.querySelector(".intro");
    if (intro) intro.hidden = false;
    closeArticle();
    els.question.focus();
  });
  els.uploadForm.addEventListener("submit", upload);
  els.collection.addEventListener("change", chooseCollection);
  els.collection.addEventListener("focus", loadCollections); // collections made elsewhere show up
  [els.filterSource, els.filterSince, els.filterUntil, els.filterTag].forEach((input) => {
    input.addEventListener("input", renderScope);
    input.addEventListener("change", renderScope);
  });
  els.filterClear.addEventListener("click", () => {
    [els.filterSource, els.filterSince, els.filterUntil, els.filterTag].forEach((input) => { input.value = ""; });
    renderScope();
  });
  els.articleClose.addEventListener("click", closeArticle);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !els.article.hidden) closeArticle();
  });
  els.docsToggle.addEventListener("click", () => {
    const open = document.body.classList.toggle("docs-open");
    els.docsToggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
  document.querySelector(".chat").addEventListener("click", () => {
    if (document.body.classList.contains("docs-open")) {
      document.body.classList.remove("docs-open");
      els.docsToggle.setAttribute("aria-expanded", "false");
    }
  });

  renderStatus();
  pollReady();
  els.question.focus();
})();
