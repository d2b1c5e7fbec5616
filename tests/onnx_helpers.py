"""Shared helpers of the ONNX export tests: export a fitted estimator, check the model
with onnx.checker, run it in onnxruntime and compare with scikit-learn.

EXPORT_RTOL is the documented tolerance of the double paths (docs/EXPORT.md).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort

import skvault
from native_helpers import threshold_rows, tree_thresholds

EXPORT_RTOL = 1e-12
# Absolute floor for values that are (near) zero, where a relative bound means nothing.
EXPORT_ATOL = 1e-15


def session(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(sess, X):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"X": np.ascontiguousarray(X, dtype=np.float64)})))


def export(est, tmp_path, name="m"):
    out = tmp_path / f"{name}.onnx"
    skvault.export_onnx(est, out)
    return session(out)


def with_threshold_rows(est, X_test):
    if isinstance(getattr(est, "estimators_", None), np.ndarray):  # GradientBoosting: (stages, k)
        pairs = [p for t in est.estimators_.ravel() for p in tree_thresholds(t)]
    elif hasattr(est, "tree_") or hasattr(est, "estimators_"):
        pairs = tree_thresholds(est)
    else:
        pairs = []
    extra = threshold_rows(X_test, pairs, limit=200)
    return np.vstack([X_test, extra]) if len(extra) else X_test


def check_classifier(est, X, sess, meta):
    got = run(sess, X)
    expected_labels = est.predict(X)
    np.testing.assert_array_equal(got["label"], expected_labels)
    if "probabilities" in got:
        np.testing.assert_allclose(got["probabilities"], est.predict_proba(X), rtol=EXPORT_RTOL, atol=EXPORT_ATOL)
        assert got["probabilities"].dtype == np.float64
    assert json.loads(meta["skvault.classes"]) == [str(c) for c in est.classes_]


def check_regressor(est, X, sess):
    got = run(sess, X)["prediction"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, est.predict(X), rtol=EXPORT_RTOL, atol=EXPORT_ATOL)


def meta(model):
    return {p.key: p.value for p in model.metadata_props}
