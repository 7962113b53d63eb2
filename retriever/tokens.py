"""A model folder's tokenizer.json through the `tokenizers` library alone.

transformers 5 loads the same tokenizer.json unchanged for these models (m3e-small, the shipped reader, e5), so the
tokens are the ones its fast tokenizer gives; importing transformers is not needed (and costs a second of a cold
start). Two shapes of input: padded batches of single texts (the embedder) and overlapping question/context
windows (the reader: truncation of the context only, with a stride).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np


class Windows:
    """What transformers' BatchEncoding gave the reader and its training: arrays by name (input_ids,
    attention_mask, token_type_ids, offset_mapping, overflow_to_sample_mapping) and each window's sequence ids."""

    def __init__(self, arrays: dict[str, np.ndarray], sequence_ids: list[list[int | None]]):
        self.arrays = arrays
        self._sequence_ids = sequence_ids

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def keys(self):
        return self.arrays.keys()

    def sequence_ids(self, window: int) -> list[int | None]:
        return self._sequence_ids[window]


class Tokenizer:
    def __init__(self, backend, pad_id: int = 0, unk_id: int | None = None):
        self.backend = backend
        self.pad_id = pad_id
        self.unk_token_id = unk_id
        backend.no_padding()  # padded here, over all windows at once
        backend.no_truncation()
        # one configured backend per truncation setting, never changed afterwards: changing a backend's settings
        # while another thread encodes with it fails ("Already borrowed"), and the server reads in threads. The
        # first setting asked for takes the loaded backend itself (a reader or an embedder uses one): a copy
        # re-parses tokenizer.json, half a second for XLM-R's 250,000 pieces
        self._truncating: dict[tuple, object] = {}
        self._plain = backend  # untruncated, for encode(): the loaded one until a setting takes it, then a copy
        self._lock = threading.Lock()

    def _copy(self):
        return type(self.backend).from_str(self.backend.to_str())

    def _truncated(self, max_length: int, stride: int = 0, strategy: str = "longest_first"):
        key = (max_length, stride, strategy)
        backend = self._truncating.get(key)
        if backend is None:
            with self._lock:
                backend = self._truncating.get(key)
                if backend is None:
                    if self._plain is self.backend:  # still untruncated: it takes this setting
                        backend, self._plain = self.backend, None
                    else:
                        backend = self._copy()
                    backend.enable_truncation(max_length, stride=stride, strategy=strategy)
                    self._truncating[key] = backend
        return backend

    @classmethod
    def from_folder(cls, folder: Path) -> "Tokenizer":
        from tokenizers import Tokenizer as Backend

        folder = Path(folder)
        backend = Backend.from_file(str(folder / "tokenizer.json"))
        config_file = folder / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}

        def token_id(key: str) -> int | None:
            token = config.get(key)
            token = token.get("content") if isinstance(token, dict) else token
            return backend.token_to_id(token) if token else None

        pad = token_id("pad_token")
        if pad is None:
            pad = (backend.padding or {}).get("pad_id", 0)
        return cls(backend, pad, token_id("unk_token"))

    @classmethod
    def of(cls, tokenizer) -> "Tokenizer":
        """A Tokenizer as it is, or one over a copy of a transformers fast tokenizer's backend (training passes
        those)."""
        if isinstance(tokenizer, cls):
            return tokenizer
        from tokenizers import Tokenizer as Backend

        backend = Backend.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: its settings stay its own
        return cls(backend, tokenizer.pad_token_id or 0, tokenizer.unk_token_id)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The ids of one text, never truncated."""
        with self._lock:  # held throughout: the loaded backend may be about to take a setting in another thread
            if self._plain is None:
                self._plain = self._copy()
                self._plain.no_truncation()
            return self._plain.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts: list[str], max_length: int) -> dict[str, np.ndarray]:
        """Padded ids, mask and type ids of each text, truncated to max_length tokens."""
        return self._padded(self._truncated(max_length).encode_batch(texts))

    def windows(self, questions: list[str], contexts: list[str], max_length: int, stride: int) -> Windows:
        """Each question/context pair -> windows of at most max_length tokens over the context, `stride` tokens
        shared by neighbours; the question whole in every window. Windows of one pair are consecutive."""
        backend = self._truncated(max_length, stride, "only_second")
        flat, sample = [], []
        for i, encoding in enumerate(backend.encode_batch(list(zip(questions, contexts)))):
            for window in (encoding, *encoding.overflowing):  # transformers' order: the first, then overflow
                flat.append(window)
                sample.append(i)
        arrays = self._padded(flat)
        n, width = arrays["input_ids"].shape
        offsets = np.zeros((n, width, 2), dtype=np.int64)
        for w, e in enumerate(flat):
            if e.offsets:
                offsets[w, : len(e.offsets)] = e.offsets
        arrays["offset_mapping"] = offsets
        arrays["overflow_to_sample_mapping"] = np.array(sample, dtype=np.int64)
        width_ids = [list(e.sequence_ids) + [None] * (width - len(e.ids)) for e in flat]
        return Windows(arrays, width_ids)

    def _padded(self, encodings) -> dict[str, np.ndarray]:
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            types[row, :n] = e.type_ids
            mask[row, :n] = e.attention_mask
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
