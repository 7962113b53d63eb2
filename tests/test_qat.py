"""Quantisation-aware fine-tuning simulates ONNX Runtime's dynamic int8 exactly: the same uint8 inputs as its
DynamicQuantizeLinear, the same per-channel int8 weights as quantize_dynamic, and a trained reader is quantised the
way it was trained."""

import numpy as np
import pytest
import torch

from qa.training.qat import fake_int8_weight, fake_quantise, fake_uint8_input, _Context
from retriever.int8 import INT8_FILE, int8_keeps_answers, quantise_options


def test_inputs_round_as_dynamic_quantize_linear():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "scale", "zero"]),
         helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"])],
        "dq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shift in (0.0, 3.0, -3.0):  # ranges that straddle zero, and all-positive / all-negative ones
        x = (rng.standard_normal((2, 7, 16)) * rng.uniform(0.1, 20) + shift).astype(np.float32)
        x[0, 3, 5] = 40.0  # an outlier channel in one window only
        got = fake_uint8_input(torch.from_numpy(x), None).numpy()
        for w in range(2):  # each window has its own range, as when ONNX Runtime reads it alone
            expected = session.run(["y"], {"x": x[w]})[0]
            np.testing.assert_allclose(got[w], expected, rtol=0, atol=1e-5)


def test_padding_does_not_widen_a_windows_range():
    x = torch.randn(1, 6, 8)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    padded = x.clone()
    padded[0, 4:] = 1000.0
    np.testing.assert_allclose(fake_uint8_input(padded, mask)[0, :4].numpy(), fake_uint8_input(x[:, :4], None)[0].numpy(),
                               atol=1e-6)


def test_weights_round_as_quantize_dynamic_per_channel(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(1)
    weight = (rng.standard_normal((24, 10)) * rng.uniform(0.01, 3, size=(1, 10))).astype(np.float32)  # [in, out]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "f.onnx"))
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"], per_channel=True, extra_options={"MatMulConstBOnly": True})
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    q = next(v for v in inits.values() if v.dtype == np.int8 and v.shape == weight.shape)
    scale = next(v for k, v in inits.items() if "scale" in k and v.size == 10)
    expected = (q.astype(np.float32) * scale[None, :]).T  # [out, in], as torch's Linear holds it
    got = fake_int8_weight(torch.from_numpy(weight.T.copy())).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_rounding_passes_gradients_straight_through():
    linear = torch.nn.Sequential(torch.nn.Linear(8, 4))
    assert fake_quantise(linear) == 1
    x = torch.randn(2, 3, 8, requires_grad=True)
    _Context.mask = None
    linear(x).sum().backward()
    assert x.grad is not None and linear[0].weight.grad is not None and linear[0].weight.grad.abs().sum() > 0
    assert set(linear.state_dict()) == {"0.weight", "0.bias"}  # the student saves as a plain model


def test_a_reader_with_int8_weights_is_quantised_as_it_was_trained(tmp_path):
    assert not int8_keeps_answers(tmp_path) and quantise_options(tmp_path) == {"per_channel": False}
    (tmp_path / INT8_FILE).write_bytes(b"")
    assert int8_keeps_answers(tmp_path)
    assert quantise_options(tmp_path) == {"per_channel": True, "extra_options": {"MatMulConstBOnly": True}}


@pytest.mark.parametrize("smoothed", [False, True])
def test_the_int8_export_computes_what_training_simulated(tmp_path, smoothed):
    """A small random reader (smoothed first, or not) whose weights moved off the shipped ones through the rounding: ONNX Runtime's int8 copy built from its int8
    weights gives the fake-quantised student's logits; the fp32 export stays the shipped model's."""
    from transformers import BertConfig, BertForQuestionAnswering

    from qa.training.qat import write_student
    from retriever.int8 import int8_trained
    from retriever.onnx_runtime import OnnxQA, onnx_model

    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    shipped = tmp_path / "reader"
    BertForQuestionAnswering(config).save_pretrained(shipped)
    student = BertForQuestionAnswering.from_pretrained(str(shipped))
    for p in student.bert.embeddings.parameters():
        p.requires_grad_(False)
    scales_file = None
    if smoothed:
        from retriever.smoothing import apply_smoothing, load_scales, save_scales

        linears = {name: m for name, m in student.named_modules() if isinstance(m, torch.nn.Linear)}
        save_scales({name: torch.rand(m.in_features) * 3 + 0.2 for name, m in linears.items()}, tmp_path, {})
        scales_file = tmp_path / "int8_scales.safetensors"
        apply_smoothing(student, load_scales(tmp_path))
    fake_quantise(student)
    ids = torch.randint(5, 120, (3, 20))
    with torch.no_grad():  # weights moved off the shipped ones, as training moves them
        for p in student.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    _Context.mask = None
    write_student(student, shipped, tmp_path / "student", scales_file)
    assert int8_trained(tmp_path / "student") and not int8_trained(shipped)
    assert (tmp_path / "student" / INT8_FILE).stat().st_size < 0.5 * (shipped / "model.safetensors").stat().st_size

    student.eval()
    cache = tmp_path / "cache"
    int8 = OnnxQA(onnx_model(tmp_path / "student", "reader", cache, "int8"), one_window_at_a_time=True)
    fp32 = OnnxQA(onnx_model(tmp_path / "student", "reader", cache, "fp32"))
    plain = BertForQuestionAnswering.from_pretrained(str(shipped)).eval()
    batch = {"input_ids": ids.numpy(), "attention_mask": np.ones_like(ids.numpy()),
             "token_type_ids": np.zeros_like(ids.numpy())}
    with torch.no_grad():
        simulated = student(input_ids=ids).start_logits.numpy()
        shipped_logits = plain(input_ids=ids).start_logits.numpy()
    np.testing.assert_allclose(int8(batch)[0], simulated, atol=1e-4)  # 1e-7 measured: the simulation is exact
    np.testing.assert_allclose(fp32(batch)[0], shipped_logits, atol=1e-4)
    assert np.abs(simulated - shipped_logits).max() > 0.01  # the training moved them: the test can tell them apart
