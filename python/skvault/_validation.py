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

from skvault._schema import is_dataframe
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
    if is_dataframe(X):  # kept as one
        return X.iloc[:n]
    return np.asarray(X)[:n].copy()


def _frame_column(name: str, series: Any) -> Any:
    """One column of a validation DataFrame as plain values the file can hold (numpy
    arrays, lists, strings), with what ``_rebuild_column`` needs to give it back its dtype."""
    dtype = series.dtype
    text = str(dtype)
    if text == "category":
        cats = series.cat.categories
        return {
            "codes": np.asarray(series.cat.codes, dtype=np.int64),
            "categories": cats.to_numpy(dtype=object) if cats.dtype.kind in "OUT" or str(cats.dtype) in ("str", "string") else cats.to_numpy(),
            "ordered": bool(series.cat.ordered),
        }
    kind = getattr(dtype, "kind", "O")
    if isinstance(dtype, np.dtype) and kind in "biuf":
        return series.to_numpy().copy()
    if kind in "biuf":  # pandas' nullable Int64, Float64, boolean: NaN where pd.NA
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind in "OUT" or text in ("str", "string"):
        values = series.to_numpy(dtype=object)
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            if type(v).__name__ == "NAType":
                v = None  # pd.NA in a "string" column; astype("string") gives it back
            elif not (v is None or isinstance(v, (str, bool, int, float))):
                raise TypeError(
                    f"validation column {name!r} holds a {type(v).__name__}: only text, numbers, "
                    "booleans and missing values can be stored"
                )
            out[i] = v
        return out
    raise TypeError(f"validation column {name!r} has dtype {text}, which skvault cannot store yet")


def frame_to_tree(X: Any) -> dict[str, Any]:
    """A DataFrame as the validation tree stores it (docs/FORMAT.md section 4)."""
    names = [str(c) for c in X.columns]
    if len(set(names)) != len(names) or not all(isinstance(c, str) for c in X.columns):
        raise TypeError("a validation DataFrame needs distinct string column names")
    return {
        "frame": {
            "columns": names,
            "dtypes": [str(t) for t in X.dtypes],
            "data": [_frame_column(n, X.iloc[:, i]) for i, n in enumerate(names)],
        }
    }


def _rebuild_column(pd: Any, data: Any, dtype: str) -> Any:
    if dtype == "category":
        return pd.Categorical.from_codes(data["codes"], categories=data["categories"], ordered=data["ordered"])
    if dtype in ("object",):
        return pd.Series(data, dtype=object)
    return pd.Series(data).astype(dtype)


def tree_to_frame(tree: dict[str, Any]) -> Any:
    """The DataFrame a validation tree stores (needs pandas, as the model it checks did)."""
    import pandas as pd

    frame = tree["frame"]
    columns = {
        name: _rebuild_column(pd, data, dtype)
        for name, dtype, data in zip(frame["columns"], frame["dtypes"], frame["data"])
    }
    return pd.DataFrame(columns)


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
    stored = frame_to_tree(X) if is_dataframe(X) else X
    outputs = _outputs(model, X)
    if not outputs:
        raise ValueError(f"{type(model).__name__} has no method skvault can record on the validation rows")
    summary: dict[str, Any] = {"n_rows": int(n_rows), "methods": list(outputs), "rtol": RTOL, "atol": ATOL}
    if y is not None:
        summary.update(_target_summary(model, y))
    return {"X": stored, "outputs": outputs}, summary


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
    if isinstance(X, dict) and "frame" in X:
        X = tree_to_frame(X)
    got = _outputs(model, X)
    for method, expected in validation["outputs"].items():
        if method not in got:
            raise ValidationError(method, 0, None, "the loaded model cannot compute it any more")
        _compare(method, expected, got[method])
