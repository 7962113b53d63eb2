"""BM25 over Chinese words: jieba (search mode) plus character bigrams for names jieba does not know.

Frameworks that split on spaces see a Chinese sentence as one token; here every chunk is segmented, ASCII
is lowercased and Traditional characters are mapped to Simplified (OpenCC t2s) so either script matches.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np

from retriever.normalize import is_cjk_letter
from retriever.text import load_jieba, lower_ascii, to_simplified


def _is_word(token: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in token)


def tokenize(text: str) -> list[str]:
    text = to_simplified(lower_ascii(text))
    words = [w for w in load_jieba().lcut_for_search(text) if _is_word(w)]
    bigrams = []
    run = ""
    for ch in text + " ":
        if is_cjk_letter(ch):
            run += ch
            continue
        bigrams.extend(run[i : i + 2] for i in range(len(run) - 1))
        run = ""
    return words + ["#" + b for b in bigrams]  # '#' keeps bigrams apart from jieba's two-character words


# Question words carry no content, and their bigrams ("#是什", "#么职") match distractor articles. Cutting them
# out of the query (not the passages) gained one tune question of recall@5 with 7,180 distractor articles.
_QUESTION_WORDS = re.compile(
    r"为什么|什么样的?|什么|怎么样|怎样|怎么|如何|哪些|哪一?[个家里儿天年月位种项所次届条]|哪|谁|多少|"
    r"几(?=[个位家项届次年月日天倍])[个位家项届次年月日天倍]|是否|[吗呢]?[？?]$"
)


def strip_question_words(question: str) -> str:
    """'邓鸿森担任什么职务？' -> '邓鸿森担任 职务 ': the words of a question that can match a passage."""
    return _QUESTION_WORDS.sub(" ", question)


class LexicalIndex:
    """bm25s over pre-tokenised chunks, keyed by chunk id."""

    def __init__(self, ids: list[int], retriever):
        self.ids = ids
        self.retriever = retriever

    @classmethod
    def build(cls, tokens: dict[int, list[str]]) -> "LexicalIndex":
        import bm25s

        # bm25s sets its logger to DEBUG: wherever the root logger has a handler (a server's logging set-up,
        # or one a library installs) every build, one per question in the article stage, would print a line
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        ids = sorted(tokens)
        if not ids:
            return cls([], None)
        retriever = bm25s.BM25()
        retriever.index([tokens[i] or ["\u0000"] for i in ids], show_progress=False)
        return cls(ids, retriever)

    def search(self, query: str, k: int, only: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top k (chunk id, score); with `only` (chunk ids), among those chunks alone (scores of the rest
        masked before ranking, so the best of the slice come back, not the slice's share of the top k)."""
        if not self.ids or k <= 0:
            return []
        query_tokens = [t for t in tokenize(strip_question_words(query)) if t in self.retriever.vocab_dict]
        if not query_tokens:
            return []
        scores = self.retriever.get_scores(query_tokens)
        if only is not None:
            scores = np.where(np.isin(np.asarray(self.ids, dtype=np.int64), only), scores, 0.0)
        top = np.argsort(-scores)[:k]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
