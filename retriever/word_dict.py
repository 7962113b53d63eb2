"""jieba's dictionaries read word by word from an SQLite file instead of loaded whole: a new process starts answering
without jieba's 1.4 s of dictionary loading (its 580,000-entry prefix dictionary and posseg's tag table).

The file is made once from jieba's own dictionary (the entries jieba builds: every word with its count and tag, every
prefix with count 0) and kept beside jieba's cache; words looked up are remembered. A process that segments a lot
(indexing thousands of articles) loads jieba's whole dictionary after `WHOLE_AFTER` file reads, as jieba would
have, so bulk work runs at dict speed. Segmentation is the same either way (tests/test_word_dict.py).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

WHOLE_AFTER = 200_000  # file reads (~1 s of them) before the whole dictionary is loaded instead
_MISSING = object()


def dictionary_file(jieba_dir: Path, folder: Path | None = None) -> Path:
    """The SQLite file for jieba's default dictionary, made on first use (atomically: a crash leaves none)."""
    source = jieba_dir / "dict.txt"
    stat = source.stat()
    key = hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(folder or tempfile.gettempdir()) / f"qa-jieba-{key}.sqlite"
    if target.exists():
        return target
    freq, tags, total = {}, {}, 0
    with open(source, encoding="utf-8") as f:
        for line in f:  # "word count tag", as jieba.Tokenizer.gen_pfdict and posseg's load_word_tag read it
            parts = line.strip().split(" ")
            if len(parts) < 2:
                continue
            word, count = parts[0], int(parts[1])
            freq[word] = count
            total += count
            if len(parts) > 2:
                tags[word] = parts[2]
            for i in range(1, len(word)):
                freq.setdefault(word[:i], 0)
    partial = target.with_suffix(f".{os.getpid()}.part")
    db = sqlite3.connect(partial)
    db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, count INTEGER, tag TEXT) WITHOUT ROWID")
    db.executemany("INSERT INTO words VALUES (?, ?, ?)", ((w, c, tags.get(w)) for w, c in freq.items()))
    db.execute("CREATE TABLE total (value INTEGER)")
    db.execute("INSERT INTO total VALUES (?)", (total,))
    db.commit()
    db.close()
    os.replace(partial, target)
    return target


class DiskWords(Mapping):
    """One column of the file as a read-only mapping (word -> count, or word -> tag), what jieba's code asks of
    its dicts (`in`, `[]`, `.get`). Thread-safe; answers are remembered."""

    def __init__(self, path: Path, column: str, on_many_reads: Callable[[], None] | None = None):
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._sql = f"SELECT {column} FROM words WHERE word = ?"
        self._lock = threading.Lock()
        self._seen: dict = {}
        self._reads = 0
        self._on_many_reads = on_many_reads
        self.total = self._db.execute("SELECT value FROM total").fetchone()[0]

    def _lookup(self, word):
        value = self._seen.get(word, _MISSING)
        if value is not _MISSING:
            return value
        with self._lock:
            row = self._db.execute(self._sql, (word,)).fetchone()
            self._reads += 1
            reads = self._reads
        value = None if row is None or row[0] is None else row[0]
        self._seen[word] = value
        if reads == WHOLE_AFTER and self._on_many_reads is not None:
            self._on_many_reads()
        return value

    def __getitem__(self, word):
        value = self._lookup(word)
        if value is None:
            raise KeyError(word)
        return value

    def __contains__(self, word) -> bool:
        return self._lookup(word) is not None

    def get(self, word, default=None):
        value = self._lookup(word)
        return default if value is None else value

    def __iter__(self):
        return (row[0] for row in self._db.execute("SELECT word FROM words"))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM words").fetchone()[0]
