"""Native inference of linear models, compared live with scikit-learn.

scikit-learn computes `X @ coef_.T` with BLAS, whose summation order (and FMA use) is not
fixed, so scores are compared with a tolerance scaled by the size of the terms:
|native - sklearn| <= TOL * (|X| @ |coef_|.T + |intercept_|). Labels must be identical on
every row whose score is not within that tolerance of a decision boundary.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from native_helpers import assert_both_raise, assert_same, datasets, roundtrip

DATA = datasets()
#: Relative to the sum of |terms|: a few ulps (measured worst case is about 2e-16).
TOL = 1e-14

REGRESSORS = {
    "LinearRegression": lambda: LinearRegression(),
    "LinearRegression-noint": lambda: LinearRegression(fit_intercept=False),
    "Ridge": lambda: Ridge(alpha=0.5),
    "Lasso": lambda: Lasso(alpha=0.01),
    "ElasticNet": lambda: ElasticNet(alpha=0.01, l1_ratio=0.3),
    "SGDRegressor": lambda: SGDRegressor(random_state=0),
    "LinearSVR": lambda: LinearSVR(random_state=0, max_iter=5000),
}
CLASSIFIERS = {
    "LogisticRegression": lambda: LogisticRegression(max_iter=1000),
    "LogisticRegression-noint": lambda: LogisticRegression(fit_intercept=False, max_iter=1000),
    "SGDClassifier-hinge": lambda: SGDClassifier(random_state=0),
    "SGDClassifier-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "SGDClassifier-huber": lambda: SGDClassifier(loss="modified_huber", random_state=0),
    "LinearSVC": lambda: LinearSVC(random_state=0),
    "LinearSVC-noint": lambda: LinearSVC(fit_intercept=False, random_state=0),
}


def _scale(model, X):
    coef = np.atleast_2d(model.coef_)
    b = np.abs(np.broadcast_to(model.intercept_, coef.shape[:1]))
    return np.abs(X) @ np.abs(coef).T + b


def _assert_scores(native, expected, scale, what):
    native, expected = np.asarray(native), np.asarray(expected)
    assert native.shape == expected.shape, what
    err = np.abs(native - expected.reshape(native.shape))
    bound = TOL * np.asarray(scale).reshape(native.shape) + 1e-300
    assert np.all(err <= bound), f"{what}: worst {np.max(err / bound) * TOL:.3g} of the scale"


@pytest.mark.parametrize("data", ["regression"])
@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_parity(tmp_path, name, data):
    X, y, Xt = DATA[data]
    model = REGRESSORS[name]().fit(X, y)
    native = roundtrip(model, tmp_path)
    got, want = native.predict(Xt), model.predict(Xt)
    assert got.shape == want.shape
    _assert_scores(got, want, _scale(model, Xt), "predict")


def test_multi_target_regression(tmp_path):
    X, y, Xt = DATA["regression"]
    Y = np.column_stack([y, X[:, 1] - y])
    for model in (LinearRegression(), Ridge(), Lasso(alpha=0.01)):
        model.fit(X, Y)
        got = roundtrip(model, tmp_path).predict(Xt)
        _assert_scores(got, model.predict(Xt), _scale(model, Xt), type(model).__name__)


@pytest.mark.parametrize("data", ["binary", "multiclass", "many_classes"])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_parity(tmp_path, name, data):
    X, y, Xt = DATA[data]
    labels = np.array([f"c{i}" for i in range(12)])
    model = CLASSIFIERS[name]().fit(X, labels[y])
    native = roundtrip(model, tmp_path)
    scale = _scale(model, Xt)
    dec = model.decision_function(Xt)
    _assert_scores(native.decision_function(Xt), dec, scale, "decision_function")
    # Labels: identical except where the score is within tolerance of a tie.
    near = np.abs(dec) <= TOL * scale.reshape(dec.shape) if dec.ndim == 1 else np.zeros(len(Xt), bool)
    got, want = native.predict(Xt), model.predict(Xt)
    assert got.dtype == want.dtype
    assert np.array_equal(got[~near], want[~near])
    assert near.sum() == 0  # none of these random rows sits on a boundary
    if hasattr(model, "predict_proba"):
        p_native, p_sk = native.predict_proba(Xt), model.predict_proba(Xt)
        # The link functions (exp) add at most a few ulps to the score's error.
        np.testing.assert_allclose(p_native, p_sk, rtol=1e-12, atol=1e-15)
    else:
        assert "predict_proba" not in native.methods


def test_logistic_probabilities_bit_identical_when_scores_are(tmp_path):
    """With one feature, X @ coef_ is a single product: no summation order, so scores are
    exact and the probabilities must be bit-identical (expit and softmax as scipy/sklearn)."""
    X, y, Xt = DATA["multiclass"]
    for target in (y == 1, y):
        model = LogisticRegression(max_iter=1000).fit(X[:, :1], target)
        native = roundtrip(model, tmp_path)
        assert_same(native.decision_function(Xt[:, :1]), model.decision_function(Xt[:, :1]), "dec")
        assert_same(native.predict_proba(Xt[:, :1]), model.predict_proba(Xt[:, :1]), "proba")


def test_nan_and_inf_are_refused_like_sklearn(tmp_path):
    X, y, Xt = DATA["binary"]
    model = LogisticRegression().fit(X, y)
    native = roundtrip(model, tmp_path)
    for value in (np.nan, np.inf):
        bad = Xt[:3].copy()
        bad[1, 1] = value
        assert_both_raise(lambda: model.predict(bad), lambda: native.predict(bad))
