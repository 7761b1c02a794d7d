"""Run models in LiteRT's reference kernels (the oracle), safely, in a long-lived worker process.

Some parameters make LiteRT abort its process (a failed TFLITE_CHECK); running it in a worker
process turns that into an :class:`OracleResult` with ``status == "aborted"`` and a fresh worker.
Needs ``ai-edge-litert`` (the ``test`` extra); refquant itself never imports it.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OracleResult", "run_litert", "LiteRTWorker", "litert_available"]


def litert_available() -> bool:
    """True when ai-edge-litert can be imported."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class OracleResult:
    """What LiteRT did with one model: ``ok`` (outputs and tensors set), ``rejected`` or ``aborted``."""

    status: str
    outputs: list[np.ndarray] = field(default_factory=list)
    tensors: dict[int, np.ndarray] = field(default_factory=dict)
    message: str = ""


def run_litert(
    model: bytes, inputs: list[np.ndarray], *, all_tensors: bool = True, resolver: str = "BUILTIN_REF"
) -> OracleResult:
    """Run ``model`` in this process with LiteRT.

    ``resolver`` names an OpResolverType: BUILTIN_REF (the oracle), BUILTIN, BUILTIN_WITHOUT_DEFAULT_DELEGATES.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(
            model_content=bytes(model),
            experimental_op_resolver_type=getattr(OpResolverType, resolver),
            experimental_preserve_all_tensors=all_tensors,
            num_threads=1,
        )
        details = it.get_input_details()
        for d, x in zip(details, inputs):
            if tuple(d["shape"]) != tuple(np.shape(x)):
                it.resize_tensor_input(d["index"], list(np.shape(x)))
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], np.asarray(x))
        it.invoke()
    except (RuntimeError, ValueError) as exc:
        return OracleResult("rejected", message=str(exc))
    outputs = [_read_output(it, d) for d in it.get_output_details()]
    tensors: dict[int, np.ndarray] = {}
    if all_tensors:
        for d in it.get_tensor_details():
            try:
                tensors[d["index"]] = np.array(it.get_tensor(d["index"]))
            except ValueError:
                pass
    return OracleResult("ok", outputs, tensors)


def _read_output(it, detail: dict) -> np.ndarray:
    """An output's value; an empty array for a 0-element tensor, which LiteRT's get_tensor cannot always
    read ("Invalid tensor size" when its buffer is a null pointer, e.g. a persistent empty result)."""
    try:
        return np.array(it.get_tensor(detail["index"]))
    except ValueError:
        shape = tuple(int(d) for d in detail["shape"])
        if 0 in shape:
            return np.zeros(shape, detail["dtype"])
        raise


def _worker(conn) -> None:  # pragma: no cover - runs in the child process
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        model, inputs, all_tensors, resolver = msg
        conn.send(run_litert(model, inputs, all_tensors=all_tensors, resolver=resolver))


class LiteRTWorker:
    """A LiteRT process reused across calls; restarted after an abort or a timeout."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self._proc.start()
        self._conn = parent

    def run(
        self, model: bytes, inputs: list[np.ndarray], *, all_tensors: bool = True, resolver: str = "BUILTIN_REF"
    ) -> OracleResult:
        """Run one model; ``status == "aborted"`` when LiteRT killed its process or timed out."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None and self._proc is not None
        try:
            self._conn.send((bytes(model), [np.asarray(x) for x in inputs], all_tensors, resolver))
            if not self._conn.poll(self.timeout):
                self.close()
                return OracleResult("aborted", message=f"LiteRT did not answer within {self.timeout} s")
            return self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._proc.exitcode if self._proc is not None else None
            self.close()
            return OracleResult("aborted", message=f"LiteRT's process died (exit code {code})")

    def close(self) -> None:
        """Stop the worker process."""
        if self._proc is not None:
            try:
                if self._proc.is_alive() and self._conn is not None:
                    self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc = None
        self._conn = None
