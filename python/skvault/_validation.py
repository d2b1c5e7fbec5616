"""Validation samples: a few rows and the model's outputs on them, re-checked on load.

Labels (integer, bool, string, object outputs) must match exactly. Floating-point outputs
must satisfy ``|got - expected| <= ATOL + RTOL * |expected|`` elementwise (NaN equal to
NaN): loose enough for a different BLAS or CPU, tight enough to catch a changed model.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from skvault.exceptions import ValidationError

#: Rows kept by default.
MAX_ROWS = 100
RTOL = 1e-7
ATOL = 1e-10
#: Methods recorded when the estimator has them, in this order.
METHODS = ("predict", "predict_proba", "decision_function", "transform")


def _take_rows(X: Any, n: int) -> Any:
    if isinstance(X, np.ndarray):
        return X[:n].copy()
    if hasattr(X, "tocsr") and hasattr(X, "shape"):  # scipy sparse
        return X.tocsr()[:n]
    if isinstance(X, (list, tuple)):
        return list(X[:n])
    if hasattr(X, "iloc"):  # pandas: stored as a numpy array, rebuilt without pandas
        raise TypeError(
            "validation data frames are not supported yet: pass X.to_numpy() "
            "(the model then sees the same values without column names)"
        )
    return np.asarray(X)[:n].copy()


def _outputs(model: Any, X: Any) -> dict[str, Any]:
    outputs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in METHODS:
            fn = getattr(model, method, None)
            if not callable(fn):
                continue
            try:
                outputs[method] = fn(X)
            except Exception:  # e.g. predict_proba of a hard-voting classifier
                continue
    return outputs


def _target_summary(model: Any, y: Any) -> dict[str, Any]:
    y = np.asarray(y)
    if hasattr(model, "classes_") or y.dtype.kind in "OUSb":
        labels, counts = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_counts=True)
        return {"class_distribution": {str(k): int(c) for k, c in zip(labels, counts)}}
    y = y.astype(float)
    return {
        "target_summary": {
            "n": int(y.size),
            "min": float(np.nanmin(y)),
            "max": float(np.nanmax(y)),
            "mean": float(np.nanmean(y)),
            "std": float(np.nanstd(y)),
        }
    }


def build(model: Any, validation: Any, max_rows: int = MAX_ROWS) -> tuple[dict, dict]:
    """Returns (tree stored in the file, summary for the metadata record)."""
    y = None
    if isinstance(validation, tuple):
        if len(validation) != 2:
            raise TypeError("validation must be X or a tuple (X, y)")
        validation, y = validation
    X = _take_rows(validation, max_rows)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_rows == 0:
        raise ValueError("validation data has no rows")
    outputs = _outputs(model, X)
    if not outputs:
        raise ValueError(f"{type(model).__name__} has no method skvault can record on the validation rows")
    summary: dict[str, Any] = {"n_rows": int(n_rows), "methods": list(outputs), "rtol": RTOL, "atol": ATOL}
    if y is not None:
        summary.update(_target_summary(model, y))
    return {"X": X, "outputs": outputs}, summary


def _dense(a: Any) -> np.ndarray:
    if hasattr(a, "toarray"):
        a = a.toarray()
    return np.asarray(a)


def _compare(method: str, expected: Any, got: Any) -> None:
    if isinstance(expected, list):  # e.g. a list of arrays from a multi-output predict_proba
        if not isinstance(got, list) or len(got) != len(expected):
            raise ValidationError(method, len(expected), math.inf, "a different number of outputs")
        for e, g in zip(expected, got):
            _compare(method, e, g)
        return
    e, g = _dense(expected), _dense(got)
    if e.shape != g.shape:
        raise ValidationError(method, e.shape[0] if e.ndim else 1, math.inf, f"shape {g.shape} instead of {e.shape}")
    rows = lambda mask: int(mask.reshape(mask.shape[0], -1).any(axis=1).sum()) if mask.ndim else int(mask)  # noqa: E731
    if e.dtype.kind in "fc" and g.dtype.kind in "fcbiu":
        e64, g64 = e.astype(np.complex128 if e.dtype.kind == "c" else np.float64), g.astype(e.dtype)
        both_nan = np.isnan(e64) & np.isnan(g64)
        diff = np.where(both_nan, 0.0, np.abs(g64 - e64))
        bad = ~both_nan & ~(diff <= ATOL + RTOL * np.abs(e64))
        if bad.any():
            raise ValidationError(method, rows(bad), float(np.nanmax(np.where(bad, diff, 0.0))))
        return
    bad = e != g
    if np.any(bad):
        raise ValidationError(method, rows(np.asarray(bad)), None)


def check(model: Any, validation: dict) -> None:
    """Recompute the recorded outputs on the stored rows; raise ValidationError on a mismatch."""
    X = validation["X"]
    got = _outputs(model, X)
    for method, expected in validation["outputs"].items():
        if method not in got:
            raise ValidationError(method, 0, None, "the loaded model cannot compute it any more")
        _compare(method, expected, got[method])
