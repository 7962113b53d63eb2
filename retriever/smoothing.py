"""Per-channel smoothing of each Linear layer's input before int8 (SmoothQuant): the same function in fp32, fewer
outliers for the quantiser.

A few input channels of a BERT layer run 10-100x larger than the rest, so one int8 scale per activation tensor
(dynamic quantisation) rounds the other channels away. Dividing channel j of the input by s_j and multiplying
column j of the weight by s_j leaves x @ W.T unchanged while moving part of the range into the weights, which are
quantised per output channel. s_j = max|x_j|^alpha / max|W_.j|^(1 - alpha), with max|x_j| measured on calibration
windows (qa.training.int8_scales). The scales are a small file beside the weights (SCALES_FILE); the ONNX export
applies them before quantising (retriever.onnx_runtime).
"""

from __future__ import annotations

from pathlib import Path

SCALES_FILE = "int8_scales.safetensors"


def input_maxima(model, batches) -> dict:
    """{Linear module name: per-input-channel max |x|} over the batches (dicts of tensors for model(**batch))."""
    import torch

    maxima, hooks = {}, []

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0).float()
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
        return record

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(hook(name)))
    try:
        with torch.inference_mode():
            for batch in batches:
                model(**batch)
    finally:
        for h in hooks:
            h.remove()
    return maxima


def smoothing_scales(model, maxima: dict, alpha: float) -> dict:
    """{Linear module name: s} from the activation maxima and the layer's weights."""
    modules = dict(model.named_modules())
    scales = {}
    for name, x_max in maxima.items():
        w_max = modules[name].weight.detach().float().abs().amax(0).clamp(min=1e-5)
        scales[name] = (x_max.clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)).clamp(1e-3, 1e3)
    return scales


def apply_smoothing(model, scales: dict) -> int:
    """Replace each named Linear by (x / s) @ (W * s).T + b in place; returns how many were replaced."""
    import torch

    class Smoothed(torch.nn.Module):
        def __init__(self, linear, s):
            super().__init__()
            self.register_buffer("inverse", (1.0 / s).to(linear.weight.dtype))
            self.linear = linear
            with torch.no_grad():
                linear.weight.mul_(s.to(linear.weight.dtype)[None, :])

        def forward(self, x):
            return self.linear(x * self.inverse)

    for name, s in scales.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        if not isinstance(linear, torch.nn.Linear) or linear.in_features != s.numel():
            raise ValueError(f"{SCALES_FILE}: {name} is not a Linear layer with {s.numel()} inputs in this model")
        setattr(parent, child, Smoothed(linear, s))
    return len(scales)


def has_scales(model_dir: Path) -> bool:
    """Whether a model folder ships smoothing scales, so that its int8 copy keeps fp32's answers."""
    return (Path(model_dir) / SCALES_FILE).exists()


def load_scales(model_dir: Path) -> dict | None:
    """The scales shipped beside a model's weights, or None when it has none (plain dynamic int8 then)."""
    path = Path(model_dir) / SCALES_FILE
    if not has_scales(model_dir):
        return None
    from safetensors.torch import load_file

    return load_file(str(path))


def save_scales(scales: dict, model_dir: Path, metadata: dict[str, str]) -> Path:
    from safetensors.torch import save_file

    path = Path(model_dir) / SCALES_FILE
    save_file({k: v.contiguous() for k, v in scales.items()}, str(path), metadata=metadata)
    return path
