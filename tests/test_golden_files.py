"""Consistency of the committed golden/ files with golden/manifest.json.

Needs only numpy. If ai_edge_litert is importable, the stored vectors are also
re-checked against LiteRT's BUILTIN_REF kernels (bit-exact).
"""

import hashlib
import json
import os

import numpy as np
import pytest

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "golden")
MANIFEST = os.path.join(GOLDEN, "manifest.json")

pytestmark = pytest.mark.skipif(not os.path.exists(MANIFEST), reason="golden/manifest.json missing")


def _manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def _models():
    return _manifest()["models"] if os.path.exists(MANIFEST) else []


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


MODELS = _models()
IDS = [m["name"] for m in MODELS]
KINDS = {"float", "int8_ptq", "int8_qat", "int16x8", "one_op"}


def test_manifest_top_level():
    man = _manifest()
    prov = man["provenance"]
    for key in ("tensorflow", "tf_keras", "ai-edge-litert", "numpy"):
        assert prov["versions"][key]
    assert "seeds" in prov
    names = [m["name"] for m in man["models"]]
    assert len(names) == len(set(names))
    # Manifest and directories agree: no unlisted model / vector files.
    listed_models = {os.path.basename(m["file"]) for m in man["models"]}
    listed_vectors = {os.path.basename(m["vectors"]["file"]) for m in man["models"]}
    assert set(os.listdir(os.path.join(GOLDEN, "models"))) == listed_models
    assert set(os.listdir(os.path.join(GOLDEN, "vectors"))) == listed_vectors


def test_big_is_gitignored():
    with open(os.path.join(GOLDEN, ".gitignore")) as f:
        assert "/big/" in f.read().split()


@pytest.mark.parametrize("entry", MODELS, ids=IDS)
def test_model_entry(entry):
    assert "failed" not in entry, entry.get("failed")
    assert entry["kind"] in KINDS
    assert entry["name"] == os.path.splitext(os.path.basename(entry["file"]))[0]
    path = os.path.join(GOLDEN, entry["file"])
    assert os.path.getsize(path) == entry["size"]
    assert _sha256(path) == entry["sha256"]
    assert sum(entry["op_histogram"].values()) == entry["num_ops"]
    assert [i["dtype"] for i in entry["inputs"]] == entry["input_dtypes"]
    assert [o["dtype"] for o in entry["outputs"]] == entry["output_dtypes"]
    if entry["kind"] == "one_op":
        assert entry["num_ops"] == 1
    if entry["kind"] == "float":
        assert "QUANTIZE" not in entry["op_histogram"]


@pytest.mark.parametrize("entry", MODELS, ids=IDS)
def test_vector_file(entry):
    vec = entry["vectors"]
    path = os.path.join(GOLDEN, vec["file"])
    assert _sha256(path) == vec["sha256"]
    with np.load(path, allow_pickle=False) as d:
        keys = set(d.files)
        for prefix, ios in (("input", entry["inputs"]), ("output", entry["outputs"])):
            for i, io in enumerate(ios):
                a = d[f"{prefix}_{i}"]
                assert a.dtype == np.dtype(io["dtype"]), (prefix, i)
                assert list(a.shape) == io["shape"], (prefix, i)
                # input_i / output_i are also present as tensor_<index>.
                np.testing.assert_array_equal(a, d[f"tensor_{io['index']}"])
            assert f"{prefix}_{len(ios)}" not in keys
        tensor_ids = sorted(int(k[7:]) for k in keys if k.startswith("tensor_"))
    assert len(tensor_ids) == vec["tensors_saved"]
    assert all(0 <= k < entry["num_tensors"] for k in tensor_ids)
    n_const = entry["num_constant_tensors"]
    expected = entry["num_tensors"] - len(vec["tensors_skipped"]) - (0 if vec["constants_included"] else n_const)
    assert len(tensor_ids) == expected


def test_digits_split():
    man = _manifest()
    info = man["provenance"]["digits_split"]
    path = os.path.join(GOLDEN, info["file"])
    assert _sha256(path) == info["sha256"]
    with np.load(path) as d:
        x, y = d["x"], d["y"]
        test_idx, train_idx, calib_idx = d["test_idx"], d["train_idx"], d["calib_idx"]
    assert x.dtype == np.float32 and x.shape == (540, 8, 8, 1)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int64 and y.shape == (540,) and set(np.unique(y)) == set(range(10))
    assert len(test_idx) == 540 and len(train_idx) == 1797 - 540
    assert not set(test_idx) & set(train_idx)
    assert set(calib_idx) <= set(train_idx)


@pytest.mark.oracle
@pytest.mark.parametrize("entry", MODELS, ids=IDS)
def test_vectors_match_litert_builtin_ref(entry):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=os.path.join(GOLDEN, entry["file"]),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
        num_threads=1,
    )
    it.allocate_tensors()
    with np.load(os.path.join(GOLDEN, entry["vectors"]["file"])) as d:
        for i, det in enumerate(it.get_input_details()):
            assert det["index"] == entry["inputs"][i]["index"]
            it.set_tensor(det["index"], d[f"input_{i}"])
        it.invoke()
        for i, det in enumerate(it.get_output_details()):
            np.testing.assert_array_equal(it.get_tensor(det["index"]), d[f"output_{i}"])
        for k in d.files:
            if k.startswith("tensor_"):
                np.testing.assert_array_equal(it.get_tensor(int(k[7:])), d[k], err_msg=k)
