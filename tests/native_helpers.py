"""Helpers of the native-inference parity tests: data sets, edge rows, live comparison.

Every expected value comes from scikit-learn itself, on the same rows, in the same process.
"""

from __future__ import annotations

import numpy as np

import skvault
import skvault.native


def datasets(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """name -> (X_train, y_train, X_test). Targets: binary, multiclass (3 and 12 classes),
    regression, and the same with NaN in X."""
    rng = np.random.RandomState(seed)
    n, d = 400, 6
    X = rng.randn(n, d)
    X[:, 3] = rng.randint(0, 4, n)  # a discrete column: many ties, thresholds at .5
    Xt = rng.randn(250, d)
    Xt[:, 3] = rng.randint(0, 4, 250)
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + 0.3 * X[:, 3]
    out = {
        "binary": (X, (score > 0.2).astype(np.int64), Xt),
        "multiclass": (X, np.digitize(score, [-0.8, 0.4]), Xt),
        "many_classes": (X, np.digitize(score, np.linspace(-2, 2, 11)), Xt),
        "regression": (X, score + 0.1 * rng.randn(n), Xt),
    }
    Xn, Xtn = X.copy(), Xt.copy()
    Xn[rng.rand(*X.shape) < 0.15] = np.nan
    Xtn[rng.rand(*Xt.shape) < 0.15] = np.nan
    out["binary_nan"] = (Xn, out["binary"][1], Xtn)
    out["regression_nan"] = (Xn, out["regression"][1], Xtn)
    return out


def one_hot_encoders() -> dict:
    """name -> factory of the OneHotEncoder settings the encoder tests cover."""
    from sklearn.preprocessing import OneHotEncoder

    return {
        "plain": lambda: OneHotEncoder(),
        "drop-first": lambda: OneHotEncoder(drop="first", sparse_output=False),
        "if-binary-ignore": lambda: OneHotEncoder(drop="if_binary", handle_unknown="ignore"),
        "ignore": lambda: OneHotEncoder(handle_unknown="ignore"),
    }


def encoder_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X_fit, X_known, X_unknown) for the encoders: three numeric categorical columns, NaN a
    category of its own in column 1, -0.0 among the held-out values (it matches 0.0), and
    X_unknown = X_known with the unseen category 9 in every third row of column 0."""

    def columns(seed: int, n: int) -> np.ndarray:
        rng = np.random.RandomState(seed)
        X = np.column_stack([rng.randint(0, 4, n), rng.choice([-1.5, 0.0, 2.0], n), rng.randint(5, 8, n)])
        return X.astype(float)

    X = columns(0, 300)
    X[::7, 1] = np.nan
    Xt = columns(1, 80)
    Xt[::5, 1] = np.nan
    Xt[::9, 1] = -0.0
    unknown = Xt.copy()
    unknown[::3, 0] = 9.0
    return X, Xt, unknown


def tree_thresholds(model) -> list[tuple[int, float]]:
    """(feature, threshold) of the split nodes of a tree model or of a forest's trees."""
    trees = [e.tree_ for e in getattr(model, "estimators_", [model])]
    pairs = []
    for t in trees:
        split = t.children_left >= 0
        # A split of missing values from all others has an infinite threshold.
        split &= np.isfinite(t.threshold)
        pairs.extend(zip(t.feature[split].tolist(), t.threshold[split].tolist()))
    return pairs


def threshold_rows(X: np.ndarray, pairs, limit: int = 300, seed: int = 1) -> np.ndarray:
    """Rows of X with one feature set exactly at a threshold, at its float32 rounding and at
    the neighbouring float32 values: where `float32(x) <= threshold` decides."""
    rng = np.random.RandomState(seed)
    if not pairs:
        return X[:0]
    pick = rng.choice(len(pairs), size=min(limit, len(pairs)), replace=False)
    rows = []
    for k in pick:
        f, t = pairs[k]
        t32 = np.float32(t)
        for v in (t, float(t32), float(np.nextafter(t32, np.float32(np.inf))),
                  float(np.nextafter(t32, np.float32(-np.inf))), np.nextafter(t, np.inf)):
            row = X[rng.randint(len(X))].copy()
            row[f] = v
            rows.append(row)
    return np.array(rows)


def roundtrip(model, tmp_path, name: str = "model.skv", compress=None) -> skvault.native.NativeModel:
    path = tmp_path / name
    skvault.dump(model, path, compress=compress)
    return skvault.native.load(path)


def assert_same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Bit-identical: same shape, same dtype, same values (NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    if a.dtype.kind == "f":
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        same = np.array_equal(a.view(np.uint8), b.view(np.uint8)) or np.array_equal(
            a, b, equal_nan=True
        )
    else:
        same = np.array_equal(a, b)
    if not same:
        bad = np.argwhere(a != b) if a.dtype.kind != "f" else np.argwhere(~np.isclose(a, b, 0, 0))
        raise AssertionError(f"{what}: {len(bad)} values differ, first at {bad[:3].tolist()}")


def assert_both_raise(fn_sklearn, fn_native, exc=ValueError) -> None:
    """scikit-learn refuses the input, and so does native inference (same exception class)."""
    try:
        fn_sklearn()
    except exc:
        pass
    else:
        raise AssertionError("scikit-learn accepted the input")
    try:
        fn_native()
    except exc:
        return
    raise AssertionError("native inference accepted an input scikit-learn refuses")


def assert_close(a: np.ndarray, b: np.ndarray, what: str, rtol: float, atol: float = 0.0) -> float:
    """Within a documented tolerance; returns the largest relative difference seen."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NaN in different places"
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=rtol, atol=atol, err_msg=what)
    denom = np.maximum(np.abs(b[ok]), 1e-300)
    return float(np.max(np.abs(a[ok] - b[ok]) / denom)) if ok.any() else 0.0
