"""Run models in the runtimes refquant reproduces (the oracles), safely, in a long-lived worker process.

Each arithmetic profile (:mod:`refquant.arithmetic`) has its oracle: LiteRT's reference kernels
(``litert-ref``), LiteRT's default interpreter with the XNNPACK delegate (``litert-xnnpack``; every
tensor but the outputs is then out of reach, since preserving all tensors disables the delegate),
LiteRT's optimized kernels (``litert-optimized``) and the tflite-micro interpreter (``tflm``; outputs
only). Some parameters make a runtime abort its process (a failed TFLITE_CHECK, a segfault in an
optimized kernel); running it in a worker process turns that into an :class:`OracleResult` with
``status == "aborted"`` and a fresh worker. Needs ``ai-edge-litert`` and ``tflite-micro`` (the ``test``
extra); refquant itself never imports them.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "OracleResult",
    "run_litert",
    "run_tflm",
    "run_profile",
    "LiteRTWorker",
    "litert_available",
    "tflm_available",
    "PROFILE_RUNTIMES",
]

#: profile -> (runtime, LiteRT resolver or None, whether every tensor can be read).
PROFILE_RUNTIMES: dict[str, tuple[str, str | None, bool]] = {
    "litert-ref": ("litert", "BUILTIN_REF", True),
    "litert-optimized": ("litert", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", True),
    "litert-xnnpack": ("litert", "BUILTIN", False),
    "tflm": ("tflm", None, False),
}


def litert_available() -> bool:
    """True when ai-edge-litert can be imported."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def tflm_available() -> bool:
    """True when the tflite-micro wheel can be imported."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
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


def run_tflm(model: bytes, inputs: list[np.ndarray], arena_size: int | None = None) -> OracleResult:
    """Run ``model`` in this process with the tflite-micro interpreter (outputs only)."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        it = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena_size or max(len(model) * 10, 4 << 20))
        for i, x in enumerate(inputs):
            it.set_input(np.asarray(x), i)
        it.invoke()
        outputs = []
        while True:
            try:
                outputs.append(np.array(it.get_output(len(outputs))))
            except (IndexError, RuntimeError, ValueError):
                break
    except (RuntimeError, ValueError) as exc:
        return OracleResult("rejected", message=str(exc))
    return OracleResult("ok", outputs)


def run_profile(model: bytes, inputs: list[np.ndarray], profile: str) -> OracleResult:
    """Run ``model`` in the runtime of arithmetic profile ``profile`` (see :data:`PROFILE_RUNTIMES`)."""
    if profile not in PROFILE_RUNTIMES:
        raise ValueError(f"no oracle for profile {profile!r}; known: {sorted(PROFILE_RUNTIMES)}")
    runtime, resolver, every = PROFILE_RUNTIMES[profile]
    if runtime == "tflm":
        return run_tflm(model, inputs)
    assert resolver is not None
    return run_litert(model, inputs, all_tensors=every, resolver=resolver)


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
        model, inputs, all_tensors, resolver, profile = msg
        if profile is not None:
            conn.send(run_profile(model, inputs, profile))
        else:
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
        self,
        model: bytes,
        inputs: list[np.ndarray],
        *,
        all_tensors: bool = True,
        resolver: str = "BUILTIN_REF",
        profile: str | None = None,
    ) -> OracleResult:
        """Run one model; ``status == "aborted"`` when the runtime killed its process or timed out.

        ``profile``: run the runtime of that arithmetic profile (:func:`run_profile`) instead of
        ``resolver``/``all_tensors``.
        """
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None and self._proc is not None
        try:
            self._conn.send((bytes(model), [np.asarray(x) for x in inputs], all_tensors, resolver, profile))
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
