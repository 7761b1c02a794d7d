"""refquant.strategies: LiteRT accepts what they draw, refquant matches LiteRT on it, arguments are validated
up front, and shrinking ends at small readable cases.

The differential part is refquant's own use of the public toolkit: for every (op, dtype) of
``supported_op_dtypes()`` it draws ``op_models(op, dtype)``, runs each model in LiteRT BUILTIN_REF
(the worker of the ``litert`` fixture, via ``litert_backend``) and checks it with
``assert_matches_reference``. It also counts what LiteRT rejects: under 5% per (op, dtype) is
required. Draws per (op, dtype): 200 with ``HYPOTHESIS_PROFILE=dev`` (the rejection-rate
measurement), otherwise a few, derandomized (CI); ``REFQUANT_STRATEGY_DRAWS=N`` overrides both.
``REFQUANT_STRATEGY_REPORT=path.json`` writes the counts.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

import refquant.strategies as rqs
from refquant.arithmetic import profile_names
from refquant.errors import RefquantError, UnsupportedOpError
from refquant.model import QuantParams
from refquant.quantization import dtype_range
from refquant.testing import Case, assert_matches_reference, litert_backend, run_reference
from refquant.testing.oracle import tflm_available

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "")
DRAWS = int(os.environ.get("REFQUANT_STRATEGY_DRAWS", "200" if PROFILE == "dev" else "5"))
GRAPH_DRAWS = int(os.environ.get("REFQUANT_STRATEGY_DRAWS", "200" if PROFILE == "dev" else "12"))
COMBOS = [(op, dt) for op, dts in rqs.supported_op_dtypes().items() for dt in dts]

#: LiteRT 2.3 BUILTIN_REF SUM reads int16 input as uint8 bytes and leaves most of the output uninitialized
#: (docs/litert_semantics.md §3.11); refquant computes the correct sum, checked in tests/ops/test_reduce.py.
LITERT_BUGS = {("SUM", "int16")}
#: Float LOG (libm logf) and GELU (Eigen): refquant evaluates in float64 (tolerance in ULP, atol).
FLOAT_TOLERANCE = {
    "LOG": (4, 0.0),
    "GELU": (4, 1e-6),
}
REPORT: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if not REPORT:
        return
    path = os.environ.get("REFQUANT_STRATEGY_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(REPORT, f, indent=1, sort_keys=True)
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        worst = sorted(REPORT.items(), key=lambda kv: -(kv[1].get("rejected", 0) + kv[1].get("aborted", 0)))[:5]
        draws = sum(c["draws"] for c in REPORT.values())
        rej = sum(c.get("rejected", 0) + c.get("aborted", 0) for c in REPORT.values())
        tr.write_line(
            f"\nrefquant.strategies vs LiteRT: {len(REPORT)} (op, dtype) pairs, {draws} draws, {rej} rejected"
        )
        for key, c in worst:
            if c.get("rejected", 0) + c.get("aborted", 0):
                tr.write_line(f"  {key}: {c}")


def _differential(litert, strategy, key: str, draws: int, tolerance: float = 0, atol: float = 0.0, compare=True):
    """Draw ``draws`` cases; count LiteRT's statuses; compare refquant with LiteRT on every accepted one."""
    counts: Counter = Counter()
    backend = litert_backend(litert)

    @settings(
        max_examples=draws,
        derandomize=PROFILE != "dev",
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        counts["draws"] += 1
        res = litert.run(case.model, case.inputs, all_tensors=False)
        if res.status != "ok":
            counts[res.status] += 1
            assert res.status != "aborted", f"LiteRT aborted on a drawn model: {res.message}\n{case!r}"
            return
        if compare:
            # LiteRT BUILTIN_REF is the backend: its float32 loops are matched bit for bit by "sequential".
            assert_matches_reference(backend, case, tolerance=tolerance, atol=atol, float_accumulation="sequential")

    run()
    REPORT[key] = dict(counts)
    return counts


@pytest.mark.oracle
@pytest.mark.parametrize("opcode,dtype", COMBOS, ids=[f"{op}-{dt}" for op, dt in COMBOS])
def test_op_models_run_in_litert_and_match(litert, opcode, dtype):
    tol, atol = FLOAT_TOLERANCE.get(opcode, (0, 0.0)) if dtype == "float32" else (0, 0.0)
    counts = _differential(
        litert,
        rqs.op_models(opcode, dtype),
        f"{opcode} {dtype}",
        DRAWS,
        tolerance=tol,
        atol=atol,
        compare=(opcode, dtype) not in LITERT_BUGS,
    )
    rejected = counts["rejected"] + counts["aborted"]
    assert counts["aborted"] == 0
    assert rejected < 0.05 * counts["draws"], f"LiteRT rejected {rejected} of {counts['draws']} drawn models"


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", sorted(rqs.GRAPH_OPS))
def test_graph_models_run_in_litert_and_match(litert, dtype):
    counts = _differential(litert, rqs.graph_models(dtype), f"graph {dtype}", GRAPH_DRAWS)
    assert counts["rejected"] + counts["aborted"] < 0.05 * counts["draws"]


# ---------------------------------------------------------------------------------------------
# Every profile: op_models against the runtime each profile reproduces

#: Draws per (op, dtype, profile): small and derandomized in CI; ``REFQUANT_PROFILE_DRAWS=N`` overrides.
PROFILE_DRAWS = int(os.environ.get("REFQUANT_PROFILE_DRAWS", "100" if PROFILE == "dev" else "3"))
OTHER_PROFILES = [p for p in profile_names() if p != "litert-ref"]
#: Float outputs under the optimized and XNNPACK runtimes: their float kernels sum and vectorize differently
#: (refquant's float kernels are LiteRT's reference ones); integer outputs are always compared exactly.
PROFILE_FLOAT_TOLERANCE = (64, 1e-5)
#: (op, dtype, profile) where the runtime computes something else and refquant's decision table
#: (refquant/arithmetic/decide.py, xnnpack.py) neither reproduces nor refuses it yet: found by this test,
#: each with the drawn case that showed it. Not strict: the draws change with the test's code (derandomized
#: Hypothesis seeds from it), so a later draw may miss the difference; a refusal turns the test into a skip.
KNOWN_PROFILE_GAPS = {
    ("ADD", "int32", "tflm"): "tflite-micro ignores the fused RELU of int32 ADD (0 + -1 gives -1)",
    (
        "MUL",
        "int16",
        "tflm",
    ): "tflite-micro's int16 MUL rounds differently (109*0.1 x -91*0.0562 / 0.7198: -78, REF -77)",
    ("GREATER", "int16", "tflm"): "tflite-micro's int16 GREATER: 0 > -1 (scale 0.5) gives False",
    ("SPACE_TO_BATCH_ND", "int8", "tflm"): "tflite-micro pads with 0, not the zero point",
    ("REDUCE_PROD", "int8", "litert-optimized"): "the optimized REDUCE_PROD: prod([0]) with output zp 1 gives 0",
    ("REDUCE_PROD", "int16", "litert-optimized"): "the optimized REDUCE_PROD differs (as int8)",
    ("REDUCE_PROD", "int8", "litert-xnnpack"): "the optimized REDUCE_PROD (not delegated) differs",
    ("REDUCE_PROD", "int16", "litert-xnnpack"): "the optimized REDUCE_PROD (not delegated) differs",
    ("STRIDED_SLICE", "int8", "litert-xnnpack"): "XNNPACK returns 1 element for an empty slice (begin 0, end 0)",
    ("STRIDED_SLICE", "uint8", "litert-xnnpack"): "XNNPACK returns 1 element for an empty slice",
    ("STRIDED_SLICE", "float32", "litert-xnnpack"): "XNNPACK returns 1 element for an empty slice",
    ("RSQRT", "float32", "litert-xnnpack"): "XNNPACK's float RSQRT(0) is NaN, not inf",
    ("TRANSPOSE_CONV", "int16", "tflm"): "tflite-micro's int16 TRANSPOSE_CONV differs; decide keys the op by its "
    "first input (output_shape, int32), so its int16 refusal never applies",
}


def _profile_differential(litert, strategy, profile: str, key: str, draws: int) -> Counter:
    """Draw ``draws`` cases; run each in ``profile``'s runtime and refquant under ``profile``.

    refquant refusing a case (UnsupportedOpError naming the runtime) counts as ``refused``, the runtime
    rejecting or aborting on it as ``rejected`` / ``aborted``; every case both run must match.
    """
    counts: Counter = Counter()

    @settings(
        max_examples=draws,
        derandomize=PROFILE != "dev",
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        counts["draws"] += 1
        try:
            run_reference(case.model, case.inputs, arithmetic=profile)
        except UnsupportedOpError as exc:
            # the refusal names the runtime whose kernel runs the node (under litert-xnnpack, an operator the
            # delegate does not take is refused as litert-optimized's) or an op/type refquant never runs
            assert "arithmetic " in str(exc) or "not supported" in str(exc), str(exc)
            counts["refused"] += 1
            return
        res = litert.run(case.model, case.inputs, profile=profile)
        if res.status != "ok":
            counts[res.status] += 1
            return
        counts["compared"] += 1
        floats = any(np.asarray(o).dtype.kind == "f" for o in res.outputs)
        tol, atol = PROFILE_FLOAT_TOLERANCE if floats else (0, 0.0)
        assert_matches_reference(
            lambda m, x: res.outputs,
            case,
            tolerance=tol,
            atol=atol,
            arithmetic=profile,
            float_accumulation="sequential",
        )

    run()
    REPORT[f"{key} {profile}"] = dict(counts)
    return counts


@pytest.mark.oracle
@pytest.mark.parametrize("profile", OTHER_PROFILES)
@pytest.mark.parametrize("opcode,dtype", COMBOS, ids=[f"{op}-{dt}" for op, dt in COMBOS])
def test_op_models_match_each_profiles_runtime(litert, request, opcode, dtype, profile):
    if profile == "tflm" and not tflm_available():
        pytest.skip("tflite-micro (the tflm oracle) is not installed: pip install -e '.[test]'")
    gap = KNOWN_PROFILE_GAPS.get((opcode, dtype, profile))
    if gap is not None:
        request.applymarker(pytest.mark.xfail(reason=f"not reproduced or refused yet: {gap}", strict=False))
    counts = _profile_differential(
        litert,
        rqs.op_models(opcode, dtype),
        profile,
        f"{opcode} {dtype}",
        PROFILE_DRAWS,
    )
    if not counts["compared"] and counts["refused"]:
        pytest.skip(f"refquant refuses {opcode} {dtype} under {profile} on every draw")


def test_every_registered_op_has_models():
    from refquant.ops import REGISTRY

    missing = set(REGISTRY) - set(rqs.supported_op_dtypes()) - {"REFQUANT_IDENTITY"}
    assert not missing, f"op_models has no generator for {sorted(missing)}"
    for op, dts in rqs.supported_op_dtypes().items():
        assert set(dts) <= set(REGISTRY[op].dtypes), (op, dts, REGISTRY[op].dtypes)
        assert set(dts) & {"int8", "uint8", "int16", "float32"} == set(REGISTRY[op].dtypes) & {
            "int8",
            "uint8",
            "int16",
            "float32",
        }, op


# ---------------------------------------------------------------------------------------------
# Argument validation: one table, one error type, raised at the call


INVALID_CALLS = [
    (rqs.scales, dict(min_value=0.0)),
    (rqs.scales, dict(min_value=-1.0)),
    (rqs.scales, dict(max_value=float("inf"))),
    (rqs.scales, dict(min_value=2.0, max_value=1.0)),
    (rqs.scales, dict(min_value="0.1")),
    (rqs.scales, dict(min_value=1e-40)),
    (rqs.zero_points, dict(dtype="int32")),
    (rqs.zero_points, dict(dtype="int8", symmetric="yes")),
    (rqs.quant_params, dict(dtype="float32")),
    (rqs.quant_params, dict(channels=0)),
    (rqs.quant_params, dict(channels=2.5)),
    (rqs.quant_params, dict(axis=-1)),
    (rqs.quant_params, dict(min_scale=1.0, max_scale=0.5)),
    (rqs.quantized_arrays, dict(dtype="float32", shape=(2,))),
    (rqs.quantized_arrays, dict(dtype="int8", shape=(-1,))),
    (rqs.quantized_arrays, dict(dtype="int8", shape="2x2")),
    (rqs.quantized_arrays, dict(dtype="int8", shape=(2,), min_value=-200)),
    (rqs.quantized_arrays, dict(dtype="int8", shape=(2,), min_value=5, max_value=4)),
    (rqs.quantized_multipliers, dict(min_shift=-32)),
    (rqs.quantized_multipliers, dict(max_shift=31)),
    (rqs.quantized_multipliers, dict(min_shift=3, max_shift=2)),
    (rqs.conv_geometries, dict(max_side=0)),
    (rqs.conv_geometries, dict(max_kernel=True)),
    (rqs.conv_geometries, dict(padding="FULL")),
    (rqs.conv_geometries, dict(depthwise=True, max_groups=2)),
    (rqs.conv_geometries, dict(max_groups=5, max_channels=4)),
    (rqs.conv_geometries, dict(depthwise=1)),
    (rqs.pool_geometries, dict(max_filter=0)),
    (rqs.pool_geometries, dict(padding="same")),
    (rqs.op_models, dict(opcode="CONV")),
    (rqs.op_models, dict(opcode="ELU")),
    (rqs.op_models, dict(opcode="REFQUANT_IDENTITY", dtype="float32")),
    (rqs.op_models, dict(opcode=3)),
    (rqs.op_models, dict(opcode="CONV_2D", dtype="int32")),
    (rqs.op_models, dict(opcode="CONV_2D", dtype="int4")),
    (rqs.op_models, dict(opcode="SQUARE", dtype="int8")),
    (rqs.op_models, dict(opcode="CONV_2D", max_side=0)),
    (rqs.op_models, dict(opcode="CONV_2D", max_side=1000)),
    (rqs.op_models, dict(opcode="CONV_2D", max_rank=3)),
    (rqs.op_models, dict(opcode="ADD", max_rank=7)),
    (rqs.op_models, dict(opcode="ADD", max_batch=0)),
    (rqs.op_models, dict(opcode="CONV_2D", per_channel="yes")),
    (rqs.op_models, dict(opcode="CONV_2D", dtype="uint8", per_channel=True)),
    (rqs.op_models, dict(opcode="ADD", per_channel=True)),
    (rqs.op_models, dict(opcode="CONV_2D", activation="TANH")),
    (rqs.op_models, dict(opcode="RELU", activation="RELU")),
    (rqs.op_models, dict(opcode="QUANTIZE", dtype="float32", output_dtype="float32")),
    (rqs.op_models, dict(opcode="QUANTIZE", dtype="int32", output_dtype="uint8")),
    (rqs.op_models, dict(opcode="ADD", output_dtype="int8")),
    (rqs.op_models, dict(opcode="ADD", shape=(2,))),
    (rqs.graph_models, dict(dtype="int32")),
    (rqs.graph_models, dict(max_ops=0)),
    (rqs.graph_models, dict(max_side=0)),
    (rqs.graph_models, dict(ops=["CONV_2D", "ELU"])),
    (rqs.graph_models, dict(ops="CONV_2D")),
    (rqs.graph_models, dict(ops=[])),
    (rqs.graph_models, dict(dtype="float32", ops=["LOGISTIC"])),
]


@pytest.mark.parametrize(
    "function,kwargs", INVALID_CALLS, ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(INVALID_CALLS)]
)
def test_invalid_arguments_raise_at_the_call(function, kwargs):
    with pytest.raises(rqs.InvalidArgument) as info:
        function(**kwargs)
    assert isinstance(info.value, RefquantError) and isinstance(info.value, HypothesisInvalidArgument)
    assert str(info.value)


def test_invalid_argument_message_lists_what_is_allowed():
    with pytest.raises(
        rqs.InvalidArgument, match=r"CONV_2D models exist for dtype \['int8', 'uint8', 'int16', 'float32'\]"
    ):
        rqs.op_models("CONV_2D", "int32")
    with pytest.raises(rqs.InvalidArgument, match="did you mean"):
        rqs.op_models("CONV")
    with pytest.raises(rqs.InvalidArgument, match="do not apply to ADD"):
        rqs.op_models("ADD", per_channel=True)


# ---------------------------------------------------------------------------------------------
# The primitives draw what they promise


@settings(max_examples=60, deadline=None)
@given(s=rqs.scales(1e-5, 10.0))
def test_scales_are_float32_and_in_range(s):
    assert 1e-5 <= s <= 10.0 and float(np.float32(s)) == s


@settings(max_examples=60, deadline=None)
@given(
    q=rqs.quant_params("int8", channels=3, axis=1),
    q16=rqs.quant_params("int16"),
    qs=rqs.quant_params("uint8", symmetric=True),
)
def test_quant_params(q, q16, qs):
    assert isinstance(q, QuantParams) and q.scale.shape == (3,) and q.quantized_dimension == 1
    assert np.all((q.zero_point >= -128) & (q.zero_point <= 127))
    assert q16.scale.shape == (1,) and int(q16.zero_point[0]) == 0
    assert int(qs.zero_point[0]) == 128


@settings(max_examples=60, deadline=None)
@given(
    a=rqs.quantized_arrays("int16", st.tuples(st.integers(0, 5), st.integers(1, 5))),
    b=rqs.quantized_arrays("uint8", 7, min_value=3, max_value=9),
)
def test_quantized_arrays(a, b):
    assert a.dtype == np.int16 and a.ndim == 2
    assert b.dtype == np.uint8 and b.shape == (7,) and b.min() >= 3 and b.max() <= 9


@settings(max_examples=60, deadline=None)
@given(mult=rqs.quantized_multipliers(min_shift=-5, max_shift=3))
def test_quantized_multipliers(mult):
    m, shift = mult
    assert 2**30 <= m < 2**31 and -5 <= shift <= 3


@settings(max_examples=80, deadline=None)
@given(g=rqs.conv_geometries(max_groups=2), d=rqs.conv_geometries(depthwise=True, padding="VALID"))
def test_conv_geometries_valid_by_construction(g, d):
    for geo in (g, d):
        assert geo.out_h >= 1 and geo.out_w >= 1
        if geo.padding == "VALID":
            assert geo.in_h >= (geo.kernel_h - 1) * geo.dilation_h + 1
            assert geo.in_w >= (geo.kernel_w - 1) * geo.dilation_w + 1
    assert g.in_channels % g.groups == 0 and g.out_channels % g.groups == 0
    assert g.filter_shape == (g.out_channels, g.kernel_h, g.kernel_w, g.in_channels // g.groups)
    assert d.filter_shape[-1] == d.out_channels and d.out_channels % d.in_channels == 0


@settings(max_examples=80, deadline=None)
@given(p=rqs.pool_geometries())
def test_pool_geometries_valid_by_construction(p):
    assert p.out_h >= 1 and p.out_w >= 1
    if p.padding == "VALID":
        assert p.in_h >= p.filter_h and p.in_w >= p.filter_w


@settings(max_examples=30, deadline=None)
@given(case=rqs.op_models("CONV_2D", "int8", per_channel=True, activation="RELU", max_side=3))
def test_constraints_are_applied(case):
    assert "fused_activation_function=RELU" in case.description
    assert "(axis 0)" in case.description or "int8[1, " in case.description  # per-channel unless one channel
    assert all(d <= 3 for d in case.inputs[0].shape[1:3])
    out = run_reference(case.model, case.inputs)[0]
    assert out.dtype == np.int8


@settings(max_examples=20, deadline=None)
@given(case=rqs.op_models("QUANTIZE", "float32", output_dtype="int16"))
def test_output_dtype_constraint(case):
    assert run_reference(case.model, case.inputs)[0].dtype == np.int16


# ---------------------------------------------------------------------------------------------
# Shrinking ends at small, readable cases

MINIMAL = settings(database=None, derandomize=True, max_examples=200, phases=[Phase.generate, Phase.shrink])


@pytest.mark.parametrize(
    "opcode,dtype",
    [("CONV_2D", "int8"), ("DEPTHWISE_CONV_2D", "int16"), ("FULLY_CONNECTED", "uint8"), ("ADD", "int8"),
     ("AVERAGE_POOL_2D", "int8"), ("SOFTMAX", "int8"), ("QUANTIZE", "float32"), ("CONCATENATION", "int8")],
)  # fmt: skip
def test_simplest_case_is_one_element_with_unit_scale(opcode, dtype):
    case = find(rqs.op_models(opcode, dtype), lambda c: True, settings=MINIMAL)
    assert case.inputs and all(x.size == 1 for x in case.inputs), case
    assert "scale 1," in case.description or dtype == "float32", case
    assert "zp 0" in case.description or dtype == "float32", case
    assert len(case.description.splitlines()) <= 7


def test_simplest_graph_is_one_op():
    case = find(rqs.graph_models("int8"), lambda c: True, settings=MINIMAL)
    title = case.description.splitlines()[0]
    assert title.startswith("graph int8: ") and " -> " not in title, case  # one operator
    assert len(case.inputs) == 1 and case.inputs[0].size == 1, case


def test_case_repr_is_the_description():
    case = find(rqs.op_models("ADD", "int8"), lambda c: True, settings=MINIMAL)
    assert repr(case) == f"Case({case.description})"
    assert case.description.startswith("ADD int8\n")


@pytest.mark.parametrize("dtype", ["int8", "int16", "uint8"])
def test_quantized_inputs_span_the_type(dtype):
    lo, hi = dtype_range(dtype)
    seen_lo = seen_hi = False

    @settings(max_examples=150, database=None, derandomize=True, phases=[Phase.generate])
    @given(case=rqs.op_models("RELU", dtype))
    def run(case):
        nonlocal seen_lo, seen_hi
        seen_lo |= bool(case.inputs[0].size and case.inputs[0].min() == lo)
        seen_hi |= bool(case.inputs[0].size and case.inputs[0].max() == hi)

    run()
    assert seen_lo and seen_hi


def test_scales_cover_several_decades():
    seen = []

    @settings(max_examples=150, database=None, derandomize=True, phases=[Phase.generate])
    @given(s=rqs.scales())
    def run(s):
        seen.append(s)

    run()
    decades = {math.floor(math.log10(s)) for s in seen}
    assert len(decades) >= 4 and 1.0 in seen and 0.5 in seen
