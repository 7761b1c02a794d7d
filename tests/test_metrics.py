"""refquant.metrics: every metric against hand-computed values, and streaming == one-shot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from refquant import metrics as M
from refquant.metrics import ErrorAccumulator, error_metrics, json_number

# q = [1, 2, 3, 4], r = [1, 2, 3, 5]: e = [0, 0, 0, -1]
Q = np.array([1.0, 2.0, 3.0, 4.0])
R = np.array([1.0, 2.0, 3.0, 5.0])


def test_mse():
    assert M.mse(Q, R) == 0.25


def test_max_abs_error():
    assert M.max_abs_error(Q, R) == 1.0


def test_mean_error():
    assert M.mean_error(Q, R) == -0.25


def test_sqnr_db():  # 10 log10((1 + 4 + 9 + 25) / 1)
    assert M.sqnr_db(Q, R) == pytest.approx(10 * math.log10(39.0), abs=1e-12)


def test_cosine():  # (1 + 4 + 9 + 20) / sqrt(30 * 39)
    assert M.cosine(Q, R) == pytest.approx(34 / math.sqrt(30 * 39), abs=1e-15)


def test_rmse_lsb():  # sqrt(0.25) / 0.5
    assert M.rmse_lsb(Q, R, 0.5) == 1.0


def test_max_abs_error_lsb():
    assert M.max_abs_error_lsb(Q, R, 0.5) == 2.0


def test_accumulator_matches_hand_values():
    m = error_metrics(Q, R, scale=0.5)
    assert (m.count, m.mse, m.max_abs_error, m.mean_error, m.rmse_lsb, m.max_abs_error_lsb) == (4, 0.25, 1, -0.25, 1, 2)
    assert m.sqnr_db == pytest.approx(10 * math.log10(39.0))
    assert m.cosine == pytest.approx(34 / math.sqrt(1170))


def test_sqnr_exact_tensor_is_inf_and_json_sentinel():
    m = error_metrics(Q, Q, scale=1.0)
    assert m.sqnr_db == math.inf and m.mse == 0 and m.cosine == pytest.approx(1.0)
    assert m.to_dict()["sqnr_db"] == M.SQNR_INF_DB == 999.0


def test_sqnr_zero_signal_nonzero_error_is_minus_inf():
    m = error_metrics([1.0, 0.0], [0.0, 0.0])
    assert m.sqnr_db == -math.inf
    assert m.to_dict()["sqnr_db"] == -999.0


def test_cosine_conventions():
    assert M.cosine([0.0, 0.0], [0.0, 0.0]) == 1.0
    assert M.cosine([1.0, 0.0], [0.0, 0.0]) == 0.0
    assert M.cosine([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)


def test_all_zero_is_exact():
    m = error_metrics(np.zeros(3), np.zeros(3), scale=0.1)
    assert m.sqnr_db == math.inf and m.cosine == 1.0 and m.rmse_lsb == 0.0


def test_json_number():
    assert json_number(math.inf) == 999.0
    assert json_number(-math.inf) == -999.0
    assert json_number(math.nan) is None
    assert json_number(None) is None
    assert json_number(np.float32(0.5)) == 0.5 and type(json_number(np.float32(0.5))) is float


def test_nan_makes_metrics_null():
    m = error_metrics([np.nan, 1.0], [0.0, 1.0], scale=1.0)
    d = m.to_dict()
    assert d["sqnr_db"] is None and d["cosine"] is None and d["max_abs_error"] is None
    json.dumps(d, allow_nan=False)


def test_per_channel_hand_values():
    # channel axis 1: channel 0 has r = [1, 3], e = [0, 1]; channel 1 has r = [2, 4], e = [0, 0]
    r = np.array([[1.0, 2.0], [3.0, 4.0]])
    q = np.array([[1.0, 2.0], [4.0, 4.0]])
    m = error_metrics(q, r, scale=0.5, axis=1)
    pc = m.per_channel
    assert pc is not None and pc.axis == 1
    assert pc.sqnr_db[0] == pytest.approx(10 * math.log10(10.0))
    assert pc.sqnr_db[1] == math.inf
    assert pc.rmse_lsb is not None
    assert pc.rmse_lsb[0] == pytest.approx(math.sqrt(0.5) / 0.5)
    assert pc.rmse_lsb[1] == 0.0
    assert pc.to_dict() == {
        "axis": 1,
        "sqnr_db": [pytest.approx(10.0), 999.0],
        "rmse_lsb": [pytest.approx(2**0.5), 0.0],
    }
    assert m.worst_channel_sqnr_db == pytest.approx(10.0)


def test_per_channel_axis_not_last():
    rng = np.random.default_rng(1)
    r = rng.standard_normal((3, 4, 5))
    q = r + 0.01 * rng.standard_normal(r.shape)
    m = error_metrics(q, r, scale=0.1, axis=1)
    for c in range(4):
        assert m.per_channel.sqnr_db[c] == pytest.approx(M.sqnr_db(q[:, c], r[:, c]))
        assert m.per_channel.rmse_lsb[c] == pytest.approx(M.rmse_lsb(q[:, c], r[:, c], 0.1))


def test_per_channel_scales_make_lsb_figures_per_channel():
    # channel steps 0.5 and 2; errors 1 (2 LSB) in channel 0 and 1 (0.5 LSB) in channel 1
    r = np.zeros((1, 2))
    q = np.array([[1.0, 1.0]])
    m = error_metrics(q, r, scale=[0.5, 2.0], axis=1)
    assert m.rmse_lsb == pytest.approx(math.sqrt((2.0**2 + 0.5**2) / 2))
    assert m.max_abs_error_lsb == pytest.approx(2.0)
    assert list(m.per_channel.rmse_lsb) == [pytest.approx(2.0), pytest.approx(0.5)]


def test_error_histogram_buckets():
    r = np.zeros(8)
    q = np.array([0.0, 0.3, -0.3, 0.6, 1.2, 2.0, -3.1, 10.0])  # scale 1: |e| rounds to 0,0,0,1,1,2,3,10
    m = error_metrics(q, r, scale=1.0)
    assert m.abs_error_lsb_counts() == [3, 2, 1, 2]
    assert m.histogram.sum() == 8
    assert m.histogram[-1] == 1  # 10 LSB is beyond the last edge


def test_clipped_fraction():
    # representable [-1, 1] with step 0.1: outside by more than 0.05 counts
    r = np.array([-1.2, -1.04, 0.0, 1.06, 2.0])
    m = error_metrics(np.clip(r, -1, 1), r, scale=0.1, qrange=(-1.0, 1.0))
    assert m.clipped_fraction == pytest.approx(3 / 5)


def test_rounding_alone_is_one_over_sqrt12_lsb():
    rng = np.random.default_rng(0)
    r = rng.uniform(-50, 50, 200_000)
    s = 0.37
    q = np.floor(r / s + 0.5) * s
    m = error_metrics(q, r, scale=s)
    assert m.rmse_lsb == pytest.approx(M.ROUNDING_RMSE_LSB, rel=0.01)
    assert m.max_abs_error_lsb <= 0.5 + 1e-9


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(2)
    r = rng.standard_normal((10, 6, 3)).astype(np.float32)
    q = (r + 0.05 * rng.standard_normal(r.shape)).astype(np.float32)
    acc = ErrorAccumulator(0.05, 2, (-2.0, 2.0))
    for k in range(0, 10, 3):
        acc.update(q[k : k + 3], r[k : k + 3])
    a, b = acc.result(), error_metrics(q, r, scale=0.05, axis=2, qrange=(-2.0, 2.0))
    for key in ("count", "mse", "max_abs_error", "mean_error", "sqnr_db", "cosine", "rmse_lsb", "clipped_fraction"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-12), key
    np.testing.assert_allclose(a.per_channel.sqnr_db, b.per_channel.sqnr_db, rtol=1e-12)
    np.testing.assert_array_equal(a.histogram, b.histogram)


def test_no_scale_no_lsb_figures():
    m = error_metrics(Q, R)
    assert m.rmse_lsb is None and m.max_abs_error_lsb is None and m.histogram is None
    assert m.to_dict()["abs_error_lsb_counts"] is None


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="shapes differ"):
        error_metrics(np.zeros(3), np.zeros(4))


def test_empty_accumulator():
    m = ErrorAccumulator(1.0).result()
    assert m.count == 0 and math.isnan(m.mse)
