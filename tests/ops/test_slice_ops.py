"""STRIDED_SLICE, SLICE and GATHER against LiteRT BUILTIN_REF (bit-exact), plus rejections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.errors import EvalError, PrepareError, RefquantError, UnsupportedOpError
from tests.opcheck import check_against_litert, run_refquant
from tests.ops.movement_helpers import ALL_DTYPES, In, Out, one_op, quant_for, rand_array, seeds, shapes


def _ok(litert, model: bytes, feeds: list[np.ndarray]) -> None:
    status = check_against_litert(litert, model, feeds)
    assert status == "ok", status


# ---------------------------------------------------------------------------------------------
# STRIDED_SLICE


def _strided_spec(draw, shape: tuple[int, ...]) -> tuple[list[int], list[int], list[int], dict]:
    """A NumPy-like index expression (slices, ints, new axes, at most one ellipsis) encoded as LiteRT masks."""
    rank = len(shape)
    ellipsis = rank > 0 and draw(st.booleans())
    # LiteRT's ellipsis always spans at least one dimension (an empty one makes it read an undefined dim).
    n_consume = draw(st.integers(0, rank - 1 if ellipsis else rank))
    items = [draw(st.sampled_from(["slice", "slice", "int"])) for _ in range(n_consume)]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), "new")
    if ellipsis:
        items.insert(draw(st.integers(0, len(items))), "...")
    # Which input dimension each consuming item indexes (NumPy semantics).
    dims: list[int | None] = []
    if "..." in items:
        e = items.index("...")
        before = sum(1 for it in items[:e] if it in ("slice", "int"))
        after = sum(1 for it in items[e + 1 :] if it in ("slice", "int"))
        k_before, k_after = 0, rank - after
        for pos, it in enumerate(items):
            if it in ("slice", "int"):
                if pos < e:
                    dims.append(k_before)
                    k_before += 1
                else:
                    dims.append(k_after)
                    k_after += 1
            else:
                dims.append(None)
        assert before + after <= rank
    else:
        k = 0
        for it in items:
            if it in ("slice", "int"):
                dims.append(k)
                k += 1
            else:
                dims.append(None)
    begin, end, strides = [], [], []
    masks = {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0, "shrink_axis_mask": 0}
    for pos, (it, d) in enumerate(zip(items, dims)):
        bit = 1 << pos
        size = shape[d] if d is not None else 1
        if it == "int" and size == 0:
            it = "slice"
        if it == "slice":
            begin.append(draw(st.integers(-size - 2, size + 2)))
            end.append(draw(st.integers(-size - 2, size + 2)))
            strides.append(draw(st.sampled_from([1, 1, 2, 3, -1, -1, -2, -3])))
            if draw(st.integers(0, 3)) == 0:
                masks["begin_mask"] |= bit
            if draw(st.integers(0, 3)) == 0:
                masks["end_mask"] |= bit
        elif it == "int":
            b = draw(st.integers(-size, size - 1))
            begin.append(b)
            end.append(b + 1)
            strides.append(1)
            masks["shrink_axis_mask"] |= bit
        else:
            begin.append(0)
            end.append(draw(st.integers(-2, 2)))
            strides.append(1)
            masks["ellipsis_mask" if it == "..." else "new_axis_mask"] |= bit
    return begin, end, strides, masks


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_strided_slice_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 5, 5, 0)
    begin, end, strides, masks = _strided_spec(data.draw, shape)
    q = quant_for(rng, dtype)
    x = rand_array(rng, dtype, shape)

    def build(const_input: bool):
        return one_op(
            "STRIDED_SLICE",
            [
                In(x, quant=q, const=const_input),
                In(np.array(begin, np.int32), const=True),
                In(np.array(end, np.int32), const=True),
                In(np.array(strides, np.int32), const=True),
            ],
            [Out(dtype, quant=q)],
            **masks,
        )

    model, feeds = build(data.draw(st.integers(0, 5)) == 0)  # a constant input: LiteRT slices at Prepare
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ["int8", "float32", "int32"])
@settings()
@given(data=st.data(), seed=seeds)
def test_strided_slice_offset_matches_litert(litert, dtype, data, seed):
    """``offset``: end holds sizes relative to begin; only slices inside the input are well defined."""
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 5)
    n = len(shape)  # fewer indices make LiteRT read end[] out of bounds (see the rejection test)
    begin, end, strides, shrink = [], [], [], 0
    for k in range(n):
        d = shape[k]
        b = data.draw(st.integers(0, d - 1))
        if data.draw(st.integers(0, 3)) == 0:
            shrink |= 1 << k
            begin.append(b)
            end.append(1)
            strides.append(1)
            continue
        begin.append(b - d if data.draw(st.booleans()) else b)  # negative begins wrap
        end.append(data.draw(st.integers(0, d - b)))
        strides.append(data.draw(st.integers(1, 3)))
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "STRIDED_SLICE",
        [
            In(rand_array(rng, dtype, shape), quant=q),
            In(np.array(begin, np.int32), const=True),
            In(np.array(end, np.int32), const=True),
            In(np.array(strides, np.int32), const=True),
        ],
        [Out(dtype, quant=q)],
        offset=True,
        shrink_axis_mask=shrink,
    )
    _ok(litert, model, feeds)


@pytest.mark.parametrize(
    "begin,end,stride,opts,match",
    [
        ([3], [4], [-1], {"shrink_axis_mask": 1}, "shrink_axis on effective axis 0 selects 0"),  # garbage
        ([7], [8], [1], {"shrink_axis_mask": 1}, "shrink_axis"),  # index past the end
        ([5], [6], [1], {"shrink_axis_mask": 1}, "shrink_axis"),
        ([1], [9], [1], {"offset": True}, "selects"),  # offset slice past the end
        ([], [], [], {"offset": True}, "offset=True with 0 indices"),  # LiteRT segfaults
        ([1], [2], [0], {}, "non-zero"),
        ([1], [2], [-(2**31)], {}, "INT32_MIN"),
    ],
)
def test_strided_slice_rejections(begin, end, stride, opts, match):
    model, feeds = one_op(
        "STRIDED_SLICE",
        [
            In(np.arange(5, dtype=np.int8)),
            In(np.array(begin, np.int32), const=True),
            In(np.array(end, np.int32), const=True),
            In(np.array(stride, np.int32), const=True),
        ],
        [Out("int8")],
        **opts,
    )
    with pytest.raises(PrepareError, match=match):
        run_refquant(model, feeds)


@pytest.mark.oracle
def test_strided_slice_clamps_a_shrunk_negative_index(litert):
    """begin -7 on a size-5 axis wraps to -2 and clamps to 0: LiteRT returns x[0] (TensorFlow would fail)."""
    model, feeds = one_op(
        "STRIDED_SLICE",
        [In(np.arange(10, 15, dtype=np.int8))] + [In(np.array([v], np.int32), const=True) for v in (-7, 4, 1)],
        [Out("int8")],
        shrink_axis_mask=1,
    )
    _ok(litert, model, feeds)
    assert run_refquant(model, feeds).values[4] == 10


@pytest.mark.oracle
def test_strided_slice_zero_stride_rejected_by_both(litert):
    model, feeds = one_op(
        "STRIDED_SLICE",
        [In(np.arange(5, dtype=np.int8))] + [In(np.array([v], np.int32), const=True) for v in (1, 3, 0)],
        [Out("int8")],
    )
    assert check_against_litert(litert, model, feeds) == "rejected"


def test_strided_slice_rejects_ellipsis_on_a_scalar():
    """LiteRT's ellipsis always covers one effective dim; on a 0-D input it reads an undefined dimension."""
    model, feeds = one_op(
        "STRIDED_SLICE",
        [In(np.array(3, np.int8))]
        + [In(np.array([0, 0], np.int32), const=True)] * 2
        + [In(np.array([1, 1], np.int32), const=True)],
        [Out("int8")],
        ellipsis_mask=1,
        new_axis_mask=2,
    )
    with pytest.raises(PrepareError, match="consistently"):
        run_refquant(model, feeds)


def test_strided_slice_rejects_int64_indices_and_offset_with_new_axis():
    x = In(np.arange(5, dtype=np.int8))
    model, feeds = one_op(
        "STRIDED_SLICE", [x] + [In(np.array([v], np.int64), const=True) for v in (1, 3, 1)], [Out("int8")]
    )
    with pytest.raises(UnsupportedOpError, match="int64"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "STRIDED_SLICE",
        [x] + [In(np.array([v], np.int32), const=True) for v in (1, 3, 1)],
        [Out("int8")],
        offset=True,
        new_axis_mask=1,
    )
    with pytest.raises(UnsupportedOpError, match="offset"):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# SLICE


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_slice_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 0, 6, 4, 0)
    begin, size = [], []
    for d in shape:
        b = data.draw(st.integers(0, d))
        begin.append(b)
        size.append(-1 if data.draw(st.integers(0, 3)) == 0 else data.draw(st.integers(0, d - b)))
    out_shape = tuple(d - b if s == -1 else s for d, b, s in zip(shape, begin, size))
    idx_dt = data.draw(st.sampled_from(["int32", "int64"]))
    sig = tuple(-1 if data.draw(st.booleans()) else d for d in out_shape) if out_shape else None
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "SLICE",
        [
            In(rand_array(rng, dtype, shape), quant=q),
            In(np.array(begin, idx_dt), const=True),
            In(np.array(size, idx_dt), const=True),
        ],
        [Out(dtype, out_shape, q, signature=sig)],
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize(
    "begin,size,declared,sig",
    [
        ([1], [3], (2,), None),  # declared static shape differs from the slice
        ([-1], [1], (1,), (-1,)),  # negative begin
        ([3], [3], (3,), (-1,)),  # past the end
        ([1], [-2], (2,), (-1,)),  # size below -1
    ],
)
def test_slice_rejections(litert, begin, size, declared, sig):
    model, feeds = one_op(
        "SLICE",
        [
            In(np.arange(5, dtype=np.int8)),
            In(np.array(begin, np.int32), const=True),
            In(np.array(size, np.int32), const=True),
        ],
        [Out("int8", declared, signature=sig)],
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError):
        run_refquant(model, feeds)


# ---------------------------------------------------------------------------------------------
# GATHER


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings()
@given(data=st.data(), seed=seeds)
def test_gather_matches_litert(litert, dtype, data, seed):
    rng = np.random.default_rng(seed)
    shape = shapes(data.draw, 1, 4, 4)
    rank = len(shape)
    axis = data.draw(st.integers(0, rank - 1))
    bd = data.draw(st.integers(0, axis))
    idx_shape = tuple(shape[:bd]) + tuple(shapes(data.draw, 0, 2, 3))
    idx_dt = data.draw(st.sampled_from(["int16", "int32", "int64"]))
    idx = rng.integers(0, shape[axis], size=idx_shape).astype(idx_dt)
    axis_opt = axis - rank if data.draw(st.booleans()) else axis
    bd_opt = bd - len(idx_shape) if bd and data.draw(st.booleans()) else bd
    q = quant_for(rng, dtype)
    model, feeds = one_op(
        "GATHER",
        [In(rand_array(rng, dtype, shape), quant=q), In(idx, const=data.draw(st.booleans()))],
        [Out(dtype, quant=q)],
        axis=axis_opt,
        batch_dims=bd_opt,
    )
    _ok(litert, model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("bad", [5, -1, 100])
def test_gather_out_of_range_index_fails_at_invoke(litert, bad):
    model, feeds = one_op(
        "GATHER", [In(np.arange(5, dtype=np.int8)), In(np.array([1, bad, 2], np.int32))], [Out("int8")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(EvalError, match=f"gather index {bad}"):
        run_refquant(model, feeds)
    model, feeds = one_op(
        "GATHER", [In(np.arange(5, dtype=np.int8)), In(np.array([1, bad], np.int32), const=True)], [Out("int8")]
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(PrepareError, match=f"gather index {bad}"):
        run_refquant(model, feeds)


@pytest.mark.oracle
@pytest.mark.parametrize("axis,batch_dims", [(2, 0), (0, 1), (1, 2)])
def test_gather_rejects_bad_axis_or_batch_dims(litert, axis, batch_dims):
    model, feeds = one_op(
        "GATHER",
        [In(np.zeros((2, 3), np.int8)), In(np.zeros((2, 2), np.int32), const=True)],
        [Out("int8")],
        axis=axis,
        batch_dims=batch_dims,
    )
    assert check_against_litert(litert, model, feeds) == "rejected"
    with pytest.raises(RefquantError):
        run_refquant(model, feeds)
