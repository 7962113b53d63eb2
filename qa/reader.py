"""The reading model: question + passages -> token windows -> start/end logits -> n-best spans in characters.

transformers 5 has no question-answering pipeline, so the windows and the start/end decoding live here: the only
module that sees tokens. A window's [CLS] logits act as its "no answer" score; a span competes with its own
window's null score (the margin), which keeps scores comparable across windows and passages. Each decoded span is
mapped to character offsets and given whole units (qa.answer_shape) before the n-best cut.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.answer_shape import CLAUSE_END, SENTENCE_END, whole_span
from qa.stopping import StopModel
from qa.verifier import EVIDENCE, Verifier, evidence, span_features
from retriever.cpu import native_bf16, resolve
from retriever.local_models import quiet_transformers
from retriever.int8 import int8_keeps_answers
from retriever.text import lower_ascii, uncased_vocabulary
from retriever.tokens import Tokenizer, Windows


@dataclass
class Span:
    """A span in one passage: character offsets into that passage, scores from the reader."""

    passage: int  # index into the passages given to read()
    start: int
    end: int
    text: str
    score: float  # start + end logit
    margin: float  # score minus the window's no-answer score, or the verifier's log-odds: > threshold means "answer"
    features: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept for fitting a verifier


def boundary_cuts(head: tuple[np.ndarray, np.ndarray], hidden: np.ndarray, offsets: np.ndarray, start: int,
                  end: int) -> tuple[int, int]:
    """How many characters to cut off the start token's left edge and the end token's right edge.

    A token may hold several characters (XLM-R: 中华人民共和国 is one piece) and an answer may begin or end inside
    one; the boundary head (weights, bias: 2 x classes rows) reads the two tokens' hidden states. A cut never
    empties its token.
    """
    weight, bias = head
    classes = len(bias) // 2
    start_logits = hidden[start] @ weight[:classes].T + bias[:classes]
    end_logits = hidden[end] @ weight[classes:].T + bias[classes:]
    cut_start = int(np.argmax(start_logits[: int(offsets[start][1] - offsets[start][0])]))
    room = int(offsets[end][1] - offsets[end][0]) - (cut_start if start == end else 0)  # one token: cuts share it
    return cut_start, int(np.argmax(end_logits[:room]))


def encode_windows(tokenizer, questions: list[str], contexts: list[str], max_length: int, stride: int,
                   lowercase: bool = True) -> Windows:
    """Question/context pairs -> overlapping windows of at most max_length tokens (ASCII lowered first for an
    uncased vocabulary): arrays with offset_mapping and overflow_to_sample_mapping, and sequence ids per window.

    tokenizer: a retriever.tokens.Tokenizer, or a transformers fast tokenizer (training), read through a copy of
    its backend, so that training and answering cut the same windows.
    """
    fold = lower_ascii if lowercase else str
    return _windowing(tokenizer).windows([fold(q) for q in questions], [fold(c) for c in contexts], max_length,
                                         stride)


_WRAPPED: dict[int, tuple[object, Tokenizer]] = {}  # a transformers tokenizer -> its Tokenizer, copied once


def _windowing(tokenizer) -> Tokenizer:
    if hasattr(tokenizer, "windows"):  # a Tokenizer (or anything cutting windows the same way)
        return tokenizer
    held = _WRAPPED.get(id(tokenizer))
    if held is None or held[0] is not tokenizer:
        held = _WRAPPED[id(tokenizer)] = (tokenizer, Tokenizer.of(tokenizer))
    return held[1]


def context_mask(encoding, window: int) -> np.ndarray:
    ids = encoding.sequence_ids(window)
    return np.array([s == 1 for s in ids], dtype=bool)


def best_spans_in_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    mask: np.ndarray,
    max_answer_chars: int,
    n_best: int = 5,
    offsets: np.ndarray | None = None,
    segments: np.ndarray | None = None,
    clauses: np.ndarray | None = None,
    clause_penalty: float = 0.0,
) -> list[tuple[int, int, float]]:
    """Top (start_token, end_token, score) with start <= end inside the context, at most max_answer_chars long,
    and (given each token's segment: its sentence or clause) start and end in one segment; given each token's
    clause too, a span loses clause_penalty for every clause end it crosses.

    Length is measured in characters of the passage (token offsets), not tokens: a long organisation name such as
    "北京微芯区块链与边缘计算研究院" is never cut, and a run of Latin word pieces is not over-counted.
    """
    s = np.where(mask, start_logits, -np.inf)
    e = np.where(mask, end_logits, -np.inf)
    scores = s[:, None] + e[None, :]
    n = len(s)
    i, j = np.indices((n, n))
    if offsets is None:  # one character per token
        length = j - i + 1
    else:
        length = offsets[:, 1][None, :] - offsets[:, 0][:, None]
    scores[(j < i) | (length > max_answer_chars)] = -np.inf
    if segments is not None:  # masked before the top-n: a window still offers its best span inside one segment
        scores[segments[:, None] != segments[None, :]] = -np.inf
    if clauses is not None and clause_penalty:
        scores -= clause_penalty * np.maximum(clauses[None, :] - clauses[:, None], 0)
    flat = np.argsort(scores, axis=None)[::-1][:n_best]
    out = []
    for k in flat:
        a, b = divmod(int(k), n)
        if np.isfinite(scores[a, b]):
            out.append((a, b, float(scores[a, b])))
    return out


def token_segments(passage: str, offsets: np.ndarray, ends: re.Pattern = SENTENCE_END) -> np.ndarray:
    """For each token, how many sentence (or clause) ends stand before it in the passage: a span whose start and
    end tokens share the count stays in one sentence; the end may be the punctuation itself (trimmed later)."""
    before = np.zeros(len(passage) + 1, dtype=np.int32)
    for m in ends.finditer(passage):
        before[m.end():] += 1
    starts = np.clip(offsets[:, 0], 0, len(passage))
    return before[starts]


def bigrams(text: str) -> set[str]:
    """A text's character bigrams, letters and digits only."""
    text = "".join(c for c in text if c.isalnum())
    return {text[i : i + 2] for i in range(len(text) - 1)}


def question_overlap(question: str, passages: list[str]) -> list[int]:
    """How many of the question's character bigrams (letters and digits only) each passage holds."""
    asked = bigrams(question)
    return [len(asked & bigrams(p)) for p in passages]


def read_in_turn(read_some, overlap: list[int], n_best: int, early_stop: float | None, skip_behind: int | None,
                 threshold: float, stop=None) -> tuple[list[Span], list[int]]:
    """(the n-best spans, the passages read): the first passage alone, then, unless its best margin reaches
    early_stop or stop(its spans) calls its answer final (qa.stopping), the others together (one batch: one call
    costs less than two), without those skip_behind question bigrams behind the first once it has a span over the
    threshold. read_some(indices) gives the spans of those passages numbered as given; overlap: question_overlap of
    each passage. qa.training.early_stop replays this on spans read beforehand."""
    spans = sorted(read_some([0]), key=lambda s: s.margin, reverse=True)[:n_best]
    if spans and ((early_stop is not None and spans[0].margin >= early_stop) or (stop is not None and stop(spans))):
        return spans, [0]
    rest = list(range(1, len(overlap)))
    if spans and skip_behind is not None and spans[0].margin >= threshold:
        rest = [i for i in rest if overlap[i] > overlap[0] - skip_behind]
    if rest:  # windows score alone, so reading them together gives the spans reading one at a time does
        spans = sorted(spans + read_some(rest), key=lambda s: s.margin, reverse=True)[:n_best]
    return spans, [0] + rest


class Reader:
    """An extractive QA model with windowing and span decoding: a transformers AutoModelForQuestionAnswering (torch
    runtimes) or its ONNX export (onnx runtimes: no torch in the process)."""

    def __init__(
        self,
        model,
        tokenizer,
        max_length: int = 256,
        stride: int = 64,
        max_answer_chars: int = 60,
        no_answer_threshold: float = 0.0,
        batch_size: int = 16,
        type_slack: float = 0.0,
        calibration: tuple[float, float] | None = None,
        clause_spans: bool = True,
        clause_penalty: float | None = None,
        boundary: tuple[np.ndarray, np.ndarray] | None = None,
        lowercase: bool | None = None,
        early_stop: float | None = None,
        skip_behind: int | None = None,
        verifier: Verifier | None = None,
        stop_model: StopModel | dict | None = None,
    ):
        self.model = model
        self.tokenizer = None if tokenizer is None else _windowing(tokenizer)
        self.max_length = max_length
        self.stride = stride
        self.max_answer_chars = max_answer_chars
        self.no_answer_threshold = no_answer_threshold
        self.batch_size = batch_size
        self.onnx = None  # an OnnxQA when an onnx runtime is chosen (model is None then)
        self.runtime = "torch"
        self.bf16 = False  # torch-bf16 runtime: autocast the forward pass (AVX-512 BF16 / AMX CPUs)
        self.type_slack = type_slack  # how far below the best a span of the asked-for type may score
        # confidence = sigmoid(a * margin + b), fitted by qa.training.ship; unfitted, 0.5 sits at the threshold
        self.calibration = tuple(calibration) if calibration else None
        # an answer stays in one clause (between commas), not only in one sentence: news answers are short
        self.clause_spans = clause_spans
        # None: never cross a clause end; a number: a span may, at that cost in score per clause end (a reader
        # trained on encyclopaedia answers, a third of which hold a comma, learns when to)
        self.clause_penalty = clause_penalty
        # character-level span edges for tokens of several characters (a trained boundary head, when shipped)
        self.boundary = boundary
        if lowercase is None:
            lowercase = tokenizer is None or uncased_vocabulary(self.tokenizer)
        self.lowercase = lowercase
        # read the first (best ranked) passage alone and the others only when its best margin is under this (None:
        # all at once); it pays when many questions stop there (qa.training.early_stop)
        self.early_stop = early_stop
        # once the first passage has an answer, a later one holding this many fewer of the question's character
        # bigrams is skipped: a look-alike that rarely holds a better answer (None: never skipped)
        self.skip_behind = skip_behind
        # or stop after the first passage when this model says the others would not change its answer
        self.stop_model = stop_model if isinstance(stop_model, StopModel) else StopModel.from_config(stop_model)
        # a span's margin comes from the verifier head over its hidden states when one is shipped (qa.verifier)
        self.verifier = verifier
        self.keep_features = False  # qa.training.verifier: each span carries its verifier features

    @classmethod
    def load(cls, model_path: str | Path, runtime: str = "torch", cache_root: Path | None = None,
             **settings) -> "Reader":
        """runtime: torch, torch-bf16, onnx-fp32, onnx-int8 or auto (retriever.cpu). The onnx ones export the
        model once into cache_root/onnx (with torch) and then run without importing torch or transformers."""
        import tempfile

        from qa.reader_folder import complete_folder

        cache_root = cache_root or Path(tempfile.gettempdir()) / "qa-zh"
        shipped = Path(model_path)  # settings and heads are read here: a completed copy may be older than them
        model_path = complete_folder(shipped, cache_root)  # frozen parts shipped by a package put back
        runtime = resolve("reader", runtime, int8_agrees=int8_keeps_answers(model_path))
        tokenizer = Tokenizer.from_folder(model_path)  # the file transformers would load, without transformers
        config = shipped / "qa_reader.json"  # decoding settings tuned with the weights
        if config.exists():
            # keys that are not decoding settings (e.g. which domains chose the threshold) are notes for people
            stored = json.loads(config.read_text(encoding="utf-8"))
            known = inspect.signature(cls).parameters
            settings = {**{k: v for k, v in stored.items() if k in known}, **settings}
        head = shipped / "boundary.safetensors"
        if head.exists():
            from safetensors.numpy import load_file

            weights = load_file(str(head))
            settings["boundary"] = (weights["weight"].astype(np.float32), weights["bias"].astype(np.float32))
        if "verifier" not in settings:  # a caller's verifier=None switches it off
            settings["verifier"] = Verifier.load(shipped)
        if runtime.startswith("onnx-"):
            from retriever.onnx_runtime import OnnxQA, onnx_model

            reader = cls(None, tokenizer, **settings)
            precision = runtime.removeprefix("onnx-")
            reader.onnx = OnnxQA(onnx_model(model_path, "reader", cache_root, precision),
                                 one_window_at_a_time=precision == "int8")
        else:
            import torch
            from transformers import AutoModelForQuestionAnswering

            quiet_transformers()
            model = AutoModelForQuestionAnswering.from_pretrained(str(model_path), dtype=torch.float32)
            model.eval()
            reader = cls(model, tokenizer, **settings)
            # without native bf16 (AVX-512 BF16 / AMX) autocast is emulated and slower: stay on fp32 there (the CPU
            # flags as retriever.cpu reads them, so QA_CPU_FLAGS plays an AVX2-only CPU here too)
            reader.bf16 = (runtime == "torch-bf16" and native_bf16()
                           and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
        reader.runtime = runtime
        return reader

    def logits(self, encoding) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Start and end logits of every window, and its last hidden states when a boundary head reads them."""
        feeds = [{k: encoding[k][b : b + self.batch_size] for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in encoding} for b in range(0, encoding["input_ids"].shape[0], self.batch_size)]
        hidden_too = self.boundary is not None or self.verifier is not None or self.keep_features
        if self.onnx is not None:
            outs = [self.onnx(feed, hidden_too) for feed in feeds]
        else:
            outs = self._torch_logits(feeds, hidden_too)
        starts, ends, hidden = zip(*outs)
        return np.concatenate(starts), np.concatenate(ends), np.concatenate(hidden) if hidden_too else None

    def _torch_logits(self, feeds: list[dict], hidden_too: bool) -> list[tuple]:
        import torch

        outs = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for feed in feeds:
                out = self.model(**{k: torch.from_numpy(v) for k, v in feed.items()}, output_hidden_states=hidden_too)
                outs.append((out.start_logits.float().numpy(), out.end_logits.float().numpy(),
                             out.hidden_states[-1].float().numpy() if hidden_too else None))
        return outs

    def read(self, question: str, passages: list[str], n_best: int = 5) -> list[Span]:
        """The n-best spans over all passages, best first (by margin over the window's no-answer score), as
        character offsets into their passage with whole units (qa.answer_shape.whole_span). With early_stop or
        skip_behind or a stop model set, the first (best ranked) passage is read alone, and the others only when its
        best span's margin is under early_stop and the stop model (qa.stopping) does not call its answer final,
        without those skip_behind question bigrams behind it once it has a span over the no-answer threshold
        (read_in_turn)."""
        if (self.early_stop is None and self.skip_behind is None and self.stop_model is None) or len(passages) < 2:
            return self._read(question, passages, n_best)
        def read_some(indices: list[int]) -> list[Span]:
            spans = self._read(question, [passages[i] for i in indices], n_best)
            for span in spans:
                span.passage = indices[span.passage]
            return spans

        overlap = question_overlap(question, passages)
        stop = None if self.stop_model is None else (lambda spans: self.stop_model.stops(
            spans, overlap, len(bigrams(question)), self.no_answer_threshold))
        return read_in_turn(read_some, overlap, n_best, self.early_stop, self.skip_behind, self.no_answer_threshold,
                            stop)[0]

    def _read(self, question: str, passages: list[str], n_best: int) -> list[Span]:
        if not passages:
            return []
        enc = encode_windows(self.tokenizer, [question] * len(passages), passages, self.max_length, self.stride,
                             self.lowercase)
        start_logits, end_logits, hidden = self.logits(enc)
        penalty = self.clause_penalty if self.clause_spans else 0.0  # clause_spans off: commas cost nothing
        spans: dict[tuple[int, int, int], Span] = {}
        for w in range(start_logits.shape[0]):
            p = int(enc["overflow_to_sample_mapping"][w])
            offsets = enc["offset_mapping"][w]
            null = float(start_logits[w, 0] + end_logits[w, 0])
            mask = context_mask(enc, w)
            # a comma is a wall (penalty None), free (0) or a price; sentence ends are always walls
            segments = token_segments(passages[p], offsets, CLAUSE_END if penalty is None else SENTENCE_END)
            clauses = token_segments(passages[p], offsets, CLAUSE_END) if penalty else None
            for a, b, score in best_spans_in_window(
                start_logits[w], end_logits[w], mask, self.max_answer_chars, n_best, offsets, segments,
                clauses, penalty or 0.0,
            ):
                cut_start, cut_end = ((0, 0) if self.boundary is None
                                      else boundary_cuts(self.boundary, hidden[w], offsets, a, b))
                edges = whole_span(passages[p], int(offsets[a][0]) + cut_start, int(offsets[b][1]) - cut_end)
                if edges is None:  # punctuation only (the segments keep a span inside one sentence or clause)
                    continue
                cs, ce = edges
                margin, features = score - null, None
                if self.verifier is not None or self.keep_features:
                    # rows kept for fitting carry the evidence too, so one reading serves verifiers with and without
                    reads = self.verifier is not None and self.verifier.reads_evidence
                    lexical = evidence(question, passages[p], cs, ce) if reads or self.keep_features else None
                    features = span_features(hidden[w], a, b, margin, lexical)
                    if self.verifier is not None:
                        margin = self.verifier(features if reads or lexical is None else features[:-EVIDENCE])
                span = Span(p, cs, ce, passages[p][cs:ce], score, margin, features if self.keep_features else None)
                key = (p, cs, ce)
                if key not in spans or spans[key].margin < span.margin:
                    spans[key] = span
        return sorted(spans.values(), key=lambda s: s.margin, reverse=True)[:n_best]

    def confidence(self, margin: float) -> float:
        """The calibrated probability, in [0, 1], that a span with this margin answers the question."""
        a, b = self.calibration or (1.0, -self.no_answer_threshold)
        return float(1.0 / (1.0 + np.exp(-(a * margin + b))))
