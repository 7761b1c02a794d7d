"""``float_accumulation="float64"`` (the default) against LiteRT's sequential float32 loop.

The sequential float32 kernels are checked bit for bit against LiteRT in the op tests (``opcheck`` runs
refquant with ``"sequential"``). Here the float64 kernels are checked against them with a bound that
follows from the arithmetic, not a tuned tolerance: a float32 dot product of K terms summed in order
differs from the exact sum by at most ``gamma_K * sum|x*w|`` with ``gamma_K = K*u / (1 - K*u)``,
``u = 2^-24`` (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); the float64 sum differs from
it by ``K * 2^-53 * sum|x*w|`` and one rounding to float32; each adds the bias with one more float32
rounding. So ``|float64 - sequential| <= (gamma_K + K*2^-52 + 4u) * sum|x*w| + 4u*|bias|`` elementwise,
``sum|x*w|`` being the same operator run on ``|x|`` and ``|w|``. A wrong tap, a wrong padding or a wrong
channel chunk breaks this bound by orders of magnitude (it is about ``K * 6e-8`` of the term magnitudes).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import InputError
from refquant.ops.conv import conv2d
from refquant.ops.matmul import float_matmul, sequential_matmul_f32
from tests.opcheck import run_refquant
from tests.ops.test_conv import _conv_model, conv_case, tconv_case

U = 2.0**-24
OPTS = dict(padding="SAME", stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=1)


def _bound(k: int, abs_sum: np.ndarray, bias: np.ndarray | float = 0.0) -> np.ndarray:
    gamma = k * U / (1 - k * U)
    return (gamma + k * 2.0**-52 + 4 * U) * abs_sum.astype(np.float64) + 4 * U * np.abs(bias) + 2.0**-140


def _op(model: bytes, x: np.ndarray, accumulation: str):
    tr = run_refquant(model, [x], float_accumulation=accumulation)
    op = tr.model.subgraphs[0].operators[0]
    inputs = [tr.values[i] if i >= 0 else None for i in op.inputs]
    return tr.op_data[0], inputs, tr.values[op.outputs[0]]


def _check_pair(model: bytes, x: np.ndarray, data_in: int, bias_at: int) -> None:
    """float64 run vs sequential run of a one-op model, within the bound; trace() matches the float64 output.

    ``data_in``: index of the data input (CONV_2D 0, TRANSPOSE_CONV 2); the filter is input 1.
    """
    d64, inputs, out64 = _op(model, x, "float64")
    _, _, seq = _op(model, x, "sequential")
    assert d64.accumulation == "float64"
    depth = int(np.prod(inputs[1].shape[1:]))
    abs_inputs = list(inputs)
    abs_inputs[1] = np.abs(inputs[1])
    abs_inputs[data_in] = np.abs(inputs[data_in])
    if len(abs_inputs) > bias_at:
        abs_inputs[bias_at] = None
    abs_sum = d64.accumulators(abs_inputs)["acc"]
    bias = inputs[bias_at] if len(inputs) > bias_at and inputs[bias_at] is not None else np.zeros(1, np.float32)
    bound = _bound(depth, abs_sum, bias.reshape(-1))
    err = np.abs(out64.astype(np.float64) - seq.astype(np.float64))
    assert (err <= bound).all(), f"max excess {(err - bound).max():.3g}"
    for el in itertools.islice(itertools.product(*(range(n) for n in out64.shape)), 0, None, 7):
        steps = d64.trace(inputs, 0, el)
        assert np.float32(steps[-1].value) == out64[el], (el, steps)


@settings()
@given(st.sampled_from(["conv", "tconv"]), st.data())
def test_float64_within_bound_of_sequential(kind, data):
    """CONV_2D (data input 0, bias 2) and TRANSPOSE_CONV (data input 2, bias 3) on random shapes and options."""
    model, x = data.draw(conv_case("float32") if kind == "conv" else tconv_case("float32"))
    try:
        _op(model, x, "float64")
    except refquant.RefquantError:
        return  # shapes LiteRT rejects too (the op tests check that)
    _check_pair(model, x, data_in=0 if kind == "conv" else 2, bias_at=2 if kind == "conv" else 3)


def test_conv2d_float64_channel_chunks_and_row_blocks(monkeypatch):
    """Filters above _WEIGHT_BLOCK go in channel chunks, outputs in row blocks: same values as one block."""
    rng = np.random.default_rng(3)
    for kh, groups, stride in ((3, 1, 1), (3, 1, 2), (1, 1, 1), (2, 2, 1)):
        x = rng.normal(0, 1, (2, 9, 7, 8)).astype(np.float32)
        w = rng.normal(0, 1, (12, kh, kh, 8 // groups)).astype(np.float32)
        b = rng.normal(0, 1, 12).astype(np.float32)
        model = _conv_model("CONV_2D", x.shape, w, b, dt="float32", **{**OPTS, "stride_h": stride, "stride_w": stride})
        whole = run_refquant(model, [x], float_accumulation="float64").values[3]
        monkeypatch.setattr(conv2d, "_WEIGHT_BLOCK", 40)  # a few channels per chunk
        monkeypatch.setattr(conv2d, "rows_per_block", lambda n, target=None: max(1, 300 // n))  # part rows
        split = run_refquant(model, [x], float_accumulation="float64").values[3]
        monkeypatch.undo()
        np.testing.assert_array_equal(split, whole)
        # An independent float64 reference (padded input, einsum) rounded once: within one rounding.
        d64, inputs, _ = _op(model, x, "float64")
        ref = _conv_reference64(x, w, b, d64, groups)
        assert (np.abs(whole - ref) <= 2 * U * np.abs(ref) + 2.0**-140).all()


def _conv_reference64(x, w, b, d, groups):
    bsz, oh, ow, o = d.output_shapes[0]
    kh, kw = w.shape[1], w.shape[2]
    xp = np.zeros((bsz, x.shape[1] + 2 * kh + oh * d.stride_h, x.shape[2] + 2 * kw + ow * d.stride_w, x.shape[3]))
    xp[:, d.pad_h : d.pad_h + x.shape[1], d.pad_w : d.pad_w + x.shape[2]] = x
    og, ig = o // groups, w.shape[3]
    out = np.zeros((bsz, oh, ow, o))
    for ky in range(kh):
        for kx in range(kw):
            ys = slice(ky * d.dilation_h, ky * d.dilation_h + (oh - 1) * d.stride_h + 1, d.stride_h)
            xs = slice(kx * d.dilation_w, kx * d.dilation_w + (ow - 1) * d.stride_w + 1, d.stride_w)
            for g in range(groups):
                patch = xp[:, ys, xs, g * ig : (g + 1) * ig]
                out[..., g * og : (g + 1) * og] += np.einsum("bhwc,oc->bhwo", patch, w[g * og : (g + 1) * og, ky, kx])
    res = out.astype(np.float32) + b
    return np.clip(res, d.act_min, d.act_max)


def test_conv2d_nonfinite_filter_runs_the_sequential_kernel():
    """0 * inf at a zero-padded tap would be NaN: a filter with inf/NaN takes the sequential path."""
    x = np.ones((1, 3, 3, 1), np.float32)
    w = np.array([np.inf, 1.0, 1.0, 1.0], np.float32).reshape(1, 2, 2, 1)
    model = _conv_model("CONV_2D", x.shape, w, np.zeros(1, np.float32), dt="float32", **OPTS)
    a = run_refquant(model, [x], float_accumulation="float64").values[3]
    b = run_refquant(model, [x], float_accumulation="sequential").values[3]
    np.testing.assert_array_equal(a, b)
    assert not np.isnan(a).any()


@pytest.mark.parametrize("m,k,n", [(1, 1280, 1000), (3, 700, 300), (2, 5, 1), (4, 1, 7), (0, 3, 2)])
def test_float_matmul_float64_bound_and_chunks(m, k, n):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.normal(0, 1, (m, k)).astype(np.float32)
    b = rng.normal(0, 1, (k, n)).astype(np.float32)
    f64 = float_matmul(a, b, "float64")  # b above _F64_CHUNK for the first case: column chunks
    assert f64.dtype == np.float32 and f64.shape == (m, n)
    whole = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(f64, whole)
    seq = sequential_matmul_f32(a, b)
    abs_sum = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    assert (np.abs(f64.astype(np.float64) - seq) <= _bound(k, abs_sum)).all()
    np.testing.assert_array_equal(float_matmul(a, b, "sequential"), seq)


def test_fully_connected_and_batch_matmul_follow_the_option():
    from refquant.testing import const, model_bytes, operator, tensor

    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (2, 300)).astype(np.float32)
    w = rng.normal(0, 1, (40, 300)).astype(np.float32)
    xi, wi, yt = (
        tensor(x.shape, "float32", name="x"),
        const(w, "float32", name="w"),
        tensor((2, 40), "float32", name="y"),
    )
    zt = tensor((2, 2), "float32", name="z")
    model = model_bytes(
        [operator("FULLY_CONNECTED", [xi, wi, None], [yt]), operator("BATCH_MATMUL", [yt, yt], [zt], adj_y=True)]
    )
    y, z = 2, 3  # tensor indices: x, w, y, z
    t64 = run_refquant(model, [x], float_accumulation="float64")
    tsq = run_refquant(model, [x], float_accumulation="sequential")
    want_y = (x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(t64.values[y], want_y)
    np.testing.assert_array_equal(tsq.values[y], sequential_matmul_f32(x, w.T))
    yv = t64.values[y]
    np.testing.assert_array_equal(t64.values[z], (yv.astype(np.float64) @ yv.T.astype(np.float64)).astype(np.float32))
    assert [d.accumulation for d in t64.op_data] == ["float64", "float64"]
    assert [d.accumulation for d in tsq.op_data] == ["sequential", "sequential"]
    steps = t64.op_data[0].trace([x, w, None], 0, (1, 3))
    assert steps[-1].value == t64.values[y][1, 3]


def test_option_validated_and_carried_everywhere(tmp_path):
    model = _conv_model(
        "CONV_2D", (1, 4, 4, 2), np.ones((3, 2, 2, 2), np.float32), np.zeros(3, np.float32), dt="float32", **OPTS
    )
    with pytest.raises(InputError, match="float_accumulation"):
        refquant.Interpreter(model_content=model, float_accumulation="float16")
    it = refquant.Interpreter(model_content=model, float_accumulation="sequential")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((1, 4, 4, 2), np.float32))
    it.invoke()
    assert it.trace.op_data[0].accumulation == "sequential"
    assert it.float_shadow().float_accumulation == "sequential"
    # The CLI takes the option; golden dumps record it and diff's trace command repeats it.
    from refquant.cli import main
    from refquant.diff import trace_command

    mpath = tmp_path / "m.tflite"
    mpath.write_bytes(model)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.ones((1, 1, 4, 4, 2), np.float32))
    assert (
        main(
            [
                "trace",
                str(mpath),
                "--input",
                str(data),
                "--tensor",
                "3",
                "--element",
                "0,0,0,0",
                "--float-accumulation",
                "sequential",
            ]
        )
        == 0
    )
    out = tmp_path / "dump"
    assert (
        main(["golden", str(mpath), "--input", str(data), "--out", str(out), "--float-accumulation", "sequential"]) == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["float_accumulation"] == "sequential"
    doc = {
        "model": str(mpath),
        "input": str(data),
        "float_accumulation": "sequential",
        "first_divergence": {"tensor_index": 3, "element": [0, 0, 0, 0], "sample": 0},
    }
    assert "--float-accumulation sequential" in (trace_command(doc) or "")
    with pytest.raises(SystemExit):
        main(["trace", str(mpath), "--input", str(data), "--tensor", "3", "--float-accumulation", "exact"])
