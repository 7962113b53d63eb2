"""models.txt: which model plays each role (`role = name-or-path`) and its runtime.

A name becomes a folder on disk through retriever.local_models.resolve_model_path (below both layers: the
embedder resolves its own name).
"""

from __future__ import annotations

import os
from pathlib import Path

from retriever.cpu import describe_flags, resolve
from retriever.local_models import ModelNotFound, PROJECT_DIR, resolve_model_path
from retriever.int8 import int8_keeps_answers

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


def configured_runtime(role: str) -> tuple[str, str]:
    """(runtime as written, where it was written): QA_<ROLE>_RUNTIME, else `<role>_runtime` in models.txt, else
    torch."""
    override = os.environ.get(f"QA_{role.upper()}_RUNTIME")
    if override:
        return override, f"QA_{role.upper()}_RUNTIME"
    written = read_models_file().get(f"{role}_runtime")
    return (written, "models.txt") if written else ("torch", "default")


def int8_agrees(role: str) -> bool:
    """The role's int8 copy keeps fp32's answers: smoothing scales or int8 training (retriever.int8)."""
    if role != "reader":
        return False
    try:
        return int8_keeps_answers(resolve_model_path(model_for(role)))
    except ModelNotFound:  # the reader's own loading says what is missing
        return False


def runtime_for(role: str) -> str:
    """The runtime a role runs on: the configured one, `auto` resolved for this CPU and model (retriever.cpu)."""
    return resolve(role, configured_runtime(role)[0], int8_agrees=int8_agrees(role))


def runtimes_line(roles: tuple[str, ...] = ("reader", "embedder")) -> str:
    """One line saying which runtime each role picked and why (qa serve prints it at start-up)."""
    parts = []
    for role in roles:
        written, source = configured_runtime(role)
        chosen = resolve(role, written, int8_agrees=int8_agrees(role))
        parts.append(f"{role} {chosen} ({'auto' if written == 'auto' else source})")
    return f"runtimes: {', '.join(parts)}; CPU flags: {describe_flags()}"
