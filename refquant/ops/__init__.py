"""The op registry: one line per supported operator.

Adding an op touches its module, one line here, its version bounds (``versions.py``), its strategies, its
tests and the README table; docs/adding_an_op.md lists the places, and ``tests/ops/test_registry.py`` fails
for a registered op that misses one.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import OpContext, OpData, OpDef

__all__ = ["REGISTRY", "register", "supported_ops"]

REGISTRY: dict[str, OpDef] = {}

#: dtype columns of the README's support table.
Q8 = ("int8", "uint8", "int16", "float32")


def register(
    opcode: str,
    prepare: Callable[[OpContext], OpData],
    dtypes: tuple[str, ...] = Q8,
    *,
    foldable: bool = False,
    note: str = "",
) -> None:
    """Register ``prepare`` as the implementation of ``opcode``."""
    if opcode in REGISTRY:
        raise ValueError(f"{opcode} registered twice")
    REGISTRY[opcode] = OpDef(opcode, prepare, dtypes, foldable, note)


def supported_ops() -> list[str]:
    """Sorted names of every supported operator."""
    return sorted(REGISTRY)


# ---- registrations: one line per op, grouped by family (each family's module owns its section) ----
# Form of a section:  from .conv import conv2d  # noqa: E402
#                     register("CONV_2D", conv2d.prepare_conv2d, ("int8", "uint8", "int16", "float32"))
# isort: off
# [conv]
from .conv import conv2d, depthwise, transpose_conv  # noqa: E402

_HYBRID = "float32 also with an int8 filter (hybrid / dynamic-range quantization)"
register("CONV_2D", conv2d.prepare_conv2d, ("int8", "uint8", "int16", "float32"), note=_HYBRID)
register("DEPTHWISE_CONV_2D", depthwise.prepare_depthwise_conv2d, ("int8", "uint8", "int16", "float32"), note=_HYBRID)
register("TRANSPOSE_CONV", transpose_conv.prepare_transpose_conv, ("int8", "uint8", "int16", "float32"))
# [fully_connected]
from . import fully_connected  # noqa: E402

register("FULLY_CONNECTED", fully_connected.prepare_fully_connected, ("int8", "uint8", "int16", "float32"))
# [batch_matmul]
from . import batch_matmul  # noqa: E402

register("BATCH_MATMUL", batch_matmul.prepare_batch_matmul, ("int8", "int16", "float32", "int32"))
# [elementwise]
from . import elementwise  # noqa: E402

register("ADD", elementwise.prepare_add, ("int8", "uint8", "int16", "int32", "int64", "float32"))
register("SUB", elementwise.prepare_sub, ("int8", "uint8", "int16", "int32", "int64", "float32"))
register("MUL", elementwise.prepare_mul, ("int8", "uint8", "int16", "int32", "int64", "float32"))
register("DIV", elementwise.prepare_div, ("int8", "uint8", "int16", "int32", "float32"))
register("SQUARED_DIFFERENCE", elementwise.prepare_squared_difference, ("int8", "int32", "float32"))
register("MAXIMUM", elementwise.prepare_maximum, ("int8", "uint8", "int16", "int32", "int64", "float32"))
register("MINIMUM", elementwise.prepare_minimum, ("int8", "uint8", "int16", "int32", "int64", "float32"))
# [activations]
from . import activations  # noqa: E402

register("RELU", activations.prepare_relu, ("int8", "uint8", "int16", "float32"))
register("RELU6", activations.prepare_relu6, ("int8", "uint8", "int16", "float32"))
register("RELU_N1_TO_1", activations.prepare_relu_n1_to_1, ("int8", "uint8", "float32"))
register("RELU_0_TO_1", activations.prepare_relu_0_to_1, ("int8", "uint8", "float32"))
register("LEAKY_RELU", activations.prepare_leaky_relu, ("int8", "uint8", "int16", "float32"))
register("PRELU", activations.prepare_prelu, ("int8", "uint8", "int16", "float32"))
register("LOGISTIC", activations.prepare_logistic, ("int8", "uint8", "int16", "float32"))
register("TANH", activations.prepare_tanh, ("int8", "uint8", "int16", "float32"))
register("HARD_SWISH", activations.prepare_hard_swish, ("int8", "uint8", "float32"))
register("GELU", activations.prepare_gelu, ("int8", "uint8", "int16", "float32"))
register("EXP", activations.prepare_exp, ("int8", "int16", "float32"))
register("LOG", activations.prepare_log, ("int8", "int16", "float32"))
register("SQRT", activations.prepare_sqrt, ("int8", "int16", "float32"))
register("RSQRT", activations.prepare_rsqrt, ("int8", "int16", "float32"))
register("ABS", activations.prepare_abs, ("int8", "int16", "int32", "float32"))
register("NEG", activations.prepare_neg, ("int8", "int16", "int32", "int64", "float32"))
register("SQUARE", activations.prepare_square, ("float32",))
# [pooling_reduce]
from . import pooling  # noqa: E402
from . import arg_min_max, reduce  # noqa: E402

register("AVERAGE_POOL_2D", pooling.prepare_average_pool_2d, ("int8", "uint8", "int16", "float32"))
register("MAX_POOL_2D", pooling.prepare_max_pool_2d, ("int8", "uint8", "int16", "float32"))
register("L2_POOL_2D", pooling.prepare_l2_pool_2d, ("float32",))
register("MEAN", reduce.prepare_mean, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("SUM", reduce.prepare_sum, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("REDUCE_MAX", reduce.prepare_reduce_max, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("REDUCE_MIN", reduce.prepare_reduce_min, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("REDUCE_PROD", reduce.prepare_reduce_prod, ("int8", "int16", "float32", "int32", "int64"))
register("ARG_MAX", arg_min_max.prepare_arg_max, ("int8", "uint8", "float32", "int32", "bool"))
register("ARG_MIN", arg_min_max.prepare_arg_min, ("int8", "uint8", "float32", "int32", "bool"))
# [softmax]
from . import softmax  # noqa: E402

register("SOFTMAX", softmax.prepare_softmax, ("int8", "uint8", "int16", "float32"))
register("LOG_SOFTMAX", softmax.prepare_log_softmax, ("int8", "uint8", "float32"))
# [shape_ops]
from . import shape_ops  # noqa: E402
from . import slice_ops  # noqa: E402
from . import pad_ops  # noqa: E402
from . import resize  # noqa: E402
from . import space_batch  # noqa: E402
from . import select_compare  # noqa: E402

register(
    "RESHAPE", shape_ops.prepare_reshape, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True
)
register(
    "SQUEEZE", shape_ops.prepare_squeeze, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True
)
register(
    "EXPAND_DIMS",
    shape_ops.prepare_expand_dims,
    ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"),
    foldable=True,
)
register(
    "SHAPE", shape_ops.prepare_shape, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True
)
register("TRANSPOSE", shape_ops.prepare_transpose, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("PACK", shape_ops.prepare_pack, ("int8", "uint8", "int16", "float32", "int32", "int64"), foldable=True)
register("UNPACK", shape_ops.prepare_unpack, ("int8", "uint8", "int16", "float32", "int32", "bool"), foldable=True)
register("SPLIT", shape_ops.prepare_split, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("SPLIT_V", shape_ops.prepare_split_v, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register(
    "CONCATENATION",
    shape_ops.prepare_concatenation,
    ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"),
    foldable=True,
)
register("TILE", shape_ops.prepare_tile, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register(
    "BROADCAST_TO", shape_ops.prepare_broadcast_to, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool")
)
register("FILL", shape_ops.prepare_fill, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("ZEROS_LIKE", shape_ops.prepare_zeros_like, ("float32", "int32", "int64"))
register("CAST", shape_ops.prepare_cast, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True)
register("SPACE_TO_DEPTH", shape_ops.prepare_space_to_depth, ("int8", "uint8", "float32", "int32", "int64"))
register("DEPTH_TO_SPACE", shape_ops.prepare_depth_to_space, ("int8", "uint8", "float32", "int32", "int64"))
register(
    "STRIDED_SLICE",
    slice_ops.prepare_strided_slice,
    ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"),
    foldable=True,
)
register(
    "SLICE", slice_ops.prepare_slice, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True
)
register(
    "GATHER", slice_ops.prepare_gather, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"), foldable=True
)
register("PAD", pad_ops.prepare_pad, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("PADV2", pad_ops.prepare_pad, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("MIRROR_PAD", pad_ops.prepare_mirror_pad, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register(
    "SPACE_TO_BATCH_ND",
    space_batch.prepare_space_to_batch_nd,
    ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"),
)
register(
    "BATCH_TO_SPACE_ND",
    space_batch.prepare_batch_to_space_nd,
    ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"),
)
register("RESIZE_BILINEAR", resize.prepare_resize_bilinear, ("int8", "uint8", "int16", "float32"))
register(
    "RESIZE_NEAREST_NEIGHBOR", resize.prepare_resize_nearest_neighbor, ("int8", "uint8", "int16", "float32", "int32")
)
register("SELECT", select_compare.prepare_select, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("SELECT_V2", select_compare.prepare_select_v2, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("EQUAL", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register(
    "NOT_EQUAL", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool")
)
register("LESS", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("LESS_EQUAL", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("GREATER", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64"))
register("GREATER_EQUAL", select_compare.prepare_comparison, ("int8", "uint8", "int16", "float32", "int32", "int64"))
# [quantize]
from . import quantize  # noqa: E402

register("QUANTIZE", quantize.prepare_quantize, ("int8", "uint8", "int16", "float32", "int32"))
register("DEQUANTIZE", quantize.prepare_dequantize, ("int8", "uint8", "int16", "float32"), foldable=True)
# [control_flow]
from . import control_flow  # noqa: E402

register("IF", control_flow.prepare_if, ("int8", "int16", "uint8", "float32", "int32", "bool"))
register("WHILE", control_flow.prepare_while, ("int8", "int16", "uint8", "float32", "int32", "bool"))
# [l2norm]
from . import l2norm  # noqa: E402

register("L2_NORMALIZATION", l2norm.prepare_l2_normalization, ("int8", "uint8", "float32"))
# [gather_reverse] (in slice_ops)
register("GATHER_ND", slice_ops.prepare_gather_nd, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
register("REVERSE_V2", slice_ops.prepare_reverse_v2, ("int8", "uint8", "int16", "float32", "int32", "int64", "bool"))
# [math_ops]
from . import math_ops  # noqa: E402

_RAW = "int8/int16: raw integer values"
register("FLOOR", math_ops.prepare_floor, ("float32",))
register("SIN", math_ops.prepare_sin, ("float32",))
register("COS", math_ops.prepare_cos, ("float32",))
register("SIGN", math_ops.prepare_sign, ("float32", "int32"))
register("FLOOR_DIV", math_ops.prepare_floor_div, ("int8", "int16", "float32", "int32"), note=_RAW)
register("FLOOR_MOD", math_ops.prepare_floor_mod, ("int8", "int16", "float32", "int32", "int64"), note=_RAW)
register("POW", math_ops.prepare_pow, ("float32", "int32"))
register("ADD_N", math_ops.prepare_add_n, ("float32", "int32"))
register("CUMSUM", math_ops.prepare_cumsum, ("float32", "int32", "int64"))
register("ONE_HOT", math_ops.prepare_one_hot, ("int8", "uint8", "float32", "int32", "int64", "bool"))
# [logical]
from . import logical  # noqa: E402

register("LOGICAL_AND", logical.prepare_logical_and, ("bool",))
register("LOGICAL_OR", logical.prepare_logical_or, ("bool",))
register("LOGICAL_NOT", logical.prepare_logical_not, ("bool",))
register("REDUCE_ANY", reduce.prepare_reduce_any, ("bool",))
register("REDUCE_ALL", reduce.prepare_reduce_all, ("bool",))
# [internal]
from . import identity  # noqa: E402

register("REFQUANT_IDENTITY", identity.prepare_identity, ("float32",))
