"""Native inference of decision trees and forests: bit-identical to scikit-learn.

Compared live on held-out rows, on rows placed exactly at (and one float32 step around)
the trees' thresholds, with NaN, and on inputs scikit-learn refuses (infinity).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

import skvault.native
from native_helpers import (
    assert_both_raise,
    assert_same,
    datasets,
    roundtrip,
    threshold_rows,
    tree_thresholds,
)

DATA = datasets()

CLASSIFIERS = {
    "DecisionTreeClassifier": lambda: DecisionTreeClassifier(random_state=0),
    "DecisionTreeClassifier-shallow": lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
    "ExtraTreeClassifier": lambda: ExtraTreeClassifier(random_state=0),
    "RandomForestClassifier": lambda: RandomForestClassifier(n_estimators=30, random_state=0),
    "ExtraTreesClassifier": lambda: ExtraTreesClassifier(n_estimators=30, random_state=0),
    "RandomForestClassifier-leaf5": lambda: RandomForestClassifier(
        n_estimators=20, min_samples_leaf=5, max_features=2, random_state=1
    ),
}
REGRESSORS = {
    "DecisionTreeRegressor": lambda: DecisionTreeRegressor(random_state=0),
    "ExtraTreeRegressor": lambda: ExtraTreeRegressor(random_state=0),
    "RandomForestRegressor": lambda: RandomForestRegressor(n_estimators=30, random_state=0),
    "ExtraTreesRegressor": lambda: ExtraTreesRegressor(n_estimators=30, random_state=0),
    "RandomForestRegressor-poisson": lambda: RandomForestRegressor(
        n_estimators=10, criterion="poisson", random_state=0
    ),
}
CLASS_DATA = ["binary", "multiclass", "many_classes", "binary_nan"]
REG_DATA = ["regression", "regression_nan"]


def _rows(model, data: str) -> np.ndarray:
    X, _, Xt = DATA[data]
    return np.vstack([Xt, threshold_rows(Xt, tree_thresholds(model))])


@pytest.mark.parametrize("data", CLASS_DATA)
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_parity(tmp_path, name, data):
    X, y, _ = DATA[data]
    model = CLASSIFIERS[name]().fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = _rows(model, data)
    assert_same(native.predict(rows), model.predict(rows), "predict")
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")
    assert_same(native.classes_, model.classes_, "classes_")


@pytest.mark.parametrize("data", REG_DATA)
@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_parity(tmp_path, name, data):
    X, y, _ = DATA[data]
    y = np.abs(y) if "poisson" in name else y
    model = REGRESSORS[name]().fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = _rows(model, data)
    assert_same(native.predict(rows), model.predict(rows), "predict")
    assert "predict_proba" not in native.methods
    with pytest.raises(AttributeError):
        native.predict_proba(rows)


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["no", "yes", "maybe"]),
        np.array([b"n", b"y", b"m"]),
        np.array(["no", "yes", "maybe"], dtype=object),
        np.array([-3, 7, 100], dtype=np.int32),
        np.array([1.0, 2.0, -2.0]),
        np.array([1, 2, 3], dtype=np.uint8),
    ],
    ids=["str", "bytes", "object", "int32", "float", "uint8"],
)
@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier])
def test_labels_keep_their_values_and_dtype(tmp_path, labels, cls):
    X, y, Xt = DATA["multiclass"]
    model = cls(random_state=0).fit(X, labels[y])
    native = roundtrip(model, tmp_path)
    assert_same(native.predict(Xt), model.predict(Xt), "predict")


def test_bool_labels(tmp_path):
    X, y, Xt = DATA["binary"]
    model = DecisionTreeClassifier(random_state=0).fit(X, y.astype(bool))
    assert_same(roundtrip(model, tmp_path).predict(Xt), model.predict(Xt), "predict")


def test_multi_output_regression(tmp_path):
    X, y, Xt = DATA["regression"]
    Y = np.column_stack([y, -2 * y, X[:, 0]])
    for model in (DecisionTreeRegressor(random_state=0), RandomForestRegressor(10, random_state=0)):
        model.fit(X, Y)
        assert_same(roundtrip(model, tmp_path).predict(Xt), model.predict(Xt), "predict")


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e39, -1e300])
@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestRegressor])
def test_infinity_is_refused_like_sklearn(tmp_path, cls, value):
    X, y, Xt = DATA["binary"]
    model = cls(random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    bad = Xt[:5].copy()
    bad[3, 2] = value
    assert_both_raise(lambda: model.predict(bad), lambda: native.predict(bad))


def test_nan_with_trees_fitted_without_nan(tmp_path):
    """Trees fitted on complete data still route NaN (to the side missing_go_to_left names)."""
    X, y, Xt = DATA["binary"]
    model = RandomForestClassifier(n_estimators=15, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = Xt.copy()
    rows[::3, 0] = np.nan
    rows[1::4, 3] = np.nan
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")


def test_extra_tree_best_splitter_refuses_nan(tmp_path):
    X, y, Xt = DATA["binary"]
    model = ExtraTreeClassifier(splitter="best", random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    bad = Xt[:4].copy()
    bad[0, 0] = np.nan
    assert_both_raise(lambda: model.predict(bad), lambda: native.predict(bad))
    assert_same(native.predict(Xt), model.predict(Xt), "predict")


def test_wrong_feature_count_and_shapes(tmp_path):
    X, y, Xt = DATA["binary"]
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    assert_both_raise(lambda: model.predict(Xt[:, :4]), lambda: native.predict(Xt[:, :4]))
    with pytest.raises(ValueError):
        native.predict(Xt[0])  # 1-d input, as scikit-learn
    assert native.predict(Xt[:0]).shape == (0,)
    assert native.predict_proba(Xt[:0]).shape == (0, 2)


def test_other_input_dtypes_are_converted(tmp_path):
    X, y, Xt = DATA["multiclass"]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    for rows in (Xt.astype(np.float32), np.asfortranarray(Xt), Xt[::2], Xt.tolist()):
        assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")


def test_large_batches_use_threads_and_stay_identical(tmp_path):
    rng = np.random.RandomState(3)
    X, y, _ = DATA["multiclass"]
    model = RandomForestClassifier(n_estimators=60, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    rows = rng.randn(5000, X.shape[1])
    assert_same(native.predict_proba(rows), model.predict_proba(rows), "predict_proba")
    one = rows[:1]
    assert_same(native.predict_proba(one), model.predict_proba(one), "single row")


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesRegressor])
def test_few_rows_path_is_identical(tmp_path, cls):
    """Under 8 rows, trees are stepped 8 at a time per row instead: same sums, same order."""
    X, y, Xt = DATA["binary_nan"]
    model = cls(n_estimators=21, random_state=0).fit(X, y)
    native = roundtrip(model, tmp_path)
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    for n in range(1, 9):
        rows = Xt[n * 10 : n * 10 + n]
        assert_same(getattr(native, method)(rows), getattr(model, method)(rows), f"{n} rows")


@pytest.mark.parametrize(
    "cls, data",
    [
        # One value a leaf and two (laid out with the leaves, summed by the helper as it
        # walks), three (the helper hands over its leaves).
        (ExtraTreesRegressor, "regression_nan"),
        (RandomForestClassifier, "binary_nan"),
        (ExtraTreesClassifier, "multiclass"),
    ],
)
def test_one_row_shared_with_the_helper_thread_is_identical(tmp_path, cls, data):
    """A forest large enough (4096 steps a row or more) that one row is shared between the
    calling thread and the helper thread: every row, back to back and from three threads at
    once (one of them has the helper, the others walk alone), is bit-identical."""
    from concurrent.futures import ThreadPoolExecutor

    X, y, Xt = DATA[data]
    model = cls(n_estimators=500, random_state=0).fit(X, y)
    depths = [e.tree_.max_depth for e in model.estimators_]
    work = sum(max(depths[i : i + 16]) * len(depths[i : i + 16]) for i in range(0, len(depths), 16))
    assert work >= 4096, "the forest is too small to reach the shared path"
    native = roundtrip(model, tmp_path)
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    want = getattr(model, method)(Xt)

    def one_by_one(_: int = 0) -> np.ndarray:
        return np.concatenate([getattr(native, method)(Xt[i : i + 1]) for i in range(len(Xt))])

    assert_same(one_by_one(), want, "one row at a time")
    with ThreadPoolExecutor(3) as pool:
        for got in pool.map(one_by_one, range(3)):
            assert_same(got, want, "one row at a time, three threads")


def test_the_one_row_layout_is_built_when_first_needed_or_when_prepared(tmp_path):
    """A forest's one-row layout is built by the first call on a few rows (batches never
    build it) or ahead by prepare_few_rows(), which reaches the forest inside a pipeline and
    says whether the model has one. Several threads making the first one-row calls at once
    share one build and get scikit-learn's answers."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xt = DATA["binary"]
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, y)
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    assert roundtrip(forest, tmp_path, "forest.skv").prepare_few_rows() is True
    assert roundtrip(pipe, tmp_path, "pipe.skv").prepare_few_rows() is True
    assert roundtrip(linear, tmp_path, "linear.skv").prepare_few_rows() is False
    assert roundtrip(tree, tmp_path, "tree.skv").prepare_few_rows() is False

    native = skvault.native.load(tmp_path / "forest.skv")
    assert_same(native.predict_proba(Xt), forest.predict_proba(Xt), "a batch first")
    rows = Xt[:40]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: native.predict_proba(rows[i : i + 1]), range(len(rows))))
    assert_same(np.concatenate(got), forest.predict_proba(rows), "first one-row calls, four threads")
    assert native.prepare_few_rows() is True
