"""The whole flow on one screen: question -> (follow-up rewrite) -> retrieve -> read -> shape -> check -> cited Answer.

    from qa import QAPipeline
    qa = QAPipeline()                      # bundled articles, models from models.txt
    qa.ask("中关村论坛在哪一年诞生？").answer   # '2007年'
"""

from __future__ import annotations

import functools
from collections import OrderedDict
import unicodedata
from pathlib import Path

from qa.answer_shape import CANDIDATES, shape
from qa.followup import standalone_question
from qa.library import DocumentLibrary, build_retriever
from qa.models import model_for, runtime_for
from qa.reader import Reader
from qa.refusal import checks
from qa.settings import Settings
from qa.types import Answer, Citation, Passage
from retriever.documents import Document, DocumentError, bundled_documents, iter_files, read_document
from retriever.embedder import Embedder
from retriever.factory import open_index
from retriever.filters import matching
from retriever.hybrid import check_mode
from retriever.local_models import resolve_model_path
from retriever.normalize import normalize
from retriever.text import to_simplified


def early_stop_setting(value: str) -> float | None:
    """QA_EARLY_STOP: "off" reads every passage; a number is the margin at which reading stops (either replaces
    the reader's stop model)."""
    if value.strip().lower() in ("off", "none", "no"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"QA_EARLY_STOP must be a number or off, not {value!r}") from None


class QuestionError(ValueError):
    """A question we cannot ask (empty, too long)."""


class QAPipeline(DocumentLibrary):
    def __init__(self, settings: Settings | None = None, corpus: Path | None = None, progress: bool = False,
                 index=None):
        """Over the default index, or an ad-hoc folder (corpus), or an index already open (index: `qa eval
        --distractors` brings the benchmark's)."""
        self.settings = settings or Settings()
        check_mode(self.settings.retrieval)  # before minutes of loading, not at the first question
        # QA_EARLY_STOP checked before loading too; unset (None) keeps the reader's own
        stop = early_stop_setting(self.settings.early_stop) if self.settings.early_stop is not None else None
        if corpus is not None and not iter_files([corpus]):
            raise DocumentError(f"{corpus}: no .txt, .md, .html or .pdf files in this folder")
        if index is None:
            seed = (lambda: [read_document(p) for p in iter_files([corpus])]) if corpus else bundled_documents
            embedder = Embedder(model_for("embedder"), runtime_for("embedder"), self.settings.home)
            index = open_index(self.settings, corpus, embedder, seed, progress)  # FAISS or Milvus (settings.store)
        self.index = index  # the default collection (today's one index)
        if corpus:  # an ad-hoc folder: follow its current contents
            self.sync_folder(corpus, progress)
        self.retriever = build_retriever(self.index, self.settings)
        self.reader = Reader.load(resolve_model_path(model_for("reader")), runtime_for("reader"),
                                  self.settings.home)
        if self.settings.no_answer_threshold is not None:
            self.reader.no_answer_threshold = self.settings.no_answer_threshold
        if self.settings.early_stop is not None:  # the setting replaces the checkpoint's margin cutoff and stop model
            self.reader.early_stop, self.reader.stop_model = stop, None
        self._recent: OrderedDict = OrderedDict()  # LRU of answers to repeated questions

    def ask(self, question: str, top_k: int | None = None, history: list[str] | None = None,
            collection: str | None = None, filters: dict | None = None) -> Answer:
        """The answer from one collection (None: the default one), reading only the documents `filters` lets
        through (retriever.filters; a bad filter raises FilterError, an unknown collection CollectionNotFound)."""
        question = self.check_question(question)
        # history is context from the client: a lone surrogate there becomes U+FFFD instead of a crash
        history = [h.encode("utf-8", "replace").decode("utf-8") if isinstance(h, str) else "" for h in history or []]
        searched = standalone_question(question, history)
        name = self.collection_name(collection)
        index, retriever = self.collection(name)
        state = index.state  # one snapshot for the whole question, whatever writes happen meanwhile
        docs = matching(state, filters)  # checked before the cache: a bad filter is an error every time
        r = self.reader
        key = (question, searched, top_k or self.settings.top_k, r.no_answer_threshold, r.type_slack,
               r.clause_penalty, r.early_stop, r.skip_behind, r.stop_model, name,
               None if docs is None else frozenset(docs))
        cached = self._recent.get(key)
        if cached is not None and cached[0] is state:  # the same question on the same index snapshot
            self._recent.move_to_end(key)
            return cached[1].model_copy(deep=True)
        answer = self._answer(question, searched, state, top_k, retriever, docs)
        answer.collection = name
        if docs is not None:
            answer.filtered_documents = len(docs)
            if not docs:
                answer.note = "the filter matched no document"
        self._recent[key] = (state, answer.model_copy(deep=True))  # holding the state keeps `is` meaningful
        if len(self._recent) > 256:
            self._recent.popitem(last=False)
        return answer

    def _answer(self, question: str, searched: str, state, top_k: int | None, retriever, docs) -> Answer:
        hits = retriever.retrieve(searched, top_k or self.settings.top_k, self.settings.retrieval, state, docs)
        passages = [self._passage(state.documents[chunk.doc_id], chunk, score) for chunk, score in hits]
        # the reader was trained on Simplified text; the conversion keeps offsets, the answer quotes the original
        simplified = to_simplified(searched)
        texts = [to_simplified(chunk.text) for chunk, _ in hits]
        spans = self.reader.read(simplified, texts, n_best=CANDIDATES)  # read: the model's n-best spans
        span = shape(simplified, spans, texts, self.reader.type_slack)  # shape: the one that answers what is asked
        located = self._locate(span, hits, state) if span else None
        not_given = self._not_given(simplified, span, located, hits, state)  # check: do the articles say it?
        if span is None or span.margin < self.reader.no_answer_threshold or not_given:
            # refused: the closest passages still go back, with how sure the reader is that they answer (none
            # when the articles do not give what is asked)
            return Answer(question=question, searched_question=searched, answer=None,
                          score=span.margin if span else 0.0,
                          confidence=self.reader.confidence(span.margin) if span and not not_given else 0.0,
                          passages=passages)
        chunk, doc, start, end = located
        citation = Citation(
            document=doc.id, title=doc.title, passage=chunk.text, passage_start=chunk.start,
            passage_end=chunk.end, start=start, end=end, quote=doc.text[start:end],
            sentence_ids=list(chunk.sentences), **published(doc),
        )
        # the answer is the article's own words: the original span with only its line breaks taken out
        words = "".join(doc.text[start:end].split("\n")).replace("\r", "").strip()
        return Answer(question=question, searched_question=searched, answer=words, score=span.margin,
                      confidence=self.reader.confidence(span.margin),
                      citations=[citation], passages=passages)

    @staticmethod
    def _locate(span, hits, state):
        """(chunk, document, start, end): where the span stands in its original file."""
        chunk = hits[span.passage][0]
        doc = state.documents[chunk.doc_id]
        start, end = normalized(doc.text).to_original(chunk.norm_start + span.start, chunk.norm_start + span.end)
        return chunk, doc, start, end

    @staticmethod
    def _not_given(question: str, span, located, hits, state) -> bool:
        """Any refusal check fires (qa.refusal.checks), on whole articles: a passage may not repeat its article's
        year, and a name the question is about may stand just outside the passage read."""
        texts = {d: simplified_text(state.documents[d].text) for d in dict.fromkeys(c.doc_id for c, _ in hits)}
        articles = list(texts.values())
        if span is None:
            return any(checks(question, articles).values())
        chunk, _, start, end = located
        return any(checks(question, articles, span.text, texts[chunk.doc_id], start, end).values())

    # helpers -------------------------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("the question is empty")
        question = question.strip()
        if not any(unicodedata.category(c)[0] in "LN" for c in question):
            raise QuestionError("the question has no words, only punctuation or symbols")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(f"the question is longer than {self.settings.max_question_chars} characters")
        try:
            question.encode("utf-8")
        except UnicodeEncodeError:  # lone UTF-16 surrogates (e.g. JSON "\ud800"): no model can read them
            raise QuestionError("the question is not valid Unicode text (it has lone surrogate characters)") from None
        return question

    @staticmethod
    def _passage(doc: Document, chunk, score: float) -> Passage:
        return Passage(document=doc.id, title=doc.title, text=chunk.text, start=chunk.start, end=chunk.end,
                       score=score, sentence_ids=list(chunk.sentences), **published(doc))


def published(doc: Document) -> dict:
    """The outlet, date and URL a citation carries."""
    return {key: doc.meta.get(key) for key in ("source", "published", "url")}


@functools.lru_cache(maxsize=256)
def simplified_text(text: str) -> str:
    """A whole article in Simplified characters (cached: the refusal checks read it on every question)."""
    return to_simplified(text)


@functools.lru_cache(maxsize=256)
def normalized(text: str):
    """Normalised text of a document (cached: the answer's offsets map back through it)."""
    return normalize(text)
