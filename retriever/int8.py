"""Which models' int8 copies keep their fp32 answers, and how each copy is quantised (ONNX Runtime, dynamic int8).

Two kinds of model earn `auto`'s int8 on a CPU with VNNI: one shipped with smoothing scales (retriever.smoothing),
and one shipped with int8 weights of its own (INT8_FILE, written by qa.training.qat: the reader fine-tuned through
ONNX Runtime's int8 rounding and distilled from its fp32 self). The int8 export builds that copy from those weights
and quantises it exactly as the training simulated: weights per output channel, only the MatMuls with a constant
weight (the attention products stay float). The fp32 and bf16 runtimes never read the file.
"""

from __future__ import annotations

from pathlib import Path

from retriever.smoothing import has_scales

INT8_FILE = "int8_weights.safetensors"


def int8_trained(model_dir: Path) -> bool:
    return (Path(model_dir) / INT8_FILE).exists()


def int8_keeps_answers(model_dir: Path) -> bool:
    """The model's int8 copy keeps fp32's answers: it ships smoothing scales or int8 weights of its own."""
    return has_scales(model_dir) or int8_trained(model_dir)


def quantise_options(model_dir: Path) -> dict:
    """quantize_dynamic's keywords for this model (beside the file names)."""
    if int8_trained(model_dir):
        return {"per_channel": True, "extra_options": {"MatMulConstBOnly": True}}
    return {"per_channel": has_scales(model_dir)}


def trained_state(model_dir: Path) -> dict:
    """The int8 copy's weights that differ from the fp32 model's, as fp32 torch tensors by parameter name: each
    Linear weight is its int8 values times its channel's scale, which quantize_dynamic maps back to the same int8."""
    from safetensors.torch import load_file

    stored = load_file(str(Path(model_dir) / INT8_FILE))
    state = {}
    for name, tensor in stored.items():
        if name.endswith(".int8"):
            base = name.removesuffix(".int8")
            state[base] = tensor.float() * stored[base + ".scale"][:, None]
        elif not name.endswith(".scale"):
            state[name] = tensor.float()
    return state
