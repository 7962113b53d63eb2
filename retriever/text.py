"""Text helpers both layers share: ASCII lowering, Traditional -> Simplified (OpenCC t2s), jieba set up once.

Each keeps the text's length, so character offsets hold across them.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sqlite3
import sys
import threading
from pathlib import Path

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lower_ascii(text: str) -> str:
    """The bert-base-chinese vocabulary is lowercase; A-Z would be [UNK]. Length-preserving, so offsets hold."""
    return text.translate(ASCII_LOWER)


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=4096)
def _char(ch: str) -> str:
    converted = _t2s().convert(ch)
    return converted if len(converted) == 1 else ch


def to_simplified(text: str) -> str:
    """Same length as text: phrase-level conversion when it keeps the length, else character by character."""
    converted = _t2s().convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_char(c) for c in text)


_LOADING = threading.RLock()  # load_posseg holds it while load_jieba takes it too


@functools.lru_cache(maxsize=1)
def load_jieba():
    """jieba, set up once and quietly, its dictionary read from disk word by word (retriever.word_dict) unless a
    caller loaded it already; QA_JIEBA_WHOLE=1 loads it whole at once as jieba does."""
    with _LOADING:  # the server's first questions arrive together: one thread sets jieba up
        import jieba

        jieba.setLogLevel(logging.WARNING)
        if not jieba.dt.initialized and os.environ.get("QA_JIEBA_WHOLE") != "1":
            from retriever.word_dict import DiskWords, dictionary_file

            def whole():  # bulk segmentation: jieba's own dict from here on (same entries, faster lookups)
                jieba.dt.initialized = False
                jieba.dt.initialize()

            try:
                words = DiskWords(dictionary_file(Path(jieba.__file__).parent), "count", on_many_reads=whole)
            except (OSError, sqlite3.Error):  # no writable temp folder: jieba's own loading
                words = None
            if words is not None:
                with jieba.dt.lock:
                    jieba.dt.FREQ, jieba.dt.total, jieba.dt.initialized = words, words.total, True
        jieba.initialize()  # a no-op once initialised
        return jieba


@functools.lru_cache(maxsize=1)
def load_posseg():
    """jieba.posseg with its word-tag table read from the same file instead of from jieba's dict.txt at import."""
    with _LOADING:  # the server's first questions arrive together: one thread sets jieba up
        from retriever.word_dict import DiskWords, dictionary_file

        jieba = load_jieba()
        if "jieba.posseg" not in sys.modules and isinstance(jieba.dt.FREQ, DiskWords):
            jieba.dt.get_dict_file = lambda: io.BytesIO(b"")  # posseg reads the tags at import: nothing to read
            try:
                import jieba.posseg as pseg
            finally:
                del jieba.dt.get_dict_file
            pseg.dt.word_tag_tab = DiskWords(dictionary_file(Path(jieba.__file__).parent), "tag")
            return pseg
        import jieba.posseg as pseg

        return pseg


def tagged_words(text: str) -> list[tuple[int, str, str]]:
    """(offset, word, jieba part-of-speech tag) for each word of the text."""
    pseg = load_posseg()
    position, words = 0, []
    for w in pseg.cut(text):
        words.append((position, w.word, w.flag))
        position += len(w.word)
    return words


def uncased_vocabulary(tokenizer) -> bool:
    """Whether ASCII must be lowered before this tokenizer: bert-base-chinese's vocabulary (m3e-small) is lowercase
    and its tokenizer does not lower, so A-Z would be [UNK]; a cased vocabulary (XLM-R's, e5-small) keeps its case."""
    # encode: a transformers tokenizer and a retriever.tokens.Tokenizer both give the ids
    return tokenizer.unk_token_id in tokenizer.encode("ABC", add_special_tokens=False)
