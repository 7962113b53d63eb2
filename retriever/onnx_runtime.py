"""ONNX Runtime for the reader and the embedder: exported once from the PyTorch weights, cached, run without torch.

The ONNX files are not committed (every weight file stays in git history for good): on first use the PyTorch model
is exported with torch.onnx (fp32, the only step that needs torch), dynamically quantised to int8 when that
precision is asked for, and cached under QA_HOME/onnx/<kind>-<hash of the weights>/ (or QA_ONNX_CACHE/...). Later
processes load the cached file with onnxruntime alone. fp32 gives torch fp32's answers. Plain dynamic int8 moves
span boundaries (about 1 answer in 10); a model shipped with smoothing scales (retriever.smoothing) is smoothed
first and its weights quantised per output channel, and one trained through int8 is quantised as its training
simulated it (retriever.int8).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from retriever.embedder import mean_pooled

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# bumped when the export or the quantisation changes, so an older cached file is not taken for today's
EXPORT_VERSION = "4: eager attention; fp16 word embeddings when exact"


WHOLE = 32 << 20  # files up to this size are hashed whole


def _weights_hash(model_dir: Path) -> str:
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for path in sorted(model_dir.glob("*")):
        if path.suffix in (".safetensors", ".bin", ".json", ".txt") and path.is_file():
            size = path.stat().st_size
            digest.update(path.name.encode())
            digest.update(str(size).encode())
            with open(path, "rb") as f:
                # a big weights file by its head and tail (fast, enough to tell checkpoints apart); a small one
                # whole (int8 weights or heads beside unchanged main weights can differ anywhere)
                if size <= WHOLE:
                    digest.update(f.read())
                else:
                    digest.update(f.read(1 << 20))
                    f.seek(size - (1 << 20))
                    digest.update(f.read())
    return digest.hexdigest()[:16]


def _export(model, out: Path, output_names: list[str]) -> None:
    import torch

    model.eval()
    dummy = {k: torch.ones((1, 16), dtype=torch.long) for k in INPUTS}
    dynamic = {k: {0: "batch", 1: "sequence"} for k in (*INPUTS, *output_names)}
    torch.onnx.export(
        model, (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]), str(out),
        input_names=list(INPUTS), output_names=output_names, dynamic_axes=dynamic, opset_version=17,
        dynamo=False,
    )


# attention exported as its plain MatMul / Softmax ops, not transformers' scaled_dot_product_attention: ONNX Runtime
# runs that graph 10-15% faster on the CPU (reader v6, 1-3 windows of 135 tokens, AVX-512: 40.7 -> 36.4 ms for one,
# 98.2 -> 83.5 ms for three), with the same outputs to 1e-5
EAGER = {"attn_implementation": "eager"}
OUTPUTS = {"reader": ["start_logits", "end_logits", "last_hidden_state"], "encoder": ["last_hidden_state"]}
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def onnx_model(model_dir: Path, kind: str, cache_root: Path, precision: str = "fp32") -> Path:
    """Path of the cached ONNX file of a QA model (kind='reader': start/end logits and the last hidden states, for
    the boundary head) or an encoder (kind='encoder'), in fp32 or dynamically quantised int8."""
    if precision not in FILES:
        raise ValueError(f"unknown ONNX precision {precision!r}: use fp32 or int8")
    # QA_ONNX_CACHE: one export shared by several data directories (the test suite's throw-away homes)
    root = Path(os.environ.get("QA_ONNX_CACHE") or Path(cache_root) / "onnx")
    folder = root / f"{kind}-{_weights_hash(Path(model_dir))}"
    target = folder / FILES[precision]
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    from retriever.int8 import int8_trained, quantise_options, trained_state
    from retriever.smoothing import load_scales

    own = precision == "int8" and kind == "reader" and int8_trained(Path(model_dir))
    scales = load_scales(Path(model_dir)) if precision == "int8" else None
    fp32 = folder / FILES["fp32"]
    if not fp32.exists() and scales is None and not own:  # those int8 copies are quantised from their own export
        _export_fp32(Path(model_dir), kind, fp32)
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            source = fp32
            if scales is not None or own:  # outlier channels moved into the weights; the weights trained for int8
                source = Path(tmp) / "int8-source.onnx"
                _export_fp32(Path(model_dir), kind, source, scales, trained_state(Path(model_dir)) if own else None)
            partial = Path(tmp) / FILES["int8"]
            root = logging.getLogger()  # the quantiser's advice goes to the root logger: drop only its records
            root.addFilter(quiet_quantiser)
            try:
                quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul"], **quantise_options(Path(model_dir)))
            finally:
                root.removeFilter(quiet_quantiser)
            os.replace(partial, target)  # atomic: a crash never leaves half a model in the cache
    return target


def quiet_quantiser(record: logging.LogRecord) -> bool:
    """A root-logger filter: drop onnxruntime's quantiser advice below ERROR (to pre-process for shape inference),
    which would end up in a first `ask`'s output; other threads' records pass while it is on."""
    source = Path(record.pathname).parts
    quantiser = "quantization" in source and "onnxruntime" in source
    return not (quantiser and record.levelno < logging.ERROR)


def _export_fp32(model_dir: Path, kind: str, target: Path, scales: dict | None = None,
                 state: dict | None = None) -> None:
    """model_dir's model as ONNX fp32 (smoothed by scales, then some weights replaced by state, if given)."""
    import torch
    from transformers import AutoModel, AutoModelForQuestionAnswering

    from retriever.local_models import quiet_transformers

    quiet_transformers()

    class Reader(torch.nn.Module):  # plain tensors out, for the exporter
        def __init__(self):
            super().__init__()
            self.m = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32, **EAGER)

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         output_hidden_states=True)
            return out.start_logits, out.end_logits, out.hidden_states[-1]

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32, **EAGER)

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks that hold for every input here
        partial = Path(tmp) / target.name
        wrapper = {"reader": Reader, "encoder": Encoder}[kind]()
        if scales is not None:
            from retriever.smoothing import apply_smoothing

            apply_smoothing(wrapper.m, scales)
        if state is not None:  # after smoothing: weights trained smoothed are named and scaled as smoothed ones
            unknown = wrapper.m.load_state_dict(state, strict=False).unexpected_keys
            if unknown:
                raise ValueError(f"{model_dir}: int8 weights for parameters the model lacks: {unknown[:3]}")
        _export(wrapper, partial, OUTPUTS[kind])
        half_word_embeddings(partial)
        os.replace(partial, target)


def half_word_embeddings(path: Path, min_rows: int = 30_000) -> bool:
    """Store a vocabulary-sized embedding table read by a Gather in fp16, with a Cast back to fp32 after the
    Gather, when every value is exactly an fp16 one (a reader shipped in fp16): the same outputs, half the file.
    multilingual-e5-small's 250,037 x 384 table is 384 of the reader's 470 MB, and loading it is most of a cold
    start. Returns whether the file changed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    tables = {init.name: init for init in graph.initializer if len(init.dims) == 2 and init.dims[0] >= min_rows
              and init.data_type == TensorProto.FLOAT}
    changed = False
    for node in list(graph.node):
        if node.op_type != "Gather" or node.input[0] not in tables:
            continue
        table = tables.pop(node.input[0])
        values = numpy_helper.to_array(table)
        half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            continue  # not exact: fp32 answers would move
        table.CopyFrom(numpy_helper.from_array(half, table.name))
        gathered = node.output[0]
        node.output[0] = gathered + "_fp16"
        graph.node.insert(list(graph.node).index(node) + 1,
                          helper.make_node("Cast", [node.output[0]], [gathered], to=TensorProto.FLOAT,
                                           name=node.name + "_to_fp32"))
        changed = True
    if changed:
        onnx.save(model, str(path))
    return changed


def threads() -> int:
    """ONNX Runtime's threads: OMP_NUM_THREADS when set (it limits torch's too, so both compare on the same
    cores), else up to 2. On a CPU other work also uses, fewer threads wait less for each other."""
    return int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1))


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning: a question alternates between two sessions (embedder, reader) and
    # Python work, and a pool spinning after its run takes the cores from the next step (ONNX fp32, 2 cores:
    # p50 per question 72 -> 50 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxQA:
    """Start/end logits (and the last hidden states) from an exported QA model, same inputs as the PyTorch one.

    one_window_at_a_time (dynamic int8): each window runs alone, without padding, because dynamic quantisation takes
    its activation scales from the whole batch: batched, a window's margins moved by up to 0.5 with the other
    windows beside it, so an answer could depend on which passages came along."""

    def __init__(self, path: Path, one_window_at_a_time: bool = False):
        self.session = session(path)
        self.one_window_at_a_time = one_window_at_a_time

    def __call__(self, batch: dict[str, np.ndarray], hidden: bool = False) -> tuple[np.ndarray, ...]:
        feed = {k: batch[k].astype(np.int64) for k in INPUTS if k in batch}
        if "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        names = OUTPUTS["reader"] if hidden else OUTPUTS["reader"][:2]
        if not self.one_window_at_a_time:
            out = self.session.run(names, feed)
            return out[0], out[1], out[2] if hidden else None
        rows, width = feed["input_ids"].shape
        start, end = np.full((rows, width), -1e4, np.float32), np.full((rows, width), -1e4, np.float32)
        states = None
        for row, length in enumerate(feed["attention_mask"].sum(axis=1)):  # windows are padded on the right
            out = self.session.run(names, {k: v[row : row + 1, :length] for k, v in feed.items()})
            start[row, :length], end[row, :length] = out[0][0], out[1][0]
            if hidden:
                states = np.zeros((rows, width, out[2].shape[-1]), np.float32) if states is None else states
                states[row, :length] = out[2][0]
        return start, end, states


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an exported BERT encoder (tokenizer: retriever.tokens)."""

    def __init__(self, path: Path, tokenizer, max_length: int = 512):
        self.session = session(path)
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for b in range(0, len(texts), batch_size):
            feed = self.tokenizer(texts[b : b + batch_size], max_length=self.max_length)
            out.append(mean_pooled(self.session.run(["last_hidden_state"], feed)[0], feed["attention_mask"]))
        return np.concatenate(out)
