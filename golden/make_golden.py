#!/usr/bin/env python
"""Generate the golden TFLite models and reference vectors for refquant.

Run with the TensorFlow venv (TensorFlow is not a refquant dependency):

    $TF_PYTHON golden/make_golden.py            # committed set
    $TF_PYTHON golden/make_golden.py --big      # + golden/big/ (not committed)
    $TF_PYTHON golden/make_golden.py --only digits_int8_ptq op_conv_2d_s2same_relu6_int8

Outputs (see golden/README.md):
    golden/models/<name>.tflite
    golden/vectors/<name>.npz      input_<i>, output_<i>, tensor_<k>
    golden/data/digits_split.npz
    golden/manifest.json
    golden/big/...                 (--big only; gitignored)

Everything is deterministic: fixed seeds, op determinism, single-threaded TF,
name counters reset per model family, .npz written with fixed zip timestamps,
manifest without dates. Vectors are always produced with LiteRT's BUILTIN_REF
kernels and experimental_preserve_all_tensors=True.
"""

import os

# Must be set before TensorFlow is imported: tf.keras -> tf_keras (Keras 2),
# which tensorflow-model-optimization needs for QAT. All Keras models in this
# script are built with tf_keras so that the QAT model starts from the very
# same float model.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"
# oneDNN kernels are ISA dependent; plain Eigen keeps results closer across
# machines (byte reproducibility is only guaranteed on the same machine).
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import collections
import hashlib
import io
import json
import logging
import sys
import time
import warnings
import zipfile
import zlib

import numpy as np

warnings.filterwarnings("ignore")

import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

keras = tf.keras  # == tf_keras because of TF_USE_LEGACY_KERAS=1

GOLDEN = os.path.dirname(os.path.abspath(__file__))
BASE_SEED = 20240601
N_CALIB = 64  # representative-dataset samples (PTQ)
N_CALIB_BIG = 32
DIGITS_TEST = 540


def log(*a):
    print(*a, flush=True)


def name_seed(name):
    """Stable per-name seed (independent of PYTHONHASHSEED and run order)."""
    return (BASE_SEED + zlib.crc32(name.encode())) % (2**31)


def reset(seed):
    """Fresh Keras name counters + all RNGs seeded: families are independent
    of which other families ran before (needed for --only reproducibility)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(p):
    with open(p, "rb") as f:
        return sha256_bytes(f.read())


def write_atomic(path, data):
    """Write bytes via a temp file + rename (other processes may be reading golden/)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_npz(path, arrays):
    """np.savez_compressed equivalent with fixed zip metadata (reproducible).

    np.savez stamps the current time into each zip member; this does not.
    np.load reads the result like any .npz.
    """
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zi = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.create_system = 3
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Input data
# --------------------------------------------------------------------------


def _upsample_bilinear(a, h, w):
    """a: (n, sh, sw, c) -> (n, h, w, c), align-corners bilinear, numpy only."""
    n, sh, sw, c = a.shape
    ys = np.linspace(0, sh - 1, h)
    xs = np.linspace(0, sw - 1, w)
    y0 = np.floor(ys).astype(int)
    y1 = np.minimum(y0 + 1, sh - 1)
    fy = (ys - y0)[None, :, None, None]
    x0 = np.floor(xs).astype(int)
    x1 = np.minimum(x0 + 1, sw - 1)
    fx = (xs - x0)[None, None, :, None]
    top = a[:, y0][:, :, x0] * (1 - fx) + a[:, y0][:, :, x1] * fx
    bot = a[:, y1][:, :, x0] * (1 - fx) + a[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bot * fy


def smooth_noise_images(rng, n, h, w, c=3):
    """Random but image-like data: multi-octave smooth noise, per-image
    min/max normalised to [0, 1]. float32 (n, h, w, c)."""
    img = np.zeros((n, h, w, c), np.float64)
    for cells, weight in ((3, 1.0), (6, 0.6), (12, 0.35), (24, 0.2)):
        img += weight * _upsample_bilinear(rng.standard_normal((n, cells, cells, c)), h, w)
    img += 0.05 * rng.standard_normal((n, h, w, c))
    lo = img.min(axis=(1, 2, 3), keepdims=True)
    hi = img.max(axis=(1, 2, 3), keepdims=True)
    return ((img - lo) / (hi - lo)).astype(np.float32)


_DIGITS = None


def digits_split():
    """sklearn load_digits (bundled, offline). x = pixel / 16 in [0, 1]."""
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images.astype(np.float32) / np.float32(16.0))[..., None]
        y = d.target.astype(np.int64)
        perm = np.random.default_rng(BASE_SEED).permutation(len(y))
        test_idx = np.sort(perm[:DIGITS_TEST])
        train_idx = np.sort(perm[DIGITS_TEST:])
        calib_idx = np.sort(np.random.default_rng(BASE_SEED + 1).choice(train_idx, N_CALIB, replace=False))
        _DIGITS = dict(x=x, y=y, train_idx=train_idx, test_idx=test_idx, calib_idx=calib_idx)
    return _DIGITS


def write_digits_split():
    d = digits_split()
    os.makedirs(os.path.join(GOLDEN, "data"), exist_ok=True)
    path = os.path.join(GOLDEN, "data", "digits_split.npz")
    save_npz(
        path,
        collections.OrderedDict(
            [
                ("x", d["x"][d["test_idx"]]),
                ("y", d["y"][d["test_idx"]]),
                ("test_idx", d["test_idx"].astype(np.int64)),
                ("train_idx", d["train_idx"].astype(np.int64)),
                ("calib_idx", d["calib_idx"].astype(np.int64)),
            ]
        ),
    )
    return path


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------


class Spec:
    """One golden model.

    The spec's family object (DigitsFamily, MobileNetFamily, ...) builds it:
    family.build(spec) -> (concrete_function, trackable, rep_samples, vec_sample, vec_description)
      rep_samples: list of {signature input name: float array} for calibration
      vec_sample:  {signature input name: float array} fed (quantized if needed) for the vectors
    Families cache their Keras models, so variants of one family share the same weights.
    """

    def __init__(
        self, name, kind, family, mode, int_io=False, source="", calibration="", notes="", fallback=False, opts=None
    ):
        self.name, self.kind, self.family, self.mode = name, kind, family, mode
        self.fallback = fallback
        self.opts = opts or {}
        self.int_io, self.source, self.calibration, self.notes = int_io, source, calibration, notes


def converter_flags(mode, int_io, n_rep, fallback=False):
    f = collections.OrderedDict()
    f["api"] = "TFLiteConverter.from_concrete_functions (batch-1 input signature)"
    if mode == "float":
        f["optimizations"] = []
    elif mode in ("int8", "int16x8"):
        f["optimizations"] = ["DEFAULT"]
        f["representative_dataset"] = f"{n_rep} samples, dicts keyed by signature input name"
        f["supported_ops"] = (
            ["TFLITE_BUILTINS_INT8"]
            if mode == "int8"
            else ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]
        )
        if fallback:
            f["supported_ops"].append("TFLITE_BUILTINS")
        io_t = ("int8" if mode == "int8" else "int16") if int_io else "float32"
        f["inference_input_type"] = io_t
        f["inference_output_type"] = io_t
    elif mode in ("qat", "dynamic"):
        # dynamic: dynamic-range quantization (int8 weights of >= 1024 elements, float activations).
        f["optimizations"] = ["DEFAULT"]
        f["representative_dataset"] = None
        f["supported_ops"] = ["TFLITE_BUILTINS (default)"]
        f["inference_input_type"] = "float32"
        f["inference_output_type"] = "float32"
    else:
        raise ValueError(mode)
    return f


def convert(cf, trackable, mode, int_io, rep_samples, fallback=False):
    conv = tf.lite.TFLiteConverter.from_concrete_functions([cf], trackable)
    if mode in ("int8", "int16x8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]

        def rep():
            for s in rep_samples:
                yield {k: np.asarray(v, np.float32) for k, v in s.items()}

        conv.representative_dataset = rep
        if mode == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int_io:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            if fallback:  # ops without a 16x8 kernel stay float
                conv.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
            if int_io:
                conv.inference_input_type = tf.int16
                conv.inference_output_type = tf.int16
    elif mode == "qat":
        # Ranges come from the fake-quant nodes; no representative dataset.
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "dynamic":
        # Dynamic-range quantization: no representative dataset, no fake-quant nodes.
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def make_interpreter(model_bytes):
    it = Interpreter(
        model_content=model_bytes,
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
        num_threads=1,
    )
    it.allocate_tensors()
    return it


def _sig_input_index(it):
    """signature input name -> tensor index (serving_default)."""
    try:
        sigs = it._get_full_signature_list()
        sig = sigs.get("serving_default") or next(iter(sigs.values()))
        return dict(sig["inputs"])
    except Exception:
        return {}


def _quant(d):
    q = d.get("quantization_parameters", {})
    sc = q.get("scales", np.zeros(0))
    zp = q.get("zero_points", np.zeros(0))
    return [float(s) for s in sc], [int(z) for z in zp]


def io_desc(details, sig_names=None):
    out = []
    sig_names = sig_names or {}
    for d in details:
        sc, zp = _quant(d)
        out.append(
            collections.OrderedDict(
                [
                    ("name", d["name"]),
                    ("signature_name", sig_names.get(int(d["index"]))),
                    ("index", int(d["index"])),
                    ("shape", [int(s) for s in d["shape"]]),
                    ("dtype", np.dtype(d["dtype"]).name),
                    ("scale", sc),
                    ("zero_point", zp),
                ]
            )
        )
    return out


def flatbuffer_info(model_bytes):
    """Subgraph-0 facts read from the file itself: op histogram, #operators,
    #tensors, and the set of constant tensors (non-empty buffer)."""
    from tensorflow.lite.python import schema_py_generated as fb

    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    m = fb.Model.GetRootAsModel(model_bytes, 0)
    sg = m.Subgraphs(0)
    h = collections.Counter()
    for i in range(sg.OperatorsLength()):
        oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        h[names.get(code, f"CODE_{code}")] += 1
    consts = set()
    for k in range(sg.TensorsLength()):
        b = m.Buffers(sg.Tensors(k).Buffer())
        if b is not None and (b.DataLength() > 0 or b.Size() > 0):
            consts.add(k)
    return dict(
        hist=collections.OrderedDict(sorted(h.items())),
        num_ops=sg.OperatorsLength(),
        num_tensors=sg.TensorsLength(),
        constants=consts,
    )


# Constant tensors are byte copies of the .tflite buffers. They are stored in
# the vectors only for models up to this size, to keep golden/ small.
CONSTS_IN_VECTORS_MAX_MODEL_BYTES = 256 * 1024


def run_vectors(model_bytes, sample, info, with_consts):
    """Feed `sample` ({sig input name: float array}) and capture every tensor
    of subgraph 0 (indices < number of tensors in the file).

    Interpreter-only temporaries (index >= num_tensors, e.g. BATCH_MATMUL
    scratch) are not read: get_tensor() on some of them segfaults the process
    (seen on the transformer block, LiteRT 2.3.0)."""
    it = make_interpreter(model_bytes)
    in_det = it.get_input_details()
    sig_idx = _sig_input_index(it)
    idx_to_name = {v: k for k, v in sig_idx.items()}
    arrays = collections.OrderedDict()
    for i, d in enumerate(in_det):
        key = idx_to_name.get(d["index"])
        if key is None:
            if len(sample) != 1:
                raise RuntimeError("cannot map input {}".format(d["name"]))
            key = next(iter(sample))
        x = np.asarray(sample[key], np.float32).reshape(d["shape"])
        dt = np.dtype(d["dtype"])
        if dt == np.float32:
            xin = x
        else:
            sc, zp = _quant(d)
            ii = np.iinfo(dt)
            xin = np.clip(np.round(x / sc[0]) + zp[0], ii.min, ii.max).astype(dt)
        arrays[f"input_{i}"] = xin
        it.set_tensor(d["index"], xin)
    it.invoke()
    for i, d in enumerate(it.get_output_details()):
        arrays[f"output_{i}"] = it.get_tensor(d["index"])
    n_t = len(it.get_tensor_details())
    skipped = []
    for k in range(info["num_tensors"]):
        if k in info["constants"] and not with_consts:
            continue
        try:
            t = it.get_tensor(k)
        except Exception:
            skipped.append(k)
            continue
        if t is None:
            skipped.append(k)
            continue
        arrays[f"tensor_{k}"] = np.array(t)
    return arrays, it, n_t, skipped


# --------------------------------------------------------------------------
# Model families
# --------------------------------------------------------------------------


def serve_fn(model, shapes):
    """Batch-1 tf.function around a Keras model; shapes: OrderedDict name->shape."""
    names = list(shapes)
    sig = [tf.TensorSpec(shapes[n], tf.float32, name=n) for n in names]
    if len(names) == 1:

        @tf.function(input_signature=sig)
        def f(x):
            return model(x, training=False)
    else:

        @tf.function(input_signature=sig)
        def f(*xs):
            return model(list(xs), training=False)

    return f.get_concrete_function()


# ---- digits ---------------------------------------------------------------

DIGITS_SRC = (
    "Keras (tf_keras) CNN trained on sklearn load_digits (8x8x1, pixel/16): "
    "Conv2D(8,3x3,same,relu) -> DepthwiseConv2D(3x3,same,relu) -> Conv2D(16,3x3,same,relu) "
    "-> MaxPool(2) -> Conv2D(16,1x1,relu) -> AvgPool(2) -> Flatten -> Dense(32,relu) "
    "-> Dense(10) -> Softmax; Adam 1e-2, 12 epochs, batch 32, on the 1257-sample train split"
)


def build_digits_cnn():
    L = keras.layers
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dwconv")(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="maxpool")(x)
    x = L.Conv2D(16, 1, activation="relu", name="conv3")(x)
    x = L.AveragePooling2D(2, name="avgpool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, activation="relu", name="fc1")(x)
    x = L.Dense(10, name="logits")(x)
    out = L.Softmax(name="probs")(x)
    return keras.Model(inp, out, name="digits_cnn")


class DigitsFamily:
    name = "digits"

    def __init__(self):
        self._float = None
        self._qat = None

    def float_model(self):
        if self._float is None:
            reset(BASE_SEED + 10)
            d = digits_split()
            xtr, ytr = d["x"][d["train_idx"]], d["y"][d["train_idx"]]
            m = build_digits_cnn()
            m.compile(
                optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
            )
            m.fit(xtr, ytr, epochs=12, batch_size=32, shuffle=True, verbose=0)
            xte, yte = d["x"][d["test_idx"]], d["y"][d["test_idx"]]
            acc = float(np.mean(np.argmax(m.predict(xte, verbose=0), -1) == yte))
            log(f"  digits float Keras test accuracy: {acc:.4f}")
            self._float = m
        return self._float

    def qat_model(self):
        if self._qat is None:
            import tensorflow_model_optimization as tfmot

            base = self.float_model()
            keras.utils.set_random_seed(BASE_SEED + 11)
            m = tfmot.quantization.keras.quantize_model(base)
            d = digits_split()
            xtr, ytr = d["x"][d["train_idx"]], d["y"][d["train_idx"]]
            m.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
            )
            m.fit(xtr, ytr, epochs=3, batch_size=32, shuffle=True, verbose=0)
            xte, yte = d["x"][d["test_idx"]], d["y"][d["test_idx"]]
            acc = float(np.mean(np.argmax(m.predict(xte, verbose=0), -1) == yte))
            log(f"  digits QAT Keras test accuracy: {acc:.4f}")
            self._qat = m
        return self._qat

    def build(self, spec):
        d = digits_split()
        shapes = collections.OrderedDict(image=[1, 8, 8, 1])
        model = self.qat_model() if spec.mode == "qat" else self.float_model()
        cf = serve_fn(model, shapes)
        rep = [{"image": d["x"][i : i + 1]} for i in d["calib_idx"]]
        t0 = int(d["test_idx"][0])
        vec = {"image": d["x"][t0 : t0 + 1]}
        return (
            cf,
            model,
            rep,
            vec,
            (f"digits test sample x[0] of data/digits_split.npz (load_digits index {t0}, label {int(d['y'][t0])})"),
        )


# ---- MobileNets ------------------------------------------------------------


def reinit_bn(model, x):
    """Set every BatchNormalization's moving mean/variance to the batch
    statistics of its input on `x`. With weights=None the default moving stats
    (0, 1) make deep activations collapse; running once in training mode with
    momentum 0 sets moving stats = batch stats, layer by layer consistently
    (each BN sees exactly the activations of the already-normalised prefix)."""
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(tf.constant(x), training=True)
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    return len(bns)


class MobileNetFamily:
    def __init__(self, name, ctor, seed, hw, scale, desc):
        self.name, self.ctor, self.seed, self.hw, self.scale, self.desc = name, ctor, seed, hw, scale, desc
        self._m = None

    def to_input(self, img01):
        lo, hi = self.scale
        return (img01 * (hi - lo) + lo).astype(np.float32)

    def model(self):
        if self._m is None:
            reset(self.seed)
            m = self.ctor()
            rng = np.random.default_rng(self.seed)
            n_bn = reinit_bn(m, self.to_input(smooth_noise_images(rng, 32, self.hw, self.hw)))
            probe = self.to_input(smooth_noise_images(np.random.default_rng(self.seed + 1), 4, self.hw, self.hw))
            p = m(tf.constant(probe), training=False).numpy()
            log(
                f"  {self.name}: {m.count_params()} params, {n_bn} BN layers re-initialised; "
                f"probe probs max {p.max():.3f} min {p.min():.3g}"
            )
            self._m = m
        return self._m

    def build(self, spec):
        m = self.model()
        shapes = collections.OrderedDict(image=[1, self.hw, self.hw, 3])
        cf = serve_fn(m, shapes)
        n_rep = N_CALIB_BIG if self.hw > 128 else N_CALIB
        imgs = self.to_input(smooth_noise_images(np.random.default_rng(self.seed + 2), n_rep, self.hw, self.hw))
        rep = [{"image": imgs[i : i + 1]} for i in range(n_rep)]
        vec = {
            "image": self.to_input(
                smooth_noise_images(np.random.default_rng(name_seed(self.name)), 1, self.hw, self.hw)
            )
        }
        return (
            cf,
            m,
            rep,
            vec,
            (f"1 smooth-noise image in [{self.scale[0]:g}, {self.scale[1]:g}], default_rng({name_seed(self.name)})"),
        )


def mnv2_035_96():
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)


def mnv3s_050_96():
    # include_top=False drops the 1024-wide 1x1-conv head (~1.2 MB of float
    # weights); the classifier is GAP (MEAN) -> Dense(10, softmax).
    base = keras.applications.MobileNetV3Small(
        input_shape=(96, 96, 3), alpha=0.5, weights=None, include_top=False, pooling="avg"
    )
    out = keras.layers.Dense(10, activation="softmax", name="classifier")(base.output)
    return keras.Model(base.input, out, name="mobilenetv3small_050_96")


def mnv1_100_224():
    return keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000)


def mnv2_100_224():
    return keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000)


# ---- transformer block ------------------------------------------------------

TRANSFORMER_SRC = (
    "Keras functional pre-LN transformer encoder block, input (1,16,32): "
    "LayerNormalization -> MultiHeadAttention(2 heads, key_dim 16, self-attention) -> Add "
    "-> LayerNormalization -> Dense(64, gelu (exact erf)) -> Dense(32) -> Add; "
    "random glorot weights, LayerNorm gamma/beta and biases randomised (seeded)"
)


class ManualLayerNorm(keras.layers.Layer):
    """Same math as a given keras LayerNormalization (last axis, its gamma,
    beta, epsilon) written as mean / sub / mul / mean / rsqrt, so that the
    converter emits no SQUARED_DIFFERENCE and no fused-batch-norm lowering."""

    def __init__(self, ln, **kw):
        super().__init__(**kw)
        self.ln = ln

    def call(self, x):
        mu = tf.reduce_mean(x, axis=-1, keepdims=True)
        d = x - mu
        var = tf.reduce_mean(d * d, axis=-1, keepdims=True)
        return d * tf.math.rsqrt(var + self.ln.epsilon) * self.ln.gamma + self.ln.beta


class TransformerFamily:
    name = "transformer"

    def __init__(self):
        self._m = None
        self._manual = None

    def manual_ln_model(self):
        """The same block (shared layer objects, identical weights) with both
        LayerNormalizations replaced by ManualLayerNorm."""
        if self._manual is None:
            m = self.model()
            lay = {layer.name: layer for layer in m.layers}
            inp = keras.Input((16, 32), batch_size=1, name="tokens")
            h = ManualLayerNorm(lay["ln1"], name="ln1_manual")(inp)
            a = lay["mha"](h, h)
            x = lay["res1"]([inp, a])
            h = ManualLayerNorm(lay["ln2"], name="ln2_manual")(x)
            h = lay["ffn2"](lay["ffn1"](h))
            out = lay["res2"]([x, h])
            mm = keras.Model(inp, out, name="transformer_block_manual_ln")
            t = np.random.default_rng(0).standard_normal((4, 16, 32)).astype(np.float32)
            diff = float(np.max(np.abs(m(t).numpy() - mm(t).numpy())))
            log(f"  manual-LN transformer vs Keras LN: max |diff| = {diff:.3g}")
            assert diff < 1e-4, diff
            self._manual = mm
        return self._manual

    def model(self):
        if self._m is None:
            reset(BASE_SEED + 30)
            L = keras.layers
            inp = keras.Input((16, 32), batch_size=1, name="tokens")
            h = L.LayerNormalization(name="ln1")(inp)
            a = L.MultiHeadAttention(num_heads=2, key_dim=16, name="mha")(h, h)
            x = L.Add(name="res1")([inp, a])
            h = L.LayerNormalization(name="ln2")(x)
            h = L.Dense(64, activation="gelu", name="ffn1")(h)
            h = L.Dense(32, name="ffn2")(h)
            out = L.Add(name="res2")([x, h])
            m = keras.Model(inp, out, name="transformer_block")
            # Non-trivial LayerNorm affine params and biases (init would be 1/0).
            rng = np.random.default_rng(BASE_SEED + 31)
            for w in m.weights:
                n = w.name
                if "gamma" in n:
                    w.assign(1.0 + 0.2 * rng.standard_normal(w.shape).astype(np.float32))
                elif "beta" in n or "bias" in n:
                    w.assign(0.1 * rng.standard_normal(w.shape).astype(np.float32))
            self._m = m
        return self._m

    def build(self, spec):
        m = self.manual_ln_model() if spec.opts.get("manual_ln") else self.model()
        shapes = collections.OrderedDict(tokens=[1, 16, 32])
        cf = serve_fn(m, shapes)
        rng = np.random.default_rng(BASE_SEED + 32)
        rep = [{"tokens": rng.standard_normal((1, 16, 32)).astype(np.float32)} for _ in range(N_CALIB)]
        vec = {"tokens": np.random.default_rng(name_seed(self.name)).standard_normal((1, 16, 32)).astype(np.float32)}
        return cf, m, rep, vec, f"standard normal (1,16,32), default_rng({name_seed(self.name)})"


# ---- one-op models ----------------------------------------------------------


def _w(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _b(rng, n):
    return (0.1 * rng.standard_normal(n)).astype(np.float32)


ONE_OPS = collections.OrderedDict()


def one_op(key, desc, modes=("int8", "int16x8")):
    """Register a one-op model; ``modes``: the variants (``int8`` and ``int16x8`` with integer I/O,
    ``dynamic``: dynamic-range quantized with float I/O, a hybrid op)."""

    def deco(f):
        ONE_OPS[key] = (f, desc, modes)
        return f

    return deco


@one_op("conv_2d_s2same_relu6", "tf.nn.conv2d 3x3 stride 2 SAME (input 1x11x11x3 -> 1x6x6x8) + bias_add + relu6")
def _op_conv(rng):
    w, b = tf.constant(_w(rng, (3, 3, 3, 8), 27)), tf.constant(_b(rng, 8))

    @tf.function(input_signature=[tf.TensorSpec([1, 11, 11, 3], tf.float32, name="x")])
    def f(x):
        return tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, w, 2, "SAME"), b))

    return f, collections.OrderedDict(x=(1, 11, 11, 3))


@one_op("conv_2d_dil2valid", "tf.nn.conv2d 3x3 dilation 2 VALID stride 1 (1x12x12x4 -> 1x8x8x6) + bias_add")
def _op_conv_dil(rng):
    w, b = tf.constant(_w(rng, (3, 3, 4, 6), 36)), tf.constant(_b(rng, 6))

    @tf.function(input_signature=[tf.TensorSpec([1, 12, 12, 4], tf.float32, name="x")])
    def f(x):
        return tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "VALID", dilations=2), b)

    return f, collections.OrderedDict(x=(1, 12, 12, 4))


@one_op(
    "depthwise_conv_2d_dm2",
    "tf.nn.depthwise_conv2d 3x3 depth_multiplier 2 stride 1 SAME (1x10x10x4 -> 1x10x10x8) + bias_add + relu",
)
def _op_dw(rng):
    w, b = tf.constant(_w(rng, (3, 3, 4, 2), 9)), tf.constant(_b(rng, 8))

    @tf.function(input_signature=[tf.TensorSpec([1, 10, 10, 4], tf.float32, name="x")])
    def f(x):
        return tf.nn.relu(tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME"), b))

    return f, collections.OrderedDict(x=(1, 10, 10, 4))


@one_op(
    "depthwise_conv_2d_5x5dm2",
    "tf.nn.depthwise_conv2d 5x5 depth_multiplier 2 stride 1 SAME (1x5x5x24 -> 1x5x5x48) + bias_add; 1200 weights, "
    "so dynamic-range quantization makes it a hybrid op",
    modes=("dynamic",),
)
def _op_dw_hybrid(rng):
    w, b = tf.constant(_w(rng, (5, 5, 24, 2), 25)), tf.constant(_b(rng, 48))

    @tf.function(input_signature=[tf.TensorSpec([1, 5, 5, 24], tf.float32, name="x")])
    def f(x):
        return tf.nn.bias_add(tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME"), b)

    return f, collections.OrderedDict(x=(1, 5, 5, 24))


@one_op("fully_connected_3d", "tf.matmul(x[1,5,16], W[16,12]) + bias on a 3-D input (-> FULLY_CONNECTED keep_num_dims)")
def _op_fc(rng):
    w, b = tf.constant(_w(rng, (16, 12), 16)), tf.constant(_b(rng, 12))

    @tf.function(input_signature=[tf.TensorSpec([1, 5, 16], tf.float32, name="x")])
    def f(x):
        return tf.matmul(x, w) + b

    return f, collections.OrderedDict(x=(1, 5, 16))


@one_op("batch_matmul_2act", "tf.matmul(a[1,2,4,8], b[1,2,8,6]) with two activation inputs")
def _op_bmm(rng):
    @tf.function(
        input_signature=[
            tf.TensorSpec([1, 2, 4, 8], tf.float32, name="a"),
            tf.TensorSpec([1, 2, 8, 6], tf.float32, name="b"),
        ]
    )
    def f(a, b):
        return tf.matmul(a, b)

    return f, collections.OrderedDict(a=(1, 2, 4, 8), b=(1, 2, 8, 6))


@one_op("transpose_conv_s2same", "tf.nn.conv2d_transpose 3x3 stride 2 SAME (1x5x5x6 -> 1x10x10x4) + bias_add")
def _op_tconv(rng):
    w, b = tf.constant(_w(rng, (3, 3, 4, 6), 54)), tf.constant(_b(rng, 4))

    @tf.function(input_signature=[tf.TensorSpec([1, 5, 5, 6], tf.float32, name="x")])
    def f(x):
        return tf.nn.bias_add(tf.nn.conv2d_transpose(x, w, [1, 10, 10, 4], 2, "SAME"), b)

    return f, collections.OrderedDict(x=(1, 5, 5, 6))


class OneOpFamily:
    def __init__(self, key):
        self.key = key
        self.name = "op_" + key

    def build(self, spec):
        reset(name_seed(self.name))
        fn, shapes = ONE_OPS[self.key][0](np.random.default_rng(name_seed(self.name)))
        cf = fn.get_concrete_function()
        # A tf.Module (not the tf.function itself) as trackable_obj makes the
        # converter go through the SavedModel path, which emits a
        # serving_default SignatureDef (needed for dict representative data).
        mod = tf.Module()
        mod.f = fn
        rrng = np.random.default_rng(name_seed(self.name) + 1)
        rep = [{k: rrng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(N_CALIB)]
        vrng = np.random.default_rng(name_seed(self.name))
        vec = {k: vrng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        return (
            cf,
            mod,
            rep,
            vec,
            (
                f"standard normal per input ({', '.join(shapes)}, in signature order), default_rng({name_seed(self.name)})"
                + (
                    ", fed as float32"
                    if spec.mode == "dynamic"
                    else ", quantized with the model input's scale/zero_point (round half to even, clip)"
                )
            ),
        )


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


DYNAMIC_CALIBRATION = "none (dynamic range: activations are quantized per batch at run time)"


def registry(big):
    specs = []
    fams = {}
    dig = DigitsFamily()
    fams["digits"] = dig
    dcal = "64 train-split digits (indices calib_idx in data/digits_split.npz), one at a time"
    specs += [
        Spec("digits_float", "float", "digits", "float", source=DIGITS_SRC, calibration=None),
        Spec("digits_int8_ptq", "int8_ptq", "digits", "int8", source=DIGITS_SRC, calibration=dcal),
        Spec("digits_int8_io", "int8_ptq", "digits", "int8", int_io=True, source=DIGITS_SRC, calibration=dcal),
        Spec(
            "digits_int8_qat",
            "int8_qat",
            "digits",
            "qat",
            source=DIGITS_SRC + "; then tfmot.quantization.keras.quantize_model (default 8-bit scheme) "
            "fine-tuned 3 epochs Adam 1e-3 on the train split",
            calibration="none (ranges learned by QAT fake-quant)",
        ),
        Spec("digits_int16x8", "int16x8", "digits", "int16x8", source=DIGITS_SRC, calibration=dcal),
        Spec(
            "digits_dynamic_range",
            "int8_ptq",
            "digits",
            "dynamic",
            source=DIGITS_SRC,
            calibration=DYNAMIC_CALIBRATION,
            notes=(
                "Dynamic-range quantization (Optimize.DEFAULT, no representative dataset): the converter "
                "quantizes only weights of >= 1024 elements, so conv2 (16x3x3x8) becomes a hybrid CONV_2D "
                "and fc1 (32x64) a hybrid FULLY_CONNECTED (int8 per-channel weights, float32 activations "
                "quantized per batch at run time); the other layers stay float32."
            ),
        ),
    ]

    def mobilenet(fname, ctor, seed, hw, scale, desc, prefix, int16_fallback=None):
        fam = MobileNetFamily(fname, ctor, seed, hw, scale, desc)
        fams[fname] = fam
        n = N_CALIB_BIG if hw > 128 else N_CALIB
        cal = (
            f"{n} smooth-noise images (multi-octave bilinear noise, per-image min/max to [0,1], "
            f"mapped to [{scale[0]:g}, {scale[1]:g}]), seed {seed + 2}"
        )
        out = [
            Spec(prefix + "_float", "float", fname, "float", source=desc, calibration=None),
            Spec(prefix + "_int8_ptq", "int8_ptq", fname, "int8", source=desc, calibration=cal),
            Spec(prefix + "_int16x8", "int16x8", fname, "int16x8", source=desc, calibration=cal),
        ]
        if int16_fallback:
            out[-1] = Spec(
                prefix + "_int16x8_mixed",
                "int16x8",
                fname,
                "int16x8",
                source=desc,
                calibration=cal,
                fallback=True,
                notes=int16_fallback,
            )
        return out

    bn_note = (
        "; BatchNorm moving mean/variance re-initialised from 32 smooth-noise images "
        "(one training-mode pass with momentum 0)"
    )
    specs += mobilenet(
        "mnv2_035_96",
        mnv2_035_96,
        BASE_SEED + 20,
        96,
        (-1.0, 1.0),
        "tf_keras.applications.MobileNetV2(input_shape=(96,96,3), alpha=0.35, weights=None, "
        "classes=10) (include_top: GAP -> Dense(10, softmax)); input range [-1,1]" + bn_note,
        "mobilenetv2_035_96",
    )
    mnv3 = mobilenet(
        "mnv3s_050_96",
        mnv3s_050_96,
        BASE_SEED + 25,
        96,
        (0.0, 255.0),
        "tf_keras.applications.MobileNetV3Small(input_shape=(96,96,3), alpha=0.5, weights=None, "
        "include_top=False, pooling='avg', include_preprocessing=True (Rescaling 1/127.5, -1)) "
        "-> Dense(10, softmax); input range [0,255]" + bn_note,
        "mobilenetv3s_050_96",
        int16_fallback=(
            "Pure 16x8 conversion fails in TF 2.21 ('Quantization to 16x8-bit not yet "
            "supported for op: HARD_SWISH'), so TFLITE_BUILTINS is added to "
            "supported_ops: every HARD_SWISH stays float32 between DEQUANTIZE "
            "(int16->float) and QUANTIZE (float->int16); everything else is 16x8."
        ),
    )
    # The mixed 16x8 variant is generated with --big only (its float/int16
    # vectors alone are 1.6 MB; the int16 kernels it uses are covered by the
    # other 16x8 models).
    mnv3_mixed = mnv3.pop()
    specs += mnv3

    fams["transformer"] = TransformerFamily()
    tcal = f"64 standard-normal token tensors (1,16,32), seed {BASE_SEED + 32}"
    specs += [
        Spec("transformer_block_float", "float", "transformer", "float", source=TRANSFORMER_SRC, calibration=None),
        Spec("transformer_block_int8_ptq", "int8_ptq", "transformer", "int8", source=TRANSFORMER_SRC, calibration=tcal),
        Spec(
            "transformer_block_int16x8",
            "int16x8",
            "transformer",
            "int16x8",
            source=TRANSFORMER_SRC + "; both LayerNormalizations rewritten as ManualLayerNorm "
            "(mean, sub, mul, mean, add eps, rsqrt, mul gamma, add beta; same weights)",
            calibration=tcal,
            opts={"manual_ln": True},
            notes=(
                "With keras LayerNormalization the 16x8 model converts but cannot run in LiteRT 2.3.0: "
                "its lowering has SQUARED_DIFFERENCE on int16 (no int16 kernel: 'SquaredDifference "
                "only supports FLOAT32 and INT32 now, got 7') and an int16 SUB whose first operand is the "
                "all-zero fused-batch-norm offset constant quantized with scale 0.0, which aborts the process "
                "(SIGABRT) in allocate_tensors. "
                "So this variant uses the equivalent manual LayerNorm (no SQUARED_DIFFERENCE)."
            ),
        ),
    ]

    for key, (_, desc, modes) in ONE_OPS.items():
        fam = OneOpFamily(key)
        fams[fam.name] = fam
        cal = "64 standard-normal samples per input (seeded)"
        weights = (
            "" if key == "batch_matmul_2act" else "; weights He-normal, bias N(0, 0.1^2) from a seeded numpy Generator"
        )
        src = desc + "; integer I/O (model is exactly one op)" + weights
        for mode in modes:
            if mode == "dynamic":
                specs.append(
                    Spec(
                        f"op_{key}_dynamic",
                        "one_op",
                        fam.name,
                        "dynamic",
                        source=desc + "; float I/O, dynamic-range quantized (model is exactly one op)" + weights,
                        calibration=DYNAMIC_CALIBRATION,
                    )
                )
            else:
                specs.append(
                    Spec(f"op_{key}_{mode}", "one_op", fam.name, mode, int_io=True, source=src, calibration=cal)
                )

    big_specs = []
    if big:
        big_specs.append(mnv3_mixed)
        big_specs += mobilenet(
            "mnv1_100_224",
            mnv1_100_224,
            BASE_SEED + 40,
            224,
            (-1.0, 1.0),
            "tf_keras.applications.MobileNet(input_shape=(224,224,3), alpha=1.0, weights=None, "
            "classes=1000); input range [-1,1]" + bn_note,
            "mobilenetv1_100_224",
        )
        big_specs += mobilenet(
            "mnv2_100_224",
            mnv2_100_224,
            BASE_SEED + 45,
            224,
            (-1.0, 1.0),
            "tf_keras.applications.MobileNetV2(input_shape=(224,224,3), alpha=1.0, weights=None, "
            "classes=1000); input range [-1,1]" + bn_note,
            "mobilenetv2_100_224",
        )
    return specs, big_specs, fams


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def versions():
    import importlib.metadata as md

    def v(p):
        try:
            return md.version(p)
        except Exception:
            return None

    return collections.OrderedDict(
        [
            ("python", "{}.{}.{}".format(*sys.version_info[:3])),
            ("tensorflow", tf.__version__),
            ("tf_keras", v("tf_keras")),
            ("keras (Keras 3, not used)", v("keras")),
            ("tensorflow-model-optimization", v("tensorflow-model-optimization")),
            ("ai-edge-litert", v("ai-edge-litert")),
            ("numpy", np.__version__),
            ("scikit-learn", v("scikit-learn")),
        ]
    )


def generate(spec, fam, out_dir):
    t0 = time.time()
    entry = collections.OrderedDict()
    entry["name"] = spec.name
    entry["kind"] = spec.kind
    entry["source"] = spec.source
    cf, trackable, rep, vec, vec_desc = fam.build(spec)
    entry["converter_flags"] = converter_flags(spec.mode, spec.int_io, len(rep), spec.fallback)
    entry["calibration"] = spec.calibration
    model = convert(cf, trackable, spec.mode, spec.int_io, rep, spec.fallback)
    mdir = os.path.join(out_dir, "models")
    vdir = os.path.join(out_dir, "vectors")
    os.makedirs(mdir, exist_ok=True)
    os.makedirs(vdir, exist_ok=True)
    mpath = os.path.join(mdir, spec.name + ".tflite")
    write_atomic(mpath, model)
    # Sanity: LiteRT output (dequantized) vs the TF function it came from.
    ref = tf.nest.flatten(cf(**{k: tf.constant(np.asarray(v, np.float32)) for k, v in vec.items()}))[0].numpy()
    info = flatbuffer_info(model)
    with_consts = len(model) <= CONSTS_IN_VECTORS_MAX_MODEL_BYTES
    arrays, it, n_t, skipped = run_vectors(model, vec, info, with_consts)
    od = it.get_output_details()[0]
    out = arrays["output_0"].astype(np.float64)
    if np.dtype(od["dtype"]) != np.float32:
        sc, zp = _quant(od)
        out = (out - zp[0]) * sc[0]
    err = float(np.max(np.abs(out - ref.reshape(out.shape))))
    rng_ref = float(np.max(np.abs(ref)))
    vpath = os.path.join(vdir, spec.name + ".npz")
    save_npz(vpath, arrays)
    rel = os.path.relpath(mpath, out_dir)
    entry["file"] = rel
    entry["sha256"] = sha256_bytes(model)
    entry["size"] = len(model)
    entry["inputs"] = io_desc(it.get_input_details(), {v: k for k, v in _sig_input_index(it).items()})
    entry["outputs"] = io_desc(it.get_output_details())
    entry["input_dtypes"] = [e["dtype"] for e in entry["inputs"]]
    entry["output_dtypes"] = [e["dtype"] for e in entry["outputs"]]
    entry["num_ops"] = info["num_ops"]
    entry["op_histogram"] = info["hist"]
    entry["num_tensors"] = info["num_tensors"]
    entry["num_constant_tensors"] = len(info["constants"])
    # Tensors with index >= num_tensors exist only in the interpreter (kernel
    # temporaries); they are not saved.
    entry["num_interpreter_tensors"] = n_t
    entry["vectors"] = collections.OrderedDict(
        [
            ("file", os.path.relpath(vpath, out_dir)),
            ("sha256", sha256_file(vpath)),
            ("samples", 1),
            ("sample_axis", False),
            ("input_source", vec_desc),
            ("tensors_saved", sum(1 for k in arrays if k.startswith("tensor_"))),
            ("constants_included", with_consts),
            ("tensors_skipped", skipped),
            ("resolver", "BUILTIN_REF, experimental_preserve_all_tensors=True"),
        ]
    )
    entry["output_0_max_abs_diff_vs_tf"] = float(f"{err:.4g}")
    if spec.notes:
        entry["notes"] = spec.notes
    log(
        f"  {spec.name:<42s} {len(model):8d} B  {entry['num_ops']:3d} ops  {time.time() - t0:5.1f}s  "
        f"|out-tf|max {err:.3g} (|tf|max {rng_ref:.3g})"
    )
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--big",
        action="store_true",
        help="also write golden/big/ (not committed): MobileNetV1/V2 224 and the mixed float/16x8 MobileNetV3",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="regenerate only these models (manifest entries are merged; golden/big names need --big)",
    )
    args = ap.parse_args()
    t_start = time.time()

    specs, big_specs, fams = registry(args.big)
    all_names = [s.name for s in specs] + [s.name for s in big_specs]
    if args.only:
        unknown = [n for n in args.only if n not in all_names and n != "digits_split"]
        if unknown:
            ap.error("unknown model(s): {}\nknown: {}".format(unknown, " ".join(all_names)))

    def wanted(s):
        return not args.only or s.name in args.only

    jobs = [(s, GOLDEN) for s in specs if wanted(s)] + [
        (s, os.path.join(GOLDEN, "big")) for s in big_specs if wanted(s)
    ]

    results = {GOLDEN: collections.OrderedDict(), os.path.join(GOLDEN, "big"): collections.OrderedDict()}
    failures = {}
    if not args.only or "digits_split" in args.only or any(s.family == "digits" for s, _ in jobs):
        p = write_digits_split()
        log(f"wrote {os.path.relpath(p, GOLDEN)}")
    for spec, out_dir in jobs:
        log(f"[{spec.name}]")
        try:
            results[out_dir][spec.name] = generate(spec, fams[spec.family], out_dir)
        except Exception as e:  # recorded in the manifest, not fatal
            import traceback

            traceback.print_exc(limit=-3)
            msg = "{}: {}".format(type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
            failures[spec.name] = msg
            results[out_dir][spec.name] = collections.OrderedDict(
                [
                    ("name", spec.name),
                    ("kind", spec.kind),
                    ("source", spec.source),
                    ("converter_flags", converter_flags(spec.mode, spec.int_io, N_CALIB, spec.fallback)),
                    ("failed", msg),
                ]
            )
            log(f"  FAILED: {msg}")
            for stale in (f"models/{spec.name}.tflite", f"vectors/{spec.name}.npz"):
                if os.path.exists(os.path.join(out_dir, stale)):
                    os.remove(os.path.join(out_dir, stale))

    if not args.only:  # full run: drop stale outputs of models no longer registered
        for out_dir, sub in ((GOLDEN, specs), (os.path.join(GOLDEN, "big"), big_specs)):
            if not sub:
                continue
            keep = {s.name for s in sub}
            for d, ext in (("models", ".tflite"), ("vectors", ".npz")):
                dd = os.path.join(out_dir, d)
                for fn in sorted(os.listdir(dd)) if os.path.isdir(dd) else []:
                    if fn.endswith(ext) and fn[: -len(ext)] not in keep:
                        os.remove(os.path.join(dd, fn))
                        log(f"removed stale {os.path.relpath(os.path.join(dd, fn), GOLDEN)}")

    order = {n: i for i, n in enumerate(all_names)}
    for out_dir in (GOLDEN, os.path.join(GOLDEN, "big")):
        new = results[out_dir]
        if not new:
            continue
        mpath = os.path.join(out_dir, "manifest.json")
        entries = collections.OrderedDict()
        if args.only and os.path.exists(mpath):
            with open(mpath) as f:
                for e in json.load(f, object_pairs_hook=collections.OrderedDict)["models"]:
                    entries[e["name"]] = e
        entries.update(new)
        models = sorted(entries.values(), key=lambda e: order.get(e["name"], 1 << 30))
        man = collections.OrderedDict()
        man["format"] = "refquant golden manifest v1"
        man["generator"] = "golden/make_golden.py"
        prov = collections.OrderedDict()
        prov["versions"] = versions()
        prov["seeds"] = collections.OrderedDict(
            [
                ("base_seed", BASE_SEED),
                (
                    "vector_seed",
                    "(base_seed + zlib.crc32(family)) % 2**31 (numpy default_rng); all variants of a "
                    "family get the same float input, so their outputs are comparable",
                ),
                ("keras", "tf_keras.utils.set_random_seed per family after clear_session"),
            ]
        )
        prov["determinism"] = (
            "tf.config.experimental.enable_op_determinism(), 1 inter/intra-op thread, "
            "TF_ENABLE_ONEDNN_OPTS=0, TF_USE_LEGACY_KERAS=1"
        )
        prov["vectors"] = (
            "LiteRT Interpreter(experimental_op_resolver_type=BUILTIN_REF, "
            "experimental_preserve_all_tensors=True, num_threads=1); one sample, no sample axis; keys "
            "input_<i>, output_<i> (input/output-detail order), tensor_<k> for every tensor k < "
            f"num_tensors of subgraph 0; constant tensors only if the model file is <= {CONSTS_IN_VECTORS_MAX_MODEL_BYTES} bytes "
            "(vectors.constants_included); interpreter-only temporaries (k >= num_tensors) never"
        )
        if out_dir == GOLDEN and os.path.exists(os.path.join(GOLDEN, "data", "digits_split.npz")):
            d = digits_split()
            prov["digits_split"] = collections.OrderedDict(
                [
                    ("file", "data/digits_split.npz"),
                    ("sha256", sha256_file(os.path.join(GOLDEN, "data", "digits_split.npz"))),
                    ("x", "float32 (540,8,8,1) = load_digits().images / 16 (range [0,1]); test split"),
                    ("y", "int64 (540,) labels"),
                    (
                        "split",
                        f"permutation = default_rng({BASE_SEED}).permutation(1797); first 540 -> test, rest -> train "
                        f"(both sorted); calib_idx = 64 of train via default_rng({BASE_SEED + 1}).choice",
                    ),
                    ("n_train", int(len(d["train_idx"]))),
                ]
            )
        man["provenance"] = prov
        man["models"] = models
        write_atomic(mpath, (json.dumps(man, indent=1) + "\n").encode())

    # summary
    log(f"\n{'name':<42s} {'bytes':>10s} {'#ops':>5s}  op histogram")
    for out_dir in (GOLDEN, os.path.join(GOLDEN, "big")):
        for name, e in results[out_dir].items():
            if "failed" in e:
                log(f"{name:<42s} {'-':>10s} {'-':>5s}  FAILED: {e['failed']}")
            else:
                h = " ".join(f"{k}:{v}" for k, v in e["op_histogram"].items())
                log(f"{name:<42s} {e['size']:10d} {e['num_ops']:5d}  {h}")
    log(f"\n{len(jobs)} models, {len(failures)} failed; total time {time.time() - t_start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
