"""Input data for the command line: DATA.npz (or a dict of arrays) -> one ``(N, *shape)`` array per model input.

The conventions, shared by ``refquant golden``, ``refquant trace`` (and ``refquant compare``):

* **Keys.** The array for model input ``i`` is named after the input tensor, its signature name
  (``"image"`` for ``serving_default_image:0``), or ``input_<i>``. An array that names no input is an
  error; ``FILE.npz:KEY[,KEY...]`` picks arrays by name instead (in model-input order), and a ``.npy``
  file is the one input of a one-input model.
* **Shapes.** ``(N, *input_shape)``: N samples, each of the model's input shape. When the model's
  batch dimension is 1, ``(N, *input_shape[1:])`` is accepted too (each sample gets the batch axis back).
* **Types.** Real-valued (float) data for an integer model input is quantized with LiteRT QUANTIZE
  semantics (``refquant.quantization.quantize``: float32 division by the scale, ties away from zero,
  clamp). Integer data whose dtype equals the model input's passes through unchanged (already
  quantized). Float data for a float32 input is converted to float32. Anything else is an
  :class:`refquant.errors.InputError` that says what to give instead.
* **Finite values.** Real-valued data must be finite: NaN or infinity in input data is an
  :class:`~refquant.errors.InputError` naming the array, sample and position, in every command (LiteRT
  would quantize NaN to an arbitrary integer; a golden vector made from it would test nothing).
  ``refquant.Interpreter`` itself runs whatever values it is given, as LiteRT does.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .model import Model, Tensor
from .quantization import quantize

__all__ = [
    "RawInput",
    "load_inputs",
    "load_raw_inputs",
    "convert_input",
    "sample",
    "sample_inputs",
    "read_arrays",
    "read_npy",
    "regular_file",
    "MAX_ARRAY_BYTES",
]

#: The most bytes one input array may hold once read (checked from its header before reading).
MAX_ARRAY_BYTES = 2 << 30


def regular_file(path: str | os.PathLike, what: str) -> int:
    """The size of ``path`` when it is a regular file; :class:`InputError` for a device, FIFO, directory or none.

    Checked without opening it: reading ``/dev/zero`` or a FIFO would never end.
    """
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{what} {os.fspath(path)!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {os.fspath(path)!r} is not a regular file")
    return int(st.st_size)


def read_npy(f: Any, what: str, available: int, limit: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """One ``.npy`` array from the open binary file ``f``, checked from its header before any data is read.

    ``available``: the bytes the file (or archive member) holds from ``f``'s position. The header must
    describe a plain numeric or bool array (no objects, no structured dtypes) whose data fits in
    ``available`` bytes and in ``limit``; else :class:`InputError` naming ``what``.
    """
    fmt = np.lib.format
    try:
        start = f.tell() if hasattr(f, "tell") else 0
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise InputError(f"{what}: .npy format version {version} is not supported")
        header = f.tell() - start if hasattr(f, "tell") else 0
    except InputError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise InputError(f"{what}: not a readable .npy array ({exc})") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise InputError(f"{what}: dtype {dtype} is not a plain numeric array")
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        raise InputError(
            f"{what}: the header declares {list(shape)} {dtype} ({nbytes} bytes), above the {limit}-byte bound"
        )
    if nbytes > available - header:
        raise InputError(f"{what}: the header declares {nbytes} bytes of data; the file holds {available - header}")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise InputError(f"{what}: truncated ({len(data)} of {nbytes} bytes)")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


@dataclass(frozen=True)
class RawInput:
    """One model input as found in the data, before conversion to the model's dtype.

    ``array`` has shape ``(N, *tensor.shape)`` and the dtype it had in the file; ``key`` is the array's
    name in the data.
    """

    tensor: Tensor
    key: str
    array: np.ndarray

    @property
    def quantized_here(self) -> bool:
        """True when refquant quantizes these values (real data for an integer, quantized input)."""
        return self.array.dtype.kind == "f" and self.tensor.np_dtype.kind in "iu" and _has_scale(self.tensor)


def _has_scale(t: Tensor) -> bool:
    return t.quantization is not None and t.quantization.scale.size > 0


def _as_model(model: Model | str | os.PathLike) -> Model:
    if isinstance(model, Model):
        return model
    from .tflite.reader import load_model

    return load_model(model)


def _split_selector(spec: str) -> tuple[str, list[str] | None]:
    """``FILE.npz`` or ``FILE.npz:KEY[,KEY...]`` -> (path, selected keys or None)."""
    if os.path.isfile(spec):
        return spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head and os.path.isfile(head) and tail:
        return head, tail.split(",")
    raise InputError(f"input data {spec!r} does not exist or is not a file")


def read_arrays(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The named arrays of ``source``: a ``.npz`` / ``.npy`` path or a mapping of name -> array-like.

    ``FILE.npz:KEY[,KEY...]`` selects arrays by name and renames them ``input_0``, ``input_1``, ... in
    the order given. A ``.npy`` file gives one array named ``input_0``. Raises :class:`InputError`
    for a missing or unreadable file or an absent key.
    """
    if isinstance(source, Mapping):
        return {str(k): np.asarray(v) for k, v in source.items()}
    path, keys = _split_selector(os.fspath(source))
    size = regular_file(path, "input data")
    try:
        if not zipfile.is_zipfile(path):  # a .npy file
            with open(path, "rb") as f:
                arrays = {"input_0": read_npy(f, f"cannot read input data {path!r} as .npz/.npy", size)}
            if keys is not None:
                raise InputError(f"input data {path!r} is one .npy array; a KEY selector needs an .npz")
            return arrays
        with zipfile.ZipFile(path) as zf:
            members = {n[:-4]: zf.getinfo(n) for n in zf.namelist() if n.endswith(".npy")}
            if keys is not None:
                absent = [k for k in keys if k not in members]
                if absent:
                    raise InputError(f"input data {path!r} has no array {absent[0]!r}; it has {sorted(members)}")
            wanted = list(members) if keys is None else list(dict.fromkeys(keys))
            total = sum(members[k].file_size for k in wanted)
            if total > MAX_ARRAY_BYTES:
                raise InputError(
                    f"input data {path!r}: the arrays would take {total} bytes once decompressed, above the "
                    f"{MAX_ARRAY_BYTES}-byte bound"
                )
            loaded = {}
            for k in wanted:
                with zf.open(members[k]) as f:
                    loaded[k] = read_npy(f, f"input data {path!r}, array {k!r}", members[k].file_size)
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise InputError(f"cannot read input data {path!r} as .npz/.npy: {exc}") from exc
    if keys is None:
        return loaded
    return {f"input_{i}": loaded[k] for i, k in enumerate(keys)}


def _signature_names(model: Model) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for sig in model.signatures:
        if sig.subgraph_index == 0:
            for name, index in sig.inputs:
                names.setdefault(index, []).append(name)
    return names


def _fit_shape(t: Tensor, key: str, arr: np.ndarray) -> np.ndarray:
    shape = tuple(t.shape)
    if arr.ndim == len(shape) + 1 and tuple(arr.shape[1:]) == shape:
        return arr
    if shape and shape[0] == 1 and arr.ndim == len(shape) and tuple(arr.shape[1:]) == shape[1:]:
        return arr.reshape((arr.shape[0], *shape))
    accepted = "(N" + "".join(f", {d}" for d in shape) + ")"
    if shape and shape[0] == 1:
        accepted += " or (N" + "".join(f", {d}" for d in shape[1:]) + ")"
    raise InputError(
        f"input array {key!r} has shape {list(arr.shape)}; model input {t.index} {t.name!r} has shape "
        f"{list(shape)}, so the array must be {accepted} for N samples"
    )


def load_raw_inputs(
    model: Model | str | os.PathLike, source: str | os.PathLike | Mapping[str, Any] | Sequence[Any]
) -> list[RawInput]:
    """Find, for each input of subgraph 0, its ``(N, *shape)`` array in ``source`` (dtype unchanged).

    ``source``: a .npz/.npy path (``FILE.npz:KEY[,KEY...]`` picks arrays in model-input order), a
    mapping of name -> array, or a sequence of arrays in model-input order. See the module docstring
    for the key and shape rules; an array whose name matches no input is an error (a misspelt name
    should not pass silently). Every input gets the same N >= 1. Raises :class:`InputError` naming the
    input and the arrays present when something does not fit.
    """
    m = _as_model(model)
    sg = m.main
    if isinstance(source, (str, os.PathLike, Mapping)):
        arrays = read_arrays(source)
    else:
        seq = list(source)
        if len(seq) != len(sg.inputs):
            raise InputError(f"got {len(seq)} input arrays; the model has {len(sg.inputs)} inputs")
        arrays = {f"input_{i}": np.asarray(a) for i, a in enumerate(seq)}
    signames = _signature_names(m)
    lookup: dict[str, int] = {}
    for i, idx in enumerate(sg.inputs):
        for name in (sg.tensors[idx].name, *signames.get(idx, []), f"input_{i}"):
            lookup.setdefault(name, i)
    chosen: dict[int, str] = {}
    for key in arrays:
        if key not in lookup:
            expected = ", ".join(repr(sg.tensors[idx].name) for idx in sg.inputs)
            raise InputError(
                f"input data has an array {key!r} that names no model input; expected the model's input names "
                f"({expected}), their signature names, or input_0..input_{len(sg.inputs) - 1} "
                "(FILE.npz:KEY picks arrays by name)"
            )
        i = lookup[key]
        if i in chosen:
            raise InputError(f"model input {i} is given twice (as {chosen[i]!r} and {key!r})")
        chosen[i] = key
    found: list[RawInput] = []
    for i, idx in enumerate(sg.inputs):
        t = sg.tensors[idx]
        if i not in chosen:
            names = dict.fromkeys([t.name, *signames.get(idx, []), f"input_{i}"])
            raise InputError(
                f"no array for model input {i} (tensor {idx} {t.name!r}): looked for "
                f"{', '.join(repr(c) for c in names)}; the data holds {sorted(arrays) or 'no arrays'}"
            )
        key = chosen[i]
        arr = np.asarray(arrays[key])
        if arr.dtype.kind not in "biuf":
            raise InputError(f"input array {key!r} has dtype {arr.dtype}; expected numbers")
        arr = _fit_shape(t, key, arr)
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr)
            if bad.any():
                where = tuple(int(x) for x in np.argwhere(bad)[0])
                raise InputError(
                    f"input array {key!r} has {int(bad.sum())} non-finite value(s), the first in sample "
                    f"{where[0]} at {where[1:]} (model input shape {tuple(t.shape)}): {float(arr[where])}; "
                    "input data must be finite in every command"
                )
        found.append(RawInput(t, key, arr))
    counts = {r.key: r.array.shape[0] for r in found}
    if len(set(counts.values())) > 1:
        raise InputError(f"input arrays hold different numbers of samples: {counts}; every input needs the same N")
    if found and found[0].array.shape[0] == 0:
        raise InputError(f"input array {found[0].key!r} holds 0 samples")
    return found


def convert_input(raw: RawInput) -> np.ndarray:
    """``raw.array`` converted to the model input's dtype (quantizing real data; see the module docstring)."""
    t, arr, key = raw.tensor, raw.array, raw.key
    want = t.np_dtype
    if arr.dtype == want:
        return arr
    where = f"input array {key!r} ({arr.dtype}) for model input tensor {t.index} {t.name!r} ({t.dtype})"
    if want.kind == "f":
        if arr.dtype.kind != "f":
            raise InputError(f"{where}: the model takes real values; give a float array")
        return arr.astype(want)
    if want.kind in "iu":
        if arr.dtype.kind == "f":
            if not _has_scale(t):
                raise InputError(f"{where}: the input is not quantized, so real values cannot be converted")
            q = t.quantization
            assert q is not None
            if q.scale.size == 1:
                return quantize(arr, q.scale[0], q.zero_point[0], want)
            axis = q.quantized_dimension + 1  # + 1: the sample axis comes first
            return quantize(arr, q.scale, q.zero_point, want, axis=axis)
        if arr.dtype.kind in "iu" and not _has_scale(t):
            info = np.iinfo(want)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise InputError(f"{where}: values outside the {t.dtype} range [{info.min}, {info.max}]")
            return arr.astype(want)
        raise InputError(f"{where}: give real (float) values to be quantized, or already-quantized {t.dtype} values")
    if want.kind == "b" and arr.dtype.kind in "iu" and np.isin(arr, (0, 1)).all():
        return arr.astype(want)
    raise InputError(f"{where}: cannot convert")


def load_inputs(
    model: Model | str | os.PathLike, source: str | os.PathLike | Mapping[str, Any] | Sequence[Any]
) -> list[np.ndarray]:
    """One ``(N, *shape)`` array per input of subgraph 0, in the model's dtypes, ready to run sample by sample.

    ``model``: a :class:`refquant.Model` or a .tflite path. ``source``: as for :func:`load_raw_inputs`. Raises :class:`InputError` with a one-line reason when the data does not fit.
    """
    return [convert_input(r) for r in load_raw_inputs(model, source)]


def sample(inputs: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    """The first ``n`` samples of every input (all of them when fewer than ``n`` exist); ``n >= 1``."""
    if n < 1:
        raise InputError(f"the number of samples must be at least 1, got {n}")
    return [np.asarray(a)[:n] for a in inputs]


def sample_inputs(inputs: Sequence[np.ndarray], s: int) -> list[np.ndarray]:
    """The model inputs of sample ``s`` (each of the model input's own shape, no sample axis)."""
    n = int(np.shape(inputs[0])[0]) if inputs else 0
    if not 0 <= s < n:
        raise InputError(f"sample {s} does not exist; the data holds {n} sample(s) (0..{n - 1})")
    return [np.asarray(a)[s] for a in inputs]
