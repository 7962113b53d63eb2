"""Which runtime runs a model fastest on this CPU while still agreeing with fp32: the `auto` runtime.

Measured on the dev questions (BENCHMARKS.md): a reader shipped with smoothing scales (retriever.smoothing) runs on
ONNX int8 with 99% of fp32's answers and is the fastest runtime on a CPU with VNNI (AVX-512 VNNI or AVX-VNNI: 1.6x
ONNX fp32, 1.4x torch bf16), so `auto` picks it there. Without VNNI, ONNX Runtime's int8 kernel multiplies with
VPMADDUBSW, whose 16-bit sums can saturate, and plain int8 was barely faster than fp32 there: fp32 stays. Without
scales, plain dynamic int8 agrees on only ~89% of answers. Otherwise torch-bf16 where the CPU computes bf16 natively
(AVX-512 BF16 or AMX; elsewhere autocast emulates bf16 and is slower than fp32), else ONNX fp32, which gives torch
fp32's answers. A process that answers and exits (`ask`, which sets QA_AUTO_TORCH_FREE=1) skips torch-bf16: importing
torch costs it 5-8 s, bf16 saves ~10 ms a question (reader v6, AVX-512 BF16: cold `ask` 9.6 s vs 1.8 s).
"""

from __future__ import annotations

import functools
import os

NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
VNNI = ("avx512_vnni", "avx_vnni")  # int8 dot products without 16-bit saturation
# the flags that decide `auto` or explain its speed
SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
RUNTIMES = {"reader": ("torch", "torch-bf16", "onnx-fp32", "onnx-int8"),
            "embedder": ("torch", "onnx-fp32", "onnx-int8")}


@functools.lru_cache(maxsize=8)
def _proc_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):  # every core lists the same flags: the first line is enough
                    return frozenset(line.partition(":")[2].split())
    except OSError:  # not Linux: no flags known, so the portable choice
        pass
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; QA_CPU_FLAGS (space-separated) stands in for /proc/cpuinfo (tests, what-ifs)."""
    override = os.environ.get("QA_CPU_FLAGS")
    if override is not None:
        return frozenset(override.split())
    return _proc_flags()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16)


def vnni(flags: frozenset[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in VNNI)


def auto_runtime(role: str, flags: frozenset[str] | None = None, int8_agrees: bool = False,
                 torch_free: bool | None = None) -> str:
    """The runtime `auto` means for a role on a CPU with these flags; int8_agrees: the reader has smoothing scales;
    torch_free: never torch (None: QA_AUTO_TORCH_FREE=1, which `ask` sets)."""
    if torch_free is None:
        torch_free = os.environ.get("QA_AUTO_TORCH_FREE") == "1"
    if role == "reader":
        if int8_agrees and vnni(flags):
            return "onnx-int8"
        return "torch-bf16" if native_bf16(flags) and not torch_free else "onnx-fp32"
    if role == "embedder":  # same vectors as torch to float precision, faster, and no torch import
        return "onnx-fp32"
    raise ValueError(f"no auto runtime for role {role!r}")


def resolve(role: str, runtime: str, flags: frozenset[str] | None = None, int8_agrees: bool = False) -> str:
    """runtime itself, or what `auto` means here; an unknown runtime is a clear error."""
    chosen = auto_runtime(role, flags, int8_agrees) if runtime == "auto" else runtime
    if role in RUNTIMES and chosen not in RUNTIMES[role]:
        raise ValueError(f"unknown {role} runtime {runtime!r}: use auto, {', '.join(RUNTIMES[role])}")
    return chosen


def describe_flags(flags: frozenset[str] | None = None) -> str:
    """The flags that decide `auto` (and explain speed), as found: 'avx2 fma avx512f, no avx512_bf16/amx_bf16'."""
    flags = cpu_flags() if flags is None else flags
    found = [f for f in SHOWN if f in flags]
    missing = [f for f in NATIVE_BF16 if f not in flags]
    text = " ".join(found) or "none of " + " ".join(SHOWN)
    if len(missing) == len(NATIVE_BF16):
        text += ", no " + "/".join(missing)
    return text
