"""Every registered operator has each of the places docs/adding_an_op.md lists; this test fails when one is missed.

For each op of ``refquant.ops.REGISTRY`` (TFLite builtins; refquant's internal ``REFQUANT_IDENTITY`` aside):

* a ``prepare`` function and the dtypes it supports (the README table);
* operator-version bounds in ``refquant/ops/versions.py`` (without them any version would be accepted, while
  LiteRT's reference resolver rejects versions it does not register);
* an ``op_models`` generator in ``refquant.strategies`` for every registered dtype column;
* a test module under ``tests/ops/`` that names the op;
* element tracing: the ``OpData`` its simplest model prepares implements ``trace`` (or the op is a pure copy the
  tracer follows generically), and the trace of its first and last output elements ends at the run's value;
* a row in the README's operator table.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, settings

from refquant.docs import BEGIN, END
from refquant.engine import Engine
from refquant.ops import REGISTRY
from refquant.ops.base import OpData
from refquant.ops.versions import BUILTIN_REF_VERSIONS
from refquant.strategies import op_models, supported_op_dtypes
from refquant.tflite.reader import load_model
from refquant.tracer import COPY_OPS, trace_in_run

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = {"REFQUANT_IDENTITY"}
OPS = sorted(op for op in REGISTRY if op not in INTERNAL)
#: README columns that a registration's dtypes map to.
COLUMNS = ("int8", "uint8", "int16", "float32")


def test_internal_ops_are_only_the_known_ones():
    assert {op for op in REGISTRY if not re.fullmatch(r"[A-Z0-9_]+", op) or op.startswith("REFQUANT_")} == INTERNAL


@pytest.mark.parametrize("opcode", OPS)
def test_registration_is_complete(opcode):
    spec = REGISTRY[opcode]
    assert callable(spec.prepare) and spec.prepare.__doc__, f"{opcode}: prepare needs a docstring"
    assert spec.dtypes, f"{opcode}: no dtypes registered"
    lo, hi = BUILTIN_REF_VERSIONS.get(opcode, (None, None))
    assert lo is not None and 1 <= lo <= hi, f"{opcode}: add its version bounds to refquant/ops/versions.py"


def _test_sources() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "tests" / "ops").glob("test_*.py")))


@pytest.mark.parametrize("opcode", OPS)
def test_every_op_has_op_tests(opcode):
    assert re.search(rf"[\"']{opcode}[\"']", _test_sources()), f"{opcode}: no test module in tests/ops/ names it"


@pytest.mark.parametrize("opcode", OPS)
def test_every_op_has_strategies_for_its_dtypes(opcode):
    drawn = supported_op_dtypes().get(opcode)
    assert drawn, f"{opcode}: add an op_models generator to refquant.strategies"
    registered = {d for d in REGISTRY[opcode].dtypes if d in COLUMNS}
    missing = registered - set(drawn)
    assert not missing, f"{opcode}: op_models draws no {sorted(missing)} models"


@pytest.mark.parametrize("opcode", OPS)
def test_every_op_is_in_the_readme_table(opcode):
    table = (ROOT / "README.md").read_text().split(BEGIN)[1].split(END)[0]
    assert re.search(rf"^\| {opcode} \|", table, re.M), (
        f"{opcode}: regenerate the README table (python -m refquant.docs)"
    )


_SIMPLEST = settings(
    database=None,
    max_examples=50,
    phases=(Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.mark.parametrize("opcode", OPS)
def test_every_op_traces_its_elements(opcode):
    dtype = supported_op_dtypes()[opcode][0]
    case = find(op_models(opcode, dtype), lambda c: True, settings=_SIMPLEST)
    model = load_model(case.model)
    run = Engine(model).run([np.asarray(x) for x in case.inputs])
    for op in model.main.operators:
        data = run.op_data[op.index]
        traced = type(data).trace is not OpData.trace or op.opcode in COPY_OPS
        assert traced, f"{op.opcode}: {type(data).__name__} does not implement OpData.trace()"
        for j, o in enumerate(op.outputs):
            value = np.asarray(run.values[o])
            for flat in sorted({0, value.size - 1}) if value.size else ():
                element = tuple(int(i) for i in np.unravel_index(flat, value.shape))
                tr = trace_in_run(run, o, element)
                assert tr.matches_run, f"{op.opcode} output {j} {list(element)}: trace ends at {tr.steps[-1].value}"
