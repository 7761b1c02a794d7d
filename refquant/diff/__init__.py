"""``refquant diff``: compare a dump from any implementation with refquant's, and say what is wrong.

- :mod:`refquant.diff.dump`: reading dumps (manifest fields checked, files kept inside the dump);
- :mod:`refquant.diff.tensors`: tensor-by-tensor differences and the first divergence
  (``diff_dumps``, ``format_diff``);
- :mod:`refquant.diff.layout`: storage and mapping hints (NCHW, weight layouts, channel order, offsets);
- :mod:`refquant.diff.isolate`: every operator recomputed from OTHER's own inputs (``--isolate``);
- :mod:`refquant.diff.explain`: which known arithmetic reproduces a wrong operator (``--explain``).

docs/diff_json.md documents the JSON these produce.
"""

from __future__ import annotations

from .dump import Dump, DumpTensor, load_dump
from .explain import explain_operator
from .isolate import format_isolated, isolate_operators
from .layout import layout_hint
from .tensors import HISTOGRAM_BUCKETS, diff_dumps, differences, format_diff, trace_command

__all__ = [
    "DumpTensor",
    "Dump",
    "load_dump",
    "diff_dumps",
    "differences",
    "format_diff",
    "trace_command",
    "isolate_operators",
    "format_isolated",
    "explain_operator",
    "layout_hint",
    "HISTOGRAM_BUCKETS",
]
