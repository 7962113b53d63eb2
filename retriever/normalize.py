"""Normalising with offsets: join PDF line breaks inside Chinese text, keep a map back to the original.

Only whitespace is changed (dropped, or turned into one space / one newline), plus the column debris at the
end of a PDF extraction (a trailing run of one- or two-character lines). Every character of the normalised
text remembers its index in the original file, so an answer span maps back to exact original offsets.

A line break is joined when it looks like a wrap, not a paragraph end: the line before runs (nearly) to the
margin of its neighbours and does not end a sentence, and the next line is not indented. A blank line is
joined only in the middle of a sentence between two CJK characters ("不应成\\n\\n为埋在山洞里的宝藏").
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

SENTENCE_END = set("。！？!?；;…」』”’）)】:：—")
LINE_START_MARKS = set("　▲◀▶●■◆★·•-—")
_WS = re.compile(r"[ \t\r\n\u3000\u00a0\u2028\u2029\x0b\x0c]+")


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2FA1F
        or 0xF900 <= o <= 0xFAFF
        or 0x3000 <= o <= 0x303F  # CJK punctuation
        or 0xFF00 <= o <= 0xFFEF  # full-width forms
        or 0x2018 <= o <= 0x201F  # curly quotes used in Chinese text
    )


def is_cjk_letter(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2FA1F or 0xF900 <= o <= 0xFAFF


def _width(line: str) -> float:
    """Display width: a CJK character is one cell, ASCII half (so '2023' is as wide as two hanzi)."""
    return sum(1.0 if is_cjk(c) else 0.5 for c in line if not c.isspace())


@dataclass
class NormalizedText:
    text: str
    offsets: list[int]  # offsets[i] = index in the original of text[i]
    original: str

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """A span [start, end) of the normalised text -> the same span in the original text."""
        if end <= start:
            pos = self.offsets[start] if start < len(self.offsets) else len(self.original)
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1

    def to_normalized(self, original_index: int) -> int:
        """First normalised position at or after an original index."""
        import bisect

        return bisect.bisect_left(self.offsets, original_index)


def debris_start(text: str) -> int:
    """Where a trailing run of one-or-two-character lines (PDF column debris) begins; len(text) if none."""
    lines = text.splitlines(keepends=True)
    cut, dropped = len(text), 0
    pos = len(text)
    for line in reversed(lines):
        pos -= len(line)
        stripped = "".join(line.split())
        if not stripped:
            continue
        if len(stripped) <= 2:
            cut, dropped = pos, dropped + 1
            continue
        break
    return cut if dropped else len(text)


def _full_lines(lines: list[str]) -> list[bool]:
    """Does each line run to the margin of its neighbourhood (so a break after it is a wrap)?"""
    widths = [_width(line) for line in lines]
    nonblank = [i for i, w in enumerate(widths) if w > 0]
    full = [False] * len(lines)
    for k, i in enumerate(nonblank):
        around = [widths[j] for j in nonblank[max(0, k - 4) : k + 5]]
        full[i] = widths[i] >= 0.6 * statistics.median(around)
    return full


def normalize(original: str) -> NormalizedText:
    text = original[: debris_start(original)]
    # line bookkeeping: which line each character index belongs to, and whether that line is "full"
    lines = text.split("\n")
    full = _full_lines(lines)
    widths = [_width(line) for line in lines]
    line_of = []
    for n, line in enumerate(lines):
        line_of.extend([n] * (len(line) + 1))

    out: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in _WS.finditer(text):
        for i in range(pos, m.start()):
            out.append(text[i])
            offsets.append(i)
        pos = m.end()
        if not out or m.end() == len(text):  # leading or trailing whitespace
            continue
        prev, nxt = out[-1], text[m.end()]
        run = m.group()
        newlines = run.count("\n")
        if newlines == 0:
            if not (is_cjk(prev) or is_cjk(nxt)):
                out.append(" ")
                offsets.append(m.start())
            continue
        first_nl = m.start() + run.index("\n")
        wrapped = (
            prev not in SENTENCE_END
            and full[line_of[first_nl]]
            and nxt not in LINE_START_MARKS
            and "\u3000" not in run.split("\n")[-1]  # an indented next line starts a paragraph
        )
        if newlines >= 2:  # a blank line: join only mid-sentence, between lines of one column width
            before, after = widths[line_of[first_nl]], widths[line_of[m.end()]]
            wrapped = (
                wrapped
                and (is_cjk_letter(prev) or prev.isdigit())
                and (is_cjk_letter(nxt) or nxt.isdigit())
                and after >= 0.6 * before
            )
        if wrapped:
            if prev.isascii() and prev.isalnum() and nxt.isascii() and nxt.isalnum():
                out.append(" ")  # a wrapped Latin word boundary keeps its space
                offsets.append(first_nl)
            continue
        out.append("\n")
        offsets.append(first_nl)
    for i in range(pos, len(text)):  # text after the last whitespace run
        out.append(text[i])
        offsets.append(i)
    return NormalizedText("".join(out), offsets, original)
