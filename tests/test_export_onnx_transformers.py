"""ONNX export of the transformers (Normalizer, SimpleImputer, PCA, PolynomialFeatures,
OneHotEncoder), IsolationForest and multiclass SGDClassifier(modified_huber) probabilities,
each run in onnxruntime and compared with scikit-learn in this process.

Element-wise transformers (imputer, polynomial expansion, one-hot) must be bit-identical;
row norms, PCA's product and the forests' sums agree within the documented tolerance
(docs/EXPORT.md).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier  # noqa: E402
from sklearn.pipeline import FeatureUnion, make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    Normalizer,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

from native_helpers import datasets, encoder_data, one_hot_encoders  # noqa: E402
from onnx_helpers import (  # noqa: E402
    EXPORT_ATOL,
    EXPORT_RTOL,
    check_classifier,
    check_regressor,
    export,
    meta,
    run,
    with_threshold_rows,
)

DATA = datasets()


def _transformed(est, X, tmp_path):
    model, sess = export(est, tmp_path)
    assert json.loads(meta(model)["skvault.outputs"]) == ["transformed"]
    got = run(sess, X)["transformed"]
    assert got.dtype == np.float64
    assert got.shape == (X.shape[0], sess.get_outputs()[0].shape[1])
    return got


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else np.asarray(a)


EXACT = {
    "imputer-mean": (lambda: SimpleImputer(), "binary_nan"),
    "imputer-median": (lambda: SimpleImputer(strategy="median"), "binary_nan"),
    "imputer-most_frequent": (lambda: SimpleImputer(strategy="most_frequent"), "binary_nan"),
    "imputer-constant": (lambda: SimpleImputer(strategy="constant", fill_value=-7.5), "binary_nan"),
    "poly-2": (lambda: PolynomialFeatures(2), "binary"),
    "poly-3-nobias": (lambda: PolynomialFeatures(3, include_bias=False), "binary"),
    "poly-interaction": (lambda: PolynomialFeatures(3, interaction_only=True), "binary"),
    "poly-2to3": (lambda: PolynomialFeatures((2, 3)), "binary"),
    "poly-2to3-nobias": (lambda: PolynomialFeatures((2, 3), include_bias=False), "binary"),
    "poly-1": (lambda: PolynomialFeatures(1), "binary"),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_element_wise_transformers_are_bit_identical(name, tmp_path):
    make, data = EXACT[name]
    X, _, Xt = DATA[data]
    est = make().fit(X)
    rows = np.vstack([Xt, Xt * 1e3, -Xt])
    np.testing.assert_array_equal(_transformed(est, rows, tmp_path), _dense(est.transform(rows)))


def test_imputer_with_a_numeric_marker_and_empty_columns(tmp_path):
    X, _, Xt = DATA["binary"]
    X = X.copy()
    X[:, 3] = np.where(X[:, 3] == 2, -1, X[:, 3])
    est = SimpleImputer(missing_values=-1.0, strategy="median").fit(X)
    rows = Xt.copy()
    rows[::4, 3] = -1.0
    np.testing.assert_array_equal(_transformed(est, rows, tmp_path), est.transform(rows))
    Xe = X.copy()
    Xe[:, 2] = np.nan
    for keep in (False, True):
        est = SimpleImputer(keep_empty_features=keep).fit(Xe)
        got = _transformed(est, Xt, tmp_path)
        np.testing.assert_array_equal(got, est.transform(Xt), err_msg=f"keep_empty_features={keep}")


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer(norm, tmp_path):
    X, _, Xt = DATA["regression"]
    est = Normalizer(norm=norm).fit(X)
    rows = np.vstack([Xt, np.zeros((3, X.shape[1]))])  # zero rows: divided by 1
    got = _transformed(est, rows, tmp_path)
    np.testing.assert_allclose(got, est.transform(rows), rtol=EXPORT_RTOL, atol=EXPORT_ATOL)
    np.testing.assert_array_equal(got[-3:], 0.0)


@pytest.mark.parametrize("whiten", [False, True])
def test_pca(whiten, tmp_path):
    X, _, Xt = DATA["regression"]
    est = PCA(n_components=4, whiten=whiten).fit(X)
    got, want = _transformed(est, Xt, tmp_path), est.transform(Xt)
    # X @ C.T - mean @ C.T cancels: bound the error by the size of the terms, not the result.
    scale = (np.abs(Xt) + np.abs(est.mean_)) @ np.abs(est.components_).T
    if whiten:
        scale = scale / np.sqrt(est.explained_variance_)
    assert np.all(np.abs(got - want) <= EXPORT_RTOL * scale), np.max(np.abs(got - want) / scale)


ONE_HOT = one_hot_encoders()


@pytest.mark.parametrize("make", list(ONE_HOT.values()), ids=list(ONE_HOT))
def test_one_hot_encoder_is_bit_identical(make, tmp_path):
    X, Xt, unknown = encoder_data()
    est = make().fit(X)
    np.testing.assert_array_equal(_transformed(est, Xt, tmp_path), _dense(est.transform(Xt)))
    got = _transformed(est, unknown, tmp_path)
    if est.handle_unknown == "error":
        with pytest.raises(ValueError):
            est.transform(unknown)
        # A graph cannot raise: an unknown category encodes as all zeros (docs/EXPORT.md).
        width = len(est.categories_[0]) - (est.drop_idx_ is not None)
        np.testing.assert_array_equal(got[::3, :width], 0.0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns about unknown categories
            np.testing.assert_array_equal(got, _dense(est.transform(unknown)))


def test_transformer_pipelines_feeding_classifiers(tmp_path):
    X, y, Xt = DATA["binary_nan"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make_pipeline(
            SimpleImputer(), PolynomialFeatures(2), StandardScaler(), LogisticRegression(max_iter=2000)
        ).fit(X, y)
    model, sess = export(est, tmp_path)
    check_classifier(est, Xt, sess, meta(model))

    X, y, Xt = DATA["regression"]
    est = make_pipeline(Normalizer(), PCA(n_components=3, whiten=True), Ridge()).fit(X, y)
    _, sess = export(est, tmp_path, "pca")
    check_regressor(est, Xt, sess)


def test_column_transformer_with_one_hot_and_union(tmp_path):
    X, y, Xt = DATA["multiclass"]
    X, Xt = X.copy(), Xt.copy()
    X[:, 3] = np.round(np.abs(X[:, 3])) % 4
    Xt[:, 3] = np.round(np.abs(Xt[:, 3])) % 5  # 4 is unknown
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), [0, 1, 2]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), [3]),
        ],
        remainder="passthrough",
    )
    union = FeatureUnion([("pca", PCA(n_components=2)), ("id", "passthrough")], transformer_weights={"pca": 0.5})
    est = make_pipeline(ct, union, LogisticRegression(max_iter=1000)).fit(X, y)
    model, sess = export(est, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_classifier(est, Xt, sess, meta(model))


# ---------------------------------------------------------------------- IsolationForest


@pytest.mark.parametrize(
    "make",
    [
        lambda: IsolationForest(n_estimators=50, random_state=0),
        lambda: IsolationForest(n_estimators=30, max_features=3, contamination=0.1, random_state=0),
        lambda: IsolationForest(n_estimators=20, max_samples=2, random_state=0),
        lambda: IsolationForest(n_estimators=5, max_samples=1, random_state=0),
    ],
    ids=["default", "max_features", "tiny", "one_sample"],
)
def test_isolation_forest(make, tmp_path):
    X, _, Xt = DATA["regression_nan"]
    est = make().fit(X)
    model, sess = export(est, tmp_path)
    assert json.loads(meta(model)["skvault.outputs"]) == ["label", "scores"]
    assert json.loads(meta(model)["skvault.classes"]) == ["-1", "1"]
    rows = with_threshold_rows(est, np.vstack([Xt, Xt * 5]))
    rows[0, 0], rows[1, 1], rows[2, 2] = np.inf, -np.inf, 1e300
    got = run(sess, rows)
    np.testing.assert_array_equal(got["label"], est.predict(rows))
    assert got["scores"].dtype == np.float64 and got["scores"].shape == (len(rows),)
    np.testing.assert_allclose(got["scores"], est.decision_function(rows), rtol=EXPORT_RTOL, atol=EXPORT_ATOL)


# ------------------------------------------------------------- SGD modified_huber probabilities


@pytest.mark.parametrize("data", ["multiclass", "many_classes"])
def test_sgd_modified_huber_multiclass_probabilities(data, tmp_path):
    X, y, Xt = DATA[data]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SGDClassifier(loss="modified_huber", random_state=0).fit(X, y)
    # Push some rows below -1 on every class: scikit-learn makes those rows uniform.
    shifted = np.vstack([Xt, Xt * 50, -Xt * 50])
    scores = est.decision_function(shifted)
    est.intercept_ = est.intercept_ - (scores.max(axis=1).min() + 1.5)
    assert (est.decision_function(shifted).max(axis=1) < -1).any()
    model, sess = export(est, tmp_path)
    check_classifier(est, shifted, sess, meta(model))
    proba = run(sess, shifted)["probabilities"]
    uniform = (est.decision_function(shifted) <= -1).all(axis=1)
    np.testing.assert_array_equal(proba[uniform], 1 / len(est.classes_))

