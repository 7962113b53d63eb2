"""models.txt: which model plays each role (`role = name-or-path`) and its runtime.

A name becomes a folder on disk through retriever.local_models.resolve_model_path (below both layers: the
embedder resolves its own name).
"""

from __future__ import annotations

import os
from pathlib import Path

from retriever.local_models import ModelNotFound, PROJECT_DIR

MODELS_FILE = PROJECT_DIR / "models.txt"


def read_models_file(path: Path | None = None) -> dict[str, str]:
    """models.txt -> {role: name}. `QA_MODELS_FILE` points at another file."""
    path = path or Path(os.environ.get("QA_MODELS_FILE", MODELS_FILE))
    roles = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        role, _, name = line.partition("=")
        roles[role.strip()] = name.strip()
    return roles


def model_for(role: str) -> str:
    roles = read_models_file()
    override = os.environ.get(f"QA_{role.upper()}_MODEL")
    if override:
        return override
    if role not in roles:
        raise ModelNotFound(f"models.txt names no model for role {role!r}")
    return roles[role]


def optional_model_for(role: str) -> str | None:
    """The model for a role that may be left out (the reranker): None when models.txt does not name one or
    QA_<ROLE>_MODEL is `none`."""
    override = os.environ.get(f"QA_{role.upper()}_MODEL")
    name = override if override else read_models_file().get(role)
    return None if not name or name.lower() == "none" else name


def runtime_for(role: str) -> str:
    """`torch` or `onnx-int8` for a role: QA_<ROLE>_RUNTIME, else `<role>_runtime` in models.txt, else torch."""
    return os.environ.get(f"QA_{role.upper()}_RUNTIME") or read_models_file().get(f"{role}_runtime", "torch")
