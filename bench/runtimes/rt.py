"""Shared helpers: run a model in LiteRT under the three resolvers and report delegation.

Usage from other scripts: from rt import run3, delegated
"""

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

RES = {"ref": "BUILTIN_REF", "xnn": "BUILTIN", "opt": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def make(model, which):
    return Interpreter(
        model_content=bytes(model), num_threads=1, experimental_op_resolver_type=getattr(OpResolverType, RES[which])
    )


def run(model, inputs, which):
    it = make(model, which)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], np.asarray(x))
    it.invoke()
    outs = [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]
    return outs, it


def delegated(it):
    """Names of the nodes in the execution plan after allocate (DELEGATE = XNNPACK took something)."""
    return [d["op_name"] for d in it._get_ops_details()]


def run3(model, inputs):
    res = {}
    for w in RES:
        outs, it = run(model, inputs, w)
        res[w] = outs
        if w == "xnn":
            res["plan"] = delegated(it)
    return res
