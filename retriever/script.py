"""Traditional -> Simplified Chinese (OpenCC t2s), aligned character for character so offsets still hold."""

from __future__ import annotations

import functools


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
