"""Reading, writing and round-tripping .tflite models; agreement with LiteRT's view of them."""

from __future__ import annotations

import numpy as np
import pytest

import refquant
from refquant.errors import ModelFormatError
from refquant.inspect import model_summary
from refquant.tflite.builder import ModelBuilder
from refquant.tflite.writer import write_model
from tests.golden_models import model_names, model_path, vectors_path

GOLDEN = model_names()


def _small_conv() -> bytes:
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_input("x", (1, 5, 5, 3), "int8", scale=0.05, zero_point=-3)
    ws = np.array([0.01, 0.02, 0.005, 0.03], np.float32)
    w = b.add_constant("w", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), scale=ws, zero_point=0)
    bias = b.add_constant("b", rng.integers(-1000, 1000, 4).astype(np.int32), scale=0.05 * ws, zero_point=0)
    y = b.add_tensor("y", (1, 5, 5, 4), "int8", scale=0.1, zero_point=2)
    b.add_operator(
        "CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=1, stride_h=1, fused_activation_function="RELU6"
    )
    b.mark_output(y)
    b.add_signature("serving_default", {"x": x}, {"y": y})
    return b.build()


def test_builder_roundtrip_is_byte_stable():
    data = _small_conv()
    m = refquant.load_model(data)
    assert write_model(m) == data
    op = m.main.operators[0]
    assert op.opcode == "CONV_2D" and op.options["padding"] == "SAME"
    assert op.options["fused_activation_function"] == "RELU6"
    w = m.main.tensors[1]
    assert w.data is not None and not w.data.flags.writeable and w.data.dtype == np.int8
    assert w.quantization is not None and w.quantization.per_channel
    assert m.signatures[0].key == "serving_default"


def test_constant_data_is_zero_copy():
    data = _small_conv()
    m = refquant.load_model(data)
    w = m.main.tensors[1].data
    assert w is not None and w.base is not None and not w.flags.owndata


def test_int4_constants_unpack_and_repack():
    b = ModelBuilder()
    vals = np.array([[-8, 7, 0], [1, -1, 3]], np.int8)
    c = b.add_constant("w4", vals, dtype="int4", scale=0.5, zero_point=0)
    x = b.add_input("x", (2, 3), "float32")
    y = b.add_tensor("y", (2, 3), "float32")
    b.add_operator("ADD", [x, x], [y])
    b.mark_output(y)
    m = refquant.load_model(b.build())
    assert m.main.tensors[c].dtype == "int4"
    np.testing.assert_array_equal(m.main.tensors[c].data, vals)
    assert refquant.load_model(write_model(m)) == m


def test_offset_buffers_are_read():
    """Buffers stored after the flatbuffer (Buffer.offset/size), as ai-edge-quantizer writes them."""
    from refquant.tflite import flatbuf

    data = _small_conv()
    root, _ = flatbuf.decode_model_tables(data)
    m = refquant.load_model(data)
    w = m.main.tensors[1]
    # Re-encode with the weight buffer moved after the flatbuffer.
    from refquant.tflite.writer import _Encoder, _schema

    payload = w.data.tobytes()
    root = _to_plain(root)
    enc = _Encoder(len(data) + 1024)
    root["buffers"][w.buffer] = {"offset": 0, "size": len(payload)}
    enc.b.Finish(enc.table("Model", root), file_identifier=_schema.FILE_IDENTIFIER.encode())
    head = bytes(enc.b.Output())
    pad = (-len(head)) % 16
    offset = len(head) + pad
    root["buffers"][w.buffer] = {"offset": offset, "size": len(payload)}
    enc = _Encoder(len(data) + 1024)
    enc.b.Finish(enc.table("Model", root), file_identifier=_schema.FILE_IDENTIFIER.encode())
    head2 = bytes(enc.b.Output())
    assert len(head2) == len(head)
    full = head2 + b"\0" * pad + payload
    m2 = refquant.load_model(full)
    np.testing.assert_array_equal(m2.main.tensors[1].data, w.data)
    with pytest.raises(ModelFormatError, match="outside the file"):
        refquant.load_model(full[:-1])


def _to_plain(d):
    if isinstance(d, dict):
        return {k: _to_plain(v) for k, v in d.items()}
    if isinstance(d, tuple) and len(d) == 2 and isinstance(d[0], str) and isinstance(d[1], dict):
        return (d[0], _to_plain(d[1]))
    if isinstance(d, tuple):
        return [_to_plain(v) for v in d]
    return d


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_roundtrip(name):
    data = model_path(name).read_bytes()
    m = refquant.load_model(data)
    again = refquant.load_model(write_model(m))
    assert again == m


@pytest.mark.oracle
@pytest.mark.parametrize("name", GOLDEN)
def test_litert_runs_written_model_identically(name, litert):
    data = model_path(name).read_bytes()
    vec = np.load(vectors_path(name))
    inputs = [vec[k] for k in sorted((k for k in vec.files if k.startswith("input_")), key=lambda s: int(s[6:]))]
    if vec.get("samples") is not None:
        pytest.skip("multi-sample vectors")
    written = write_model(refquant.load_model(data))
    a = litert.run(data, inputs, all_tensors=False)
    b = litert.run(written, inputs, all_tensors=False)
    assert a.status == b.status == "ok"
    for x, y in zip(a.outputs, b.outputs):
        np.testing.assert_array_equal(x, y)


@pytest.mark.oracle
@pytest.mark.parametrize("name", GOLDEN)
def test_inspect_agrees_with_litert(name):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = model_path(name).read_bytes()
    summary = model_summary(refquant.load_model(data))
    it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    ops = it._get_ops_details()
    mine = summary["subgraphs"][0]["operators"]
    assert [o["op_name"] for o in ops] == [o["opcode"] for o in mine]
    for o, m in zip(ops, mine):
        assert list(o["inputs"]) == m["inputs"]
        assert list(o["outputs"]) == m["outputs"]
    tensors = summary["subgraphs"][0]["tensors"]
    for d in it.get_input_details():
        t = tensors[d["index"]]
        assert t["shape"] == list(d["shape"])
        assert t["dtype"] == np.dtype(d["dtype"]).name
        qp = d["quantization_parameters"]
        if t["quantization"] is not None:
            np.testing.assert_array_equal(np.float32(t["quantization"]["scale"]), qp["scales"])
            np.testing.assert_array_equal(t["quantization"]["zero_point"], qp["zero_points"])


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "at least 8"),
        (b"\x00" * 7, "at least 8"),
        (b"\x08\x00\x00\x00XXXX" + b"\x00" * 16, "identifier"),
        (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 16, "outside the file"),
        (b"\x08\x00\x00\x00TFL3\x00\x00\x00\x80" + b"\x00" * 8, "outside the file"),
    ],
)
def test_malformed_headers(data, match):
    with pytest.raises(ModelFormatError, match=match):
        refquant.load_model(data)


def test_truncations_all_raise_model_format_error():
    data = _small_conv()
    for n in range(0, len(data), 7):
        with pytest.raises(ModelFormatError):
            refquant.load_model(data[:n])


def test_dangling_and_cyclic_graphs():
    b = ModelBuilder()
    x = b.add_input("x", (2,), "float32")
    y = b.add_tensor("y", (2,), "float32")
    z = b.add_tensor("z", (2,), "float32")
    b.add_operator("ADD", [x, z], [y])  # z produced later: a cycle / out of order
    b.add_operator("ADD", [x, y], [z])
    b.mark_output(z)
    with pytest.raises(ModelFormatError, match="produces later"):
        refquant.load_model(b.build())
    b = ModelBuilder()
    x = b.add_input("x", (2,), "float32")
    w = b.add_tensor("w", (2,), "float32")  # never produced
    y = b.add_tensor("y", (2,), "float32")
    b.add_operator("ADD", [x, w], [y])
    b.mark_output(y)
    with pytest.raises(ModelFormatError, match="dangling"):
        refquant.load_model(b.build())


def test_buffer_size_must_match_shape():
    b = ModelBuilder()
    c = b.add_constant("c", np.zeros(4, np.float32))
    m = b.model()
    t = m.main.tensors[c]
    import dataclasses

    bad = dataclasses.replace(t, shape=(5,))
    m2 = dataclasses.replace(m, subgraphs=(dataclasses.replace(m.main, tensors=(bad,)),))
    with pytest.raises(ModelFormatError, match="needs 20"):
        refquant.load_model(write_model(m2))


def test_load_model_bad_path(tmp_path):
    with pytest.raises(refquant.InputError, match="cannot read"):
        refquant.load_model(tmp_path / "missing.tflite")
