"""Run a model in the tflite-micro PyPI wheel (reference kernels): ``run_tflm(model, inputs) -> outputs``.

Needs ``tflite-micro==0.dev20261023182759`` (see README.md: a venv created with ``--system-site-packages``, so
that refquant and ai_edge_litert import there too).
"""

import numpy as np
from tflite_micro.python.tflite_micro import runtime


def run_tflm(model, inputs, arena=None):
    it = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena or max(len(model) * 10, 1 << 20))
    for i, x in enumerate(inputs):
        it.set_input(np.asarray(x), i)
    it.invoke()
    outs = []
    i = 0
    while True:
        try:
            outs.append(np.array(it.get_output(i)))
        except Exception:  # noqa: BLE001
            break
        i += 1
    return outs
