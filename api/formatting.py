"""The assistant's text for an Answer (chat completions), and the way back: an earlier reply -> its answer."""

from __future__ import annotations

import re

from qa.types import Answer

ANSWER_PREFIX = "答案："
NOT_FOUND = "文章中没有找到答案。"
NO_MATCH = "筛选条件没有匹配任何文章。"
SOURCES = "来源："
_CJK = r"\u3000-\u303f\u3400-\u9fff\uff00-\uffef"


def one_line(text: str) -> str:
    """Join a passage's lines: no space between Chinese characters, one space elsewhere."""
    text = re.sub(rf"(?<=[{_CJK}])[ \t]*\n\s*(?=[{_CJK}])", "", text.strip())
    return re.sub(r"\s+", " ", text)


def answer_text(answer: Answer) -> str:
    """The answer in a sentence, then the numbered sources (title + quoted passage); or the not-found message."""
    if answer.answer is None:
        text = NOT_FOUND
        if answer.filtered_documents == 0:
            text += NO_MATCH
        if answer.passages:
            text += f"\n\n最接近的段落来自《{answer.passages[0].title}》，但其中没有这个问题的答案。"
        return text
    lines = [f"{ANSWER_PREFIX}{answer.answer}。", "", SOURCES]
    for n, citation in enumerate(answer.citations, 1):
        where = "，".join(x for x in (citation.source, citation.published) if x)
        where = f"（{where}）" if where else ""
        lines.append(f"[{n}] 《{citation.title}》{where}：“{one_line(citation.passage)}”")
    return "\n".join(lines)


def pieces(text: str) -> list[str]:
    """The text in stream-sized pieces (line by line, newlines kept), concatenating back to text."""
    return [p for p in re.split(r"(?<=\n)", text) if p]


def answer_of_reply(content: str) -> str:
    """An earlier assistant message -> the answer it gave ("" when it found none), for follow-up rewriting."""
    content = (content or "").strip()
    first = content.split("\n", 1)[0].strip()
    if NOT_FOUND.rstrip("。") in first:
        return ""
    if first.startswith(ANSWER_PREFIX):
        return first[len(ANSWER_PREFIX):].rstrip("。").strip()
    return content
