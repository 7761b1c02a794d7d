"""Shape/data-movement ops (RESHAPE ... DEPTH_TO_SPACE) against LiteRT BUILTIN_REF, bit-exact, plus rejections.

Every differential test requires LiteRT to accept the drawn configuration (status "ok"), so a test
cannot pass by both sides rejecting everything; rejections have their own deterministic tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refquant
from refquant.errors import PrepareError, QuantParamError, RefquantError, UnsupportedOpError
from refquant.graph import PreparedGraph
from refquant.testing import const, model_bytes, operator, tensor
from refquant.tflite.reader import load_model
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds, shapes

NUM = ("int8", "uint8", "int16", "float32", "int32", "int64")


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


def _factor_shape(rng: np.random.Generator, size: int, rank: int) -> list[int]:
    """A random shape of ``rank`` dims whose product is ``size``."""
    dims = [1] * rank
    if rank == 0:
        return dims
    if size == 0:
        dims = [int(d) for d in rng.integers(1, 4, rank)]
        dims[int(rng.integers(rank))] = 0
        return dims
    n = size
    p = 2
    while n > 1:
        while n % p == 0:
            dims[int(rng.integers(rank))] *= p
            n //= p
        p += 1
    return dims


# ---------------------------------------------------------------------------------------------
# RESHAPE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_reshape_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4, 0)
    size = int(np.prod(shape))
    rank = data.draw(st.integers(0 if size == 1 else 1, 4))
    target = _factor_shape(rng, size, rank)
    if size == 0 and rank == 0:
        target = [0]
        rank = 1
    if rank and size and data.draw(st.booleans()):
        target[int(rng.integers(rank))] = -1
    mode = data.draw(st.sampled_from(["const", "option", "input"]))
    q = quant_for(rng, dtype)
    x = In(rand_array(rng, dtype, shape), quant=q)
    out = Out(dtype, (1,), quant_for(rng, dtype))
    if mode == "const":
        model, feeds = one_op("RESHAPE", [x, In(np.array(target, np.int32), const=True)], [out])
    elif mode == "input":  # the target is a graph input: prepared at run time
        model, feeds = one_op("RESHAPE", [x, In(np.array(target, np.int32))], [out])
    else:
        if target == [0]:
            target = [-1]  # new_shape [0] is the legacy spelling of a scalar
        model, feeds = one_op("RESHAPE", [x], [out], new_shape=target)
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_reshape_int64_shape_tensor_uses_option(litert):
    x = In(np.arange(6, dtype=np.int8), quant={"scale": 0.5, "zero_point": 3})
    model, feeds = one_op("RESHAPE", [x, In(np.array([6, 1], np.int64), const=True)], [Out("int8")], new_shape=[2, 3])
    _ok(litert, model, feeds)
    assert run_refquant(model, feeds).values[2].shape == (2, 3)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "target",
    [[4, 2], [-1, -1], [-2, 3], [7, -1]],
)
def test_reshape_rejections(litert, target):
    x = In(np.arange(6, dtype=np.int8))
    model, feeds = one_op("RESHAPE", [x, In(np.array(target, np.int32), const=True)], [Out("int8")])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError):
        run_refquant(model, feeds)


def test_reshape_runtime_error_names_operator():
    x = In(np.arange(6, dtype=np.int8))
    model, feeds = one_op("RESHAPE", [x, In(np.array([4, 2], np.int32))], [Out("int8")])
    with pytest.raises(PrepareError, match=r"operator 0 \(RESHAPE\).*cannot reshape 6 elements"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# Keras-style shape arithmetic: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, folded at allocate time


def _keras_flatten_model(dtype: str = "int8") -> bytes:
    q = {"scale": 0.1, "zero_point": 2} if dtype == "int8" else {}
    x = tensor((2, 3, 4), dtype, shape_signature=(-1, 3, 4), name="x", **q)
    sh = tensor((3,), "int32", name="shape")
    begin = const(np.array([0], np.int32), name="begin")
    end = const(np.array([1], np.int32), name="end")
    stride = const(np.array([1], np.int32), name="stride")
    batch = tensor((), "int32", name="batch")
    minus1 = const(np.array(-1, np.int32), name="minus1")
    target = tensor((2,), "int32", name="target")
    y = tensor((2, 12), dtype, shape_signature=(-1, 12), name="y", **q)
    return model_bytes(
        [
            operator("SHAPE", [x], [sh], out_type="INT32"),
            operator("STRIDED_SLICE", [sh, begin, end, stride], [batch], shrink_axis_mask=1),
            operator("PACK", [batch, minus1], [target], values_count=2, axis=0),
            operator("RESHAPE", [x, target], [y]),
        ]
    )


@pytest.mark.oracle
@pytest.mark.parametrize("batch", [1, 2, 5])
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_keras_shape_chain_matches_litert(litert, batch, dtype):
    rng = np.random.default_rng(batch)
    _ok(litert, _keras_flatten_model(dtype), [rand_array(rng, dtype, (batch, 3, 4))])


def test_keras_shape_chain_is_folded_at_allocate_time():
    model = load_model(_keras_flatten_model())
    g = PreparedGraph(model, 0, input_shapes={0: (7, 3, 4)})
    ops = range(len(g.subgraph.operators))
    assert all(g.prepared(k) is not None for k in ops), "every op, RESHAPE included, is prepared at allocate time"
    assert g.shape_of(g.subgraph.outputs[0]) == (7, 12)
    np.testing.assert_array_equal(g.static_value(1), [7, 3, 4])  # SHAPE
    assert int(g.static_value(5)) == 7  # STRIDED_SLICE (shrunk to a scalar)
    np.testing.assert_array_equal(g.static_value(7), [7, -1])  # PACK


# ---------------------------------------------------------------------------------------------
# SQUEEZE, EXPAND_DIMS, SHAPE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_squeeze_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = [d if rng.random() < 0.5 else 1 for d in shapes(data.draw, 0, 6, 4)]
    ones = [k for k, d in enumerate(shape) if d == 1]
    dims = [k - len(shape) if rng.random() < 0.5 else k for k in ones if rng.random() < 0.6]
    if dims and rng.random() < 0.3:
        dims.append(dims[0])  # repeated entries are allowed
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SQUEEZE", [In(rand_array(rng, dtype, shape), quant=q)], [Out(dtype, quant=q)], squeeze_dims=dims
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_squeeze_rejects_non_unit_dim(litert):
    model, feeds = one_op("SQUEEZE", [In(np.zeros((1, 2, 1), np.int8))], [Out("int8")], squeeze_dims=[1])
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="squeeze_dims entry 1"):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_expand_dims_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    axis_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "EXPAND_DIMS",
        [In(rand_array(rng, dtype, shape), quant=q), In(np.array([axis], axis_dt), const=True)],
        [Out(dtype, quant=q)],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "in_q,out_q,axis",
    [
        ({"scale": 0.5, "zero_point": 1}, {"scale": 0.25, "zero_point": 1}, 0),  # scale differs
        ({"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 2}, 0),  # zero point differs
        ({"scale": 0.5, "zero_point": 1}, None, 0),  # output not quantized
        ({"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 1}, 3),  # axis out of range
    ],
)
def test_expand_dims_rejections(litert, in_q, out_q, axis):
    model, feeds = one_op(
        "EXPAND_DIMS",
        [In(np.zeros((2, 3), np.int8), quant=in_q), In(np.array([axis], np.int32), const=True)],
        [Out("int8", quant=out_q)],
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises((QuantParamError, PrepareError)):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("out_type", ["INT32", "INT64"])
@settings()
@given(data=st.data(), seed=seeds)
def test_shape_matches_litert(litert, dtype, out_type, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 5, 4, 0)
    model, feeds = one_op(
        "SHAPE",
        [In(rand_array(rng, dtype, shape), quant=quant_for(rng, dtype))],
        [Out(out_type.lower())],
        out_type=out_type,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_shape_rejects_float_out_type(litert):
    model, feeds = one_op("SHAPE", [In(np.zeros((2, 3), np.int8))], [Out("int32")], out_type="FLOAT32")
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="out_type"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# TRANSPOSE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_transpose_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 6, 4)
    perm = [int(p) for p in rng.permutation(len(shape))]
    perm = [p - len(shape) if rng.random() < 0.2 else p for p in perm]  # negative entries allowed
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "TRANSPOSE",
        [In(rand_array(rng, dtype, shape), quant=q), In(np.array(perm, np.int32), const=True)],
        [Out(dtype, quant=q)],
    )
    _ok(litert, model, feeds)


def test_transpose_rejects_repeated_perm_and_int64_perm():
    x = In(np.arange(6, dtype=np.int8).reshape(2, 3))
    model, feeds = one_op("TRANSPOSE", [x, In(np.array([0, 0], np.int32), const=True)], [Out("int8")])
    with pytest.raises(PrepareError, match="not a permutation"):  # LiteRT reads out of bounds here
        run_refquant(model, feeds)
    model, feeds = one_op("TRANSPOSE", [x, In(np.array([1, 0], np.int64), const=True)], [Out("int8")])
    with pytest.raises(UnsupportedOpError, match="perm type int64"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# PACK, UNPACK


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", NUM)
@settings()
@given(data=st.data(), seed=seeds)
def test_pack_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 4)
    n = data.draw(st.integers(1, 4))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    q = quant_for(rng, dtype)
    ins = [In(rand_array(rng, dtype, shape), const=bool(rng.random() < 0.3), quant=q) for _ in range(n)]
    model, feeds = one_op("PACK", ins, [Out(dtype, quant=q)], values_count=n, axis=axis)
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_pack_rejections(litert):
    q1, q2 = {"scale": 0.5, "zero_point": 0}, {"scale": 0.25, "zero_point": 0}
    a = np.zeros((2,), np.int8)
    model, feeds = one_op("PACK", [In(a, quant=q1), In(a, quant=q2)], [Out("int8", quant=q1)], values_count=2)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(QuantParamError, match="input 1"):
        run_refquant(model, feeds)
    b = np.zeros((2,), bool)
    model, feeds = one_op("PACK", [In(b), In(b)], [Out("bool")], values_count=2)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(UnsupportedOpError):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ("int8", "uint8", "int16", "float32", "int32", "bool"))
@settings()
@given(data=st.data(), seed=seeds)
def test_unpack_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 4)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    q = quant_for(rng, dtype)
    n = shape[axis]
    model, feeds = one_op(
        "UNPACK", [In(rand_array(rng, dtype, shape), quant=q)], [Out(dtype, quant=q)] * n, num=n, axis=axis
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_unpack_rejects_int64_and_wrong_num(litert):
    model, feeds = one_op("UNPACK", [In(np.zeros((2, 3), np.int64))], [Out("int64")] * 2, num=2)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(UnsupportedOpError):
        run_refquant(model, feeds)
    model, feeds = one_op("UNPACK", [In(np.zeros((2, 3), np.int8))], [Out("int8")] * 3, num=3)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="num = 3"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# SPLIT, SPLIT_V


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", NUM)
@settings()
@given(data=st.data(), seed=seeds)
def test_split_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = list(shapes(data.draw, 1, 4, 3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    num = data.draw(st.integers(1, 3))
    shape[axis] *= num
    axis_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SPLIT",
        [In(np.array(axis, axis_dt), const=True), In(rand_array(rng, dtype, shape), quant=q)],
        [Out(dtype, quant=q)] * num,
        num_splits=num,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", NUM)
@settings()
@given(data=st.data(), seed=seeds)
def test_split_v_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = list(shapes(data.draw, 1, 4, 3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    num = data.draw(st.integers(1, 4))
    sizes = [int(v) for v in rng.integers(0, 4, num)]
    shape[axis] = sum(sizes)
    if data.draw(st.booleans()):
        sizes[int(rng.integers(num))] = -1
    sizes_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SPLIT_V",
        [
            In(rand_array(rng, dtype, shape), quant=q),
            In(np.array(sizes, sizes_dt), const=True),
            In(np.array([axis], np.int32), const=True),
        ],
        [Out(dtype, quant=q)] * num,
        num_splits=num,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("sizes", [[5, -1, 3], [2, 2, 1], [-1, -1, 6], [4, -2, 4]])
def test_split_v_rejections(litert, sizes):
    model, feeds = one_op(
        "SPLIT_V",
        [
            In(np.arange(6, dtype=np.int8)),
            In(np.array(sizes, np.int32), const=True),
            In(np.array(0, np.int32), const=True),
        ],
        [Out("int8")] * 3,
        num_splits=3,
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="size_splits"):
        run_refquant(model, feeds)


@pytest.mark.oracle
def test_split_rejects_uneven_split(litert):
    model, feeds = one_op(
        "SPLIT", [In(np.array(0, np.int32), const=True), In(np.zeros((3, 2), np.int8))], [Out("int8")] * 2, num_splits=2
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="does not split evenly"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# CONCATENATION


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_concatenation_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = list(shapes(data.draw, 1, 4, 4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.integers(1, 4))
    out_q = quant_for(rng, dtype)
    ins = []
    for _ in range(n):
        s = list(shape)
        s[axis] = int(rng.integers(0, 4))
        if dtype == "int8":
            q = out_q  # int8 requires identical parameters
        elif dtype == "int16":
            q = quant_for(rng, dtype)  # scales are not compared (raw copy); zero points 0
        elif dtype == "uint8":
            q = out_q if rng.random() < 0.3 else quant_for(rng, dtype)  # rescaled in float
        else:
            q = None
        ins.append(In(rand_array(rng, dtype, s), const=bool(rng.random() < 0.2), quant=q))
    model, feeds = one_op("CONCATENATION", ins, [Out(dtype, quant=out_q)], axis=axis)
    _ok(litert, model, feeds)


@pytest.mark.oracle
@settings()
@given(seed=seeds)
def test_concatenation_uint8_rescale_extremes_match_litert(litert, seed):
    rng = np.random.default_rng(seed)
    scales = [float(10 ** rng.uniform(-6, 3)) for _ in range(3)]
    zps = [int(v) for v in rng.integers(0, 256, 3)]
    ins = [
        In(rand_array(rng, "uint8", (2, 5)), quant={"scale": s, "zero_point": z}) for s, z in zip(scales[:2], zps[:2])
    ]
    model, feeds = one_op(
        "CONCATENATION", ins, [Out("uint8", quant={"scale": scales[2], "zero_point": zps[2]})], axis=1
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "dtype,q0,q1,act,err",
    [
        ("int8", {"scale": 0.5, "zero_point": 1}, {"scale": 0.25, "zero_point": 1}, "NONE", QuantParamError),
        ("int8", {"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 2}, "NONE", QuantParamError),
        ("int16", {"scale": 0.5, "zero_point": 0}, {"scale": 0.5, "zero_point": 3}, "NONE", QuantParamError),
        ("int8", {"scale": 0.5, "zero_point": 1}, {"scale": 0.5, "zero_point": 1}, "RELU", PrepareError),
        ("float32", None, None, "RELU6", PrepareError),
    ],
)
def test_concatenation_rejections(litert, dtype, q0, q1, act, err):
    a = np.zeros((2, 3), dtype)
    model, feeds = one_op(
        "CONCATENATION",
        [In(a, quant=q0), In(a, quant=q1)],
        [Out(dtype, quant=q0)],
        axis=0,
        fused_activation_function=act,
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(err):
        run_refquant(model, feeds)


@pytest.mark.oracle
def test_concatenation_of_constant_scalars(litert):
    x = tensor((2,), "int32", name="x")
    c = [const(np.array(v, np.int32), name=f"c{k}") for k, v in enumerate((3, -1, 7))]
    cat = tensor((3,), "int32", name="cat")
    y = tensor((5,), "int32", name="y")
    chain = [
        operator("CONCATENATION", c, [cat], axis=0),  # constant scalars -> [3]
        operator("CONCATENATION", [x, cat], [y], axis=0),
    ]
    _ok(litert, model_bytes(chain), [np.array([1, 2], np.int32)])
    model, feeds = one_op(
        "CONCATENATION", [In(np.array(1, np.int32)), In(np.array(2, np.int32))], [Out("int32")], axis=0
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="scalar"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# TILE, BROADCAST_TO, FILL, ZEROS_LIKE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_tile_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 4, 3)
    mult = [int(v) for v in rng.integers(0 if rng.random() < 0.1 else 1, 4, len(shape))]
    m_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "TILE",
        [In(rand_array(rng, dtype, shape), quant=q), In(np.array(mult, m_dt), const=True)],
        [Out(dtype, quant=q)],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_tile_rejects_negative_multiple(litert):
    model, feeds = one_op(
        "TILE", [In(np.zeros((2, 3), np.int8)), In(np.array([2, -1], np.int32), const=True)], [Out("int8")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="non-negative"):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_broadcast_to_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    target = list(shapes(data.draw, 0, 5, 4, 0))
    k = data.draw(st.integers(0, len(target)))
    in_shape = [1 if rng.random() < 0.4 else d for d in target[len(target) - k :]]
    s_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "BROADCAST_TO",
        [In(rand_array(rng, dtype, in_shape), quant=q), In(np.array(target, s_dt), const=True)],
        [Out(dtype, quant=q)],
        version=2,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_broadcast_to_rejects_incompatible_shape(litert):
    model, feeds = one_op(
        "BROADCAST_TO",
        [In(np.zeros((3,), np.int8)), In(np.array([2, 4], np.int32), const=True)],
        [Out("int8")],
        version=2,
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match="does not broadcast"):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_fill_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    dims = list(shapes(data.draw, 0, 4, 4, 0))
    d_dt = data.draw(st.sampled_from(["int32", "int64"]))
    q = quant_for(rng, dtype)
    value = In(rand_array(rng, dtype, ()), quant=q, const=data.draw(st.booleans()))
    model, feeds = one_op("FILL", [In(np.array(dims, d_dt), const=True), value], [Out(dtype, quant=q)])
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_fill_rejections(litert):
    v = In(np.array(3, np.int8), quant={"scale": 0.5, "zero_point": 1})
    model, feeds = one_op(
        "FILL", [In(np.array([2, -3], np.int32), const=True), v], [Out("int8", quant={"scale": 0.5, "zero_point": 1})]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match=">= 0"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "FILL", [In(np.array([2], np.int32), const=True), v], [Out("int8", quant={"scale": 0.5, "zero_point": 2})]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(QuantParamError):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
@settings()
@given(data=st.data(), seed=seeds)
def test_zeros_like_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    model, feeds = one_op(
        "ZEROS_LIKE",
        [In(rand_array(rng, dtype, shapes(data.draw, 0, 4, 4, 0)))],
        [Out(dtype)],
        options_type="ZerosLikeOptions",
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
def test_zeros_like_rejects_int8(litert):
    model, feeds = one_op("ZEROS_LIKE", [In(np.zeros(3, np.int8))], [Out("int8")], options_type="ZerosLikeOptions")
    assert check_against_litert(litert, model, feeds) == "rejected"


# ---------------------------------------------------------------------------------------------
# CAST


CAST_TYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "bool", "uint32", "uint16", "float16")


def _cast_values(rng: np.random.Generator, dtype: str, shape) -> np.ndarray:
    if dtype in ("float32", "float16"):
        special = np.array(
            [0.0, -0.0, 0.5, -0.5, 2.5, -2.5, 127.9, -128.9, 255.5, 3e9, -3e9, 1e20, np.inf, -np.inf, np.nan]
        )
        v = np.where(
            rng.random(shape) < 0.3,
            rng.choice(special, size=shape),
            rng.standard_normal(shape) * 10 ** rng.uniform(0, 6),
        )
        with np.errstate(over="ignore"):  # 1e20 -> inf in float16, on purpose
            return v.astype(dtype)
    if dtype in ("uint32", "uint16"):
        info = np.iinfo(np.dtype(dtype))
        return rng.integers(0, int(info.max), size=shape, endpoint=True).astype(dtype)
    return rand_array(rng, dtype, shape)


@pytest.mark.oracle
@pytest.mark.parametrize("src", CAST_TYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_cast_matches_litert(litert, src, data, seed):
    rng = np.random.default_rng(seed)
    dst = data.draw(st.sampled_from(CAST_TYPES))
    x = _cast_values(rng, src, shapes(data.draw, 0, 3, 5))
    model, feeds = one_op("CAST", [In(x)], [Out(dst)])
    _ok(litert, model, feeds)


def test_cast_float_to_int_saturates_and_maps_nan_to_max():
    x = np.array([1e10, -1e10, np.nan, np.inf, -np.inf, 2.9, -2.9], np.float32)
    model, feeds = one_op("CAST", [In(x)], [Out("int8")])
    np.testing.assert_array_equal(run_refquant(model, feeds).values[1], [127, -128, 127, 127, -128, 2, -2])


# ---------------------------------------------------------------------------------------------
# SPACE_TO_DEPTH, DEPTH_TO_SPACE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ("int8", "uint8", "float32", "int32", "int64"))
@pytest.mark.parametrize("opcode", ["SPACE_TO_DEPTH", "DEPTH_TO_SPACE"])
@settings()
@given(data=st.data(), seed=seeds)
def test_space_depth_matches_litert(litert, opcode, dtype, data, seed):
    rng = np.random.default_rng(seed)
    bs = data.draw(st.integers(1, 3))
    b, h, w, c = (data.draw(st.integers(1, 3)) for _ in range(4))
    shape = (b, h * bs, w * bs, c) if opcode == "SPACE_TO_DEPTH" else (b, h, w, c * bs * bs)
    q = quant_for(rng, dtype)
    model, feeds = one_op(opcode, [In(rand_array(rng, dtype, shape), quant=q)], [Out(dtype, quant=q)], block_size=bs)
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "opcode,shape,dtype,bs",
    [
        ("SPACE_TO_DEPTH", (1, 3, 4, 1), "int8", 2),
        ("SPACE_TO_DEPTH", (1, 2, 2, 1), "int16", 2),
        ("DEPTH_TO_SPACE", (1, 2, 2, 3), "int8", 2),
        ("DEPTH_TO_SPACE", (1, 2, 2, 4), "int8", 0),
    ],
)
def test_space_depth_rejections(litert, opcode, shape, dtype, bs):
    model, feeds = one_op(opcode, [In(np.zeros(shape, dtype))], [Out(dtype)], block_size=bs)
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(RefquantError):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# Run-time shapes: values known only when the graph runs


@pytest.mark.oracle
def test_runtime_prepared_ops_follow_their_inputs(litert):
    """TILE multiples, EXPAND_DIMS axis and a RESHAPE target as graph inputs: prepared at each run."""
    x = tensor((2, 3), "int8", scale=0.5, zero_point=1, name="x")
    m = tensor((2,), "int32", name="m")
    t = tensor((1,), "int8", scale=0.5, zero_point=1, name="t")
    r = tensor((1,), "int32", name="r")
    y = tensor((1,), "int8", scale=0.5, zero_point=1, name="y")
    model = model_bytes([operator("TILE", [x, m], [t]), operator("RESHAPE", [t, r], [y])])
    rng = np.random.default_rng(3)
    for mult in ([1, 2], [3, 1]):
        feeds = [rand_array(rng, "int8", (2, 3)), np.array(mult, np.int32), np.array([-1], np.int32)]
        _ok(litert, model, feeds)
    it = refquant.Interpreter(model_content=model)
    it.allocate_tensors()
    g = it.engine.graph
    assert all(g.prepared(k) is None for k in range(len(g.subgraph.operators)))


# ---------------------------------------------------------------------------------------------
# Element tracing of data movement


def _trace_cases():
    rng = np.random.default_rng(7)
    x = rand_array(rng, "int8", (2, 3, 4))
    q = {"scale": 0.5, "zero_point": 1}
    yield "RESHAPE", [In(x, quant=q), In(np.array([4, -1], np.int32), const=True)], [Out("int8", quant=q)], {}
    yield "TRANSPOSE", [In(x), In(np.array([2, 0, 1], np.int32), const=True)], [Out("int8")], {}
    yield "PACK", [In(x), In(x + 1)], [Out("int8")], {"values_count": 2, "axis": 1}
    yield "UNPACK", [In(x)], [Out("int8")] * 3, {"num": 3, "axis": 1}
    yield "SPLIT", [In(np.array(2, np.int32), const=True), In(x)], [Out("int8")] * 2, {"num_splits": 2}
    yield "TILE", [In(x), In(np.array([1, 2, 2], np.int32), const=True)], [Out("int8")], {}
    yield "BROADCAST_TO", [In(x[:1]), In(np.array([3, 2, 3, 4], np.int32), const=True)], [Out("int8")], {"version": 2}
    yield (
        "STRIDED_SLICE",
        [In(x)] + [In(np.array(v, np.int32), const=True) for v in ([1, 2], [0, 0], [-1, -1])],
        [Out("int8")],
        {"end_mask": 1},
    )
    yield "GATHER", [In(x), In(np.array([[2, 0], [1, 1]], np.int32))], [Out("int8")], {"axis": 2}
    yield (
        "PAD",
        [In(x, quant=q), In(np.array([[1, 0], [0, 2], [1, 1]], np.int32), const=True)],
        [Out("int8", quant=q)],
        {},
    )
    yield (
        "MIRROR_PAD",
        [In(x), In(np.array([[1, 1], [2, 0], [0, 1]], np.int32), const=True)],
        [Out("int8")],
        {
            "options_type": "MirrorPadOptions",
            "mode": "REFLECT",
        },
    )
    u = rand_array(rng, "uint8", (2, 3))
    yield (
        "CONCATENATION",
        [
            In(u, quant={"scale": 0.3, "zero_point": 7}),
            In(u, quant={"scale": 0.5, "zero_point": 1}),
        ],
        [Out("uint8", quant={"scale": 0.5, "zero_point": 1})],
        {"axis": 1},
    )
    yield "CAST", [In(np.array([[1e10, -2.7], [np.nan, 3.5]], np.float32))], [Out("int16")], {}


@pytest.mark.parametrize("case", list(_trace_cases()), ids=lambda c: c[0])
def test_movement_trace_names_the_source_element(case):
    opcode, ins, outs, opts = case
    model, feeds = one_op(opcode, ins, outs, **opts)
    tr = run_refquant(model, feeds)
    data = tr.op_data[0]
    op = tr.model.subgraphs[0].operators[0]
    arrays = [tr.values[i] if i >= 0 else None for i in op.inputs]
    for j, o in enumerate(op.outputs):
        out = tr.values[o]
        for el in list(np.ndindex(out.shape))[:: max(1, out.size // 40)]:
            steps = data.trace(arrays, j, el)
            assert steps[-1].value == out[el].item() or (np.isnan(steps[-1].value) and np.isnan(out[el]))
            if steps[0].name == "source" and opcode not in ("CONCATENATION",):
                k, idx = steps[0].value
                assert arrays[k][idx] == out[el]


@pytest.mark.oracle
@pytest.mark.parametrize("version,status", [(1, "ok"), (2, "ok"), (3, "rejected")])
def test_tile_op_version_outside_builtin_ref_registration(litert, version, status):
    """The converter writes int8 TILE as version 3 (sequence sweep: ``tf.tile`` in an int8 PTQ model); LiteRT 2.3.0's
    reference resolver registers TILE versions 1..2 and rejects the model, so refquant must reject it too."""
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    q = {"scale": [0.5], "zero_point": [-3]}
    model, feeds = one_op(
        "TILE",
        [In(x, quant=q), In(np.array([2, 1], np.int32), const=True)],
        [Out("int8", (4, 3), quant=q)],
        version=version,
    )
    assert check_against_litert(litert, model, feeds) == status
    if status != "ok":
        with pytest.raises(UnsupportedOpError, match="versions 1..2"):
            run_refquant(model, feeds)
