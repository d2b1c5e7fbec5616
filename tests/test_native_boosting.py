"""Native gradient boosting (classic and histogram) and IsolationForest, compared live
with scikit-learn: bit-identical sums; probabilities through the same link functions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
)

import skvault
from native_helpers import (
    assert_both_raise,
    assert_same,
    datasets,
    roundtrip,
    threshold_rows,
    tree_thresholds,
)

DATA = datasets()


@pytest.fixture(autouse=True)
def _one_thread():
    """HistGradientBoosting fits with OpenMP; on a busy 2-core machine one thread is faster."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _gb_rows(model, Xt):
    trees = [t for t in model.estimators_.ravel()]
    pairs = []
    for t in trees:
        pairs.extend(tree_thresholds(t))
    return np.vstack([Xt, threshold_rows(Xt, pairs)])


@pytest.mark.parametrize("data", ["binary", "multiclass"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=20, init="zero", max_depth=2, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=20, subsample=0.7, max_features=3, random_state=0),
    ],
    ids=["default", "init-zero", "subsample"],
)
def test_gradient_boosting_classifier(tmp_path, make, data):
    X, y, Xt = DATA[data]
    model = make().fit(X, np.array(["u", "v", "w"])[y])
    native = roundtrip(model, tmp_path)
    rows = _gb_rows(model, Xt)
    assert_same(native.decision_function(rows), model.decision_function(rows), "decision_function")
    assert_same(native.predict(rows), model.predict(rows), "predict")
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "quantile"])
def test_gradient_boosting_regressor(tmp_path, loss):
    X, y, Xt = DATA["regression"]
    model = GradientBoostingRegressor(n_estimators=25, loss=loss, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = _gb_rows(model, Xt)
    assert_same(native.predict(rows), model.predict(rows), "predict")


@pytest.mark.parametrize("value", [np.nan, np.inf, -1e300])
def test_gradient_boosting_refuses_nan_and_inf_like_sklearn(tmp_path, value):
    X, y, Xt = DATA["binary"]
    model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    bad = Xt[:3].copy()
    bad[0, 0] = value
    assert_both_raise(lambda: model.predict(bad), lambda: native.predict(bad))


def test_gradient_boosting_many_classes(tmp_path):
    """12 classes: the init link (gmean) and softmax sum rows of 12 with numpy's pairwise sum."""
    X, y, Xt = DATA["many_classes"]
    model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    assert_same(native.decision_function(Xt), model.decision_function(Xt), "decision_function")
    assert_same(native.predict_proba(Xt), model.predict_proba(Xt), "predict_proba")


def _hist_rows(Xt, rng):
    rows = Xt.copy()
    rows[rng.rand(*rows.shape) < 0.1] = np.nan
    extra = rows[:40].copy()
    extra[:10, 0] = np.inf
    extra[10:20, 1] = -np.inf
    return np.vstack([rows, extra])


@pytest.mark.parametrize("data", ["binary", "multiclass", "many_classes", "binary_nan"])
def test_hist_gradient_boosting_classifier(tmp_path, data):
    X, y, Xt = DATA[data]
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = _hist_rows(Xt, np.random.RandomState(0))
    assert_same(native.decision_function(rows), model.decision_function(rows), "decision_function")
    assert_same(native.predict(rows), model.predict(rows), "predict")
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")


def test_hist_gradient_boosting_rows_at_every_threshold(tmp_path):
    """Rows with a value at each split's float64 threshold and one float64 step to either
    side, and NaN in the same column (batches of 8 rows and more take the integer-coded
    walk, whose codes come from these thresholds): bit-identical raw sums."""
    X, y, Xt = DATA["binary_nan"]
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = []
    for predictors in model._predictors:
        for p in predictors:
            splits = p.nodes[p.nodes["is_leaf"] == 0]
            for f, t in zip(splits["feature_idx"], splits["num_threshold"]):
                for v in (np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf), np.nan):
                    row = Xt[len(rows) % len(Xt)].copy()
                    row[f] = v
                    rows.append(row)
    rows = np.array(rows)
    assert len(rows) > 1000
    assert_same(native.decision_function(rows), model.decision_function(rows), "decision_function")
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "poisson", "gamma", "quantile"])
def test_hist_gradient_boosting_regressor(tmp_path, loss):
    X, y, Xt = DATA["regression_nan"]
    y = np.exp(y / 3) if loss in ("poisson", "gamma") else y
    kw = {"quantile": 0.3} if loss == "quantile" else {}
    model = HistGradientBoostingRegressor(max_iter=30, loss=loss, random_state=0, **kw).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = _hist_rows(Xt, np.random.RandomState(1))
    assert_same(native.predict(rows), model.predict(rows), "predict")


def _categorical_data(seed=0, n=500):
    rng = np.random.RandomState(seed)
    X = np.column_stack([rng.randn(n), rng.randint(0, 12, n), rng.randn(n), rng.randint(0, 3, n)])
    X = X.astype(float)
    X[rng.rand(n) < 0.05, 1] = np.nan
    y = ((X[:, 1] % 3 == 0) ^ (X[:, 0] > 0.3)).astype(int) + (X[:, 3] == 2)
    return X, y


@pytest.mark.parametrize("categorical", [[1, 3], [False, True, False, True]], ids=["indices", "mask"])
def test_hist_gradient_boosting_categorical(tmp_path, categorical):
    X, y = _categorical_data()
    model = HistGradientBoostingClassifier(
        max_iter=30, categorical_features=categorical, random_state=0
    ).fit(X, y)
    native = roundtrip(model, tmp_path)
    Xt, _ = _categorical_data(1, 300)
    # Unknown categories (12, 40), negative ones, NaN, and values beyond a byte.
    Xt[:20, 1] = [12, 40, -1, -0.5, np.nan, 3.7, 255, 256, 300, 1e10] * 2
    assert_same(native.predict_proba(Xt), model.predict_proba(Xt), "predict_proba")
    assert_same(native.predict(Xt), model.predict(Xt), "predict")
    reg = HistGradientBoostingRegressor(max_iter=20, categorical_features=categorical).fit(X, X[:, 0] * y)
    assert_same(roundtrip(reg, tmp_path, "r.skv").predict(Xt), reg.predict(Xt), "regressor")


@pytest.mark.parametrize("compress", ["zstd", "lz4"])
def test_hist_gradient_boosting_from_a_file_with_packs(tmp_path, compress):
    # Compressed files keep the small node, threshold and bitset arrays in packs (format 1.2):
    # native inference reads them out of the packs, with the same results.
    X, y = _categorical_data()
    model = HistGradientBoostingClassifier(max_iter=30, categorical_features=[1, 3], random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path, compress=compress)
    manifest = skvault.inspect(tmp_path / "model.skv")
    packed = [e for e in manifest["arrays"] if "pack" in e]
    assert len(manifest["packs"]) >= 2 and len(packed) > len(manifest["arrays"]) // 2
    Xt, _ = _categorical_data(1, 300)
    assert_same(native.predict_proba(Xt), model.predict_proba(Xt), "predict_proba")
    assert_same(native.decision_function(Xt), model.decision_function(Xt), "decision_function")


@pytest.mark.parametrize(
    "make",
    [
        lambda: IsolationForest(n_estimators=50, random_state=0),
        lambda: IsolationForest(n_estimators=30, max_features=3, contamination=0.1, random_state=0),
        lambda: IsolationForest(n_estimators=20, max_samples=2, random_state=0),
    ],
    ids=["default", "max_features", "tiny"],
)
def test_isolation_forest(tmp_path, make):
    X, _, Xt = DATA["regression_nan"]
    model = make().fit(X)
    native = roundtrip(model, tmp_path)
    rows = np.vstack([Xt, Xt * 5])
    rows[0, 0], rows[1, 1], rows[2, 2] = np.inf, -np.inf, 1e300
    assert_same(native.score_samples(rows), model.score_samples(rows), "score_samples")
    assert_same(native.decision_function(rows), model.decision_function(rows), "decision_function")
    assert_same(native.predict(rows), model.predict(rows), "predict")
