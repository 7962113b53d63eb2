"""Text helpers both layers share: ASCII lowering, Traditional -> Simplified (OpenCC t2s), jieba set up once.

Each keeps the text's length, so character offsets hold across them.
"""

from __future__ import annotations

import functools
import logging

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


@functools.lru_cache(maxsize=1)
def load_jieba():
    """jieba, initialised once and quietly (it logs its dictionary loading at INFO)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tagged_words(text: str) -> list[tuple[int, str, str]]:
    """(offset, word, jieba part-of-speech tag) for each word of the text."""
    import jieba.posseg as pseg

    load_jieba()
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
