"""ONNX export parity: each exported estimator, fitted on several data sets, checked with
onnx.checker, run in onnxruntime, and compared with scikit-learn on held-out rows and on
rows exactly at (and next to) the split thresholds.

Labels must be identical; probabilities and values within EXPORT_RTOL (1e-12 relative, the
documented tolerance of the double paths, docs/EXPORT.md). Every expected value comes from
scikit-learn in this process.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

import skvault  # noqa: E402
from native_helpers import datasets  # noqa: E402
from onnx_helpers import (  # noqa: E402
    check_classifier as _check_classifier,
    check_regressor as _check_regressor,
    export as _export,
    meta as _meta,
    run as _run,
    session as _session,
    with_threshold_rows as _rows,
)

DATA = datasets()
CLASSIFICATION = ["binary", "multiclass", "many_classes", "binary_nan"]
REGRESSION = ["regression", "regression_nan"]


TREE_CLASSIFIERS = [
    lambda: DecisionTreeClassifier(random_state=0),
    lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
    lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
]
TREE_REGRESSORS = [
    lambda: DecisionTreeRegressor(random_state=0),
    lambda: RandomForestRegressor(n_estimators=15, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=10, random_state=0),
]


@pytest.mark.parametrize("data", CLASSIFICATION)
@pytest.mark.parametrize("make", TREE_CLASSIFIERS, ids=["tree", "tree_depth3", "forest", "extra"])
def test_tree_classifiers_match_sklearn(make, data, tmp_path):
    X, y, Xt = DATA[data]
    est = make().fit(X, y)
    model, sess = _export(est, tmp_path)
    _check_classifier(est, _rows(est, Xt), sess, _meta(model))


@pytest.mark.parametrize("data", REGRESSION)
@pytest.mark.parametrize("make", TREE_REGRESSORS, ids=["tree", "forest", "extra"])
def test_tree_regressors_match_sklearn(make, data, tmp_path):
    X, y, Xt = DATA[data]
    est = make().fit(X, y)
    model, sess = _export(est, tmp_path)
    _check_regressor(est, _rows(est, Xt), sess)


def test_multi_output_forest_regressor(tmp_path):
    X, y, Xt = DATA["regression"]
    Y = np.column_stack([y, -2 * y, y**2])
    est = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, Y)
    _, sess = _export(est, tmp_path)
    _check_regressor(est, _rows(est, Xt), sess)


def test_string_labels(tmp_path):
    X, y, Xt = DATA["multiclass"]
    labels = np.array(["cat", "dog", "emu"])[y]
    est = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, labels)
    model, sess = _export(est, tmp_path)
    _check_classifier(est, Xt, sess, _meta(model))


def _finite(data):
    X, y, Xt = DATA[data]
    return X, y, Xt


@pytest.mark.parametrize("data", ["binary", "multiclass", "many_classes"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=500),
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        lambda: make_pipeline(MinMaxScaler(clip=True), RobustScaler(), LogisticRegression(max_iter=500)),
        lambda: SGDClassifier(loss="log_loss", random_state=0),
        lambda: SGDClassifier(loss="hinge", random_state=0),
    ],
    ids=["logistic", "scaled_logistic", "scalers_logistic", "sgd_log", "sgd_hinge"],
)
def test_linear_classifiers_match_sklearn(make, data, tmp_path):
    X, y, Xt = _finite(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, y)
    model, sess = _export(est, tmp_path)
    _check_classifier(est, Xt, sess, _meta(model))


@pytest.mark.parametrize(
    "make",
    [
        LinearRegression,
        lambda: Ridge(alpha=0.5),
        lambda: make_pipeline(StandardScaler(), MaxAbsScaler(), Ridge()),
        lambda: make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=5, random_state=0)),
    ],
    ids=["linear", "ridge", "scaled_ridge", "scaled_forest"],
)
def test_regressors_and_pipelines_match_sklearn(make, tmp_path):
    X, y, Xt = _finite("regression")
    est = make().fit(X, y)
    _, sess = _export(est, tmp_path)
    _check_regressor(est, Xt, sess)


def test_transformer_pipeline_is_bit_exact(tmp_path):
    X, _, Xt = DATA["regression_nan"]
    est = make_pipeline(StandardScaler(), MinMaxScaler()).fit(X)
    _, sess = _export(est, tmp_path)
    got = _run(sess, Xt)["transformed"]
    expected = est.transform(Xt)
    # Element-wise double operations in scikit-learn's order: identical bits.
    np.testing.assert_array_equal(got, expected)


def test_metadata_records_io_names_and_float32_use(tmp_path):
    X, y, _ = DATA["binary"]
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    model, sess = _export(est, tmp_path)
    meta = _meta(model)
    assert json.loads(meta["skvault.outputs"]) == ["label", "probabilities"]
    assert "float32" in meta["skvault.float32"]
    assert meta["skvault.class"].endswith("RandomForestClassifier")
    assert [i.name for i in sess.get_inputs()] == ["X"]
    assert sess.get_inputs()[0].type == "tensor(double)"
    lin = LogisticRegression().fit(X, y)
    model, _ = _export(lin, tmp_path, "lin")
    assert _meta(model)["skvault.float32"].startswith("none")


def test_feature_names_in_metadata(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, _ = DATA["binary"]
    frame = pd.DataFrame(X, columns=[f"col{i}" for i in range(X.shape[1])])
    est = DecisionTreeClassifier(random_state=0).fit(frame, y)
    model, _ = _export(est, tmp_path)
    assert json.loads(_meta(model)["skvault.feature_names"]) == list(frame.columns)


# ------------------------------------------------------------------------------ refusals


def test_unsupported_estimator_is_named_and_nothing_written(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, _ = DATA["binary"]
    out = tmp_path / "knn.onnx"
    with pytest.raises(skvault.SkvaultError, match="KNeighborsClassifier"):
        skvault.export_onnx(KNeighborsClassifier().fit(X, y), out)
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_unsupported_step_inside_a_pipeline_is_named(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, _ = DATA["binary"]
    est = make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X, y)
    out = tmp_path / "p.onnx"
    with pytest.raises(skvault.SkvaultError, match="KNeighborsClassifier"):
        skvault.export_onnx(est, out)
    assert os.listdir(tmp_path) == []


def test_unwritable_output_is_an_oserror_and_leaves_nothing(tmp_path):
    X, y, _ = DATA["binary"]
    est = DecisionTreeClassifier(random_state=0).fit(X, y)
    with pytest.raises(FileNotFoundError):
        skvault.export_onnx(est, tmp_path / "missing" / "m.onnx")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(PermissionError):
            skvault.export_onnx(est, ro / "m.onnx")
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o700)


def test_cli_export_onnx_and_refusal(tmp_path):
    from sklearn.neighbors import KNeighborsRegressor

    X, y, Xt = DATA["regression"]
    est = RandomForestRegressor(n_estimators=4, random_state=0).fit(X, y)
    skv = tmp_path / "m.skv"
    skvault.dump(est, skv)
    from skvault import _native

    assert _native.cli_main(["skvault", "export", str(skv), str(tmp_path / "m.onnx")]) == 0
    _, sess = _session(tmp_path / "m.onnx")
    _check_regressor(est, Xt, sess)
    bad = tmp_path / "knn.skv"
    skvault.dump(KNeighborsRegressor().fit(X, y), bad)
    assert _native.cli_main(["skvault", "export", str(bad), str(tmp_path / "knn.onnx")]) == 1
    assert not (tmp_path / "knn.onnx").exists()


# ----------------------------------------------------------------- HistGradientBoosting


def _categorical_data(seed=0, n=500):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4)
    X[:, 1] = rng.randint(0, 7, n)  # categorical, 7 categories
    X[:, 3] = rng.randint(0, 3, n)  # categorical, 3 categories
    score = X[:, 0] + np.where(np.isin(X[:, 1], [1, 4, 5]), 1.0, -0.7) + 0.4 * X[:, 3]
    Xt = rng.randn(300, 4)
    Xt[:, 1] = rng.randint(0, 9, 300)  # 7 and 8 never seen in fit: unknown categories
    Xt[:, 3] = rng.randint(0, 3, 300)
    Xt[rng.rand(300) < 0.1, 1] = np.nan
    Xt[rng.rand(300) < 0.05, 1] = -1.0  # negative: treated as missing
    X[rng.rand(n) < 0.08, 1] = np.nan
    return X, score, Xt


@pytest.mark.parametrize("data", CLASSIFICATION)
def test_hist_gradient_boosting_classifier_matches_sklearn(data, tmp_path):
    X, y, Xt = DATA[data]
    est = HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(X, y)
    model, sess = _export(est, tmp_path)
    _check_classifier(est, Xt, sess, _meta(model))


@pytest.mark.parametrize("data", REGRESSION)
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_hist_gradient_boosting_regressor_matches_sklearn(data, loss, tmp_path):
    X, y, Xt = DATA[data]
    if loss == "poisson":
        y = np.exp(y / 3)
    est = HistGradientBoostingRegressor(max_iter=25, loss=loss, random_state=0).fit(X, y)
    _, sess = _export(est, tmp_path)
    _check_regressor(est, Xt, sess)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_hist_gradient_boosting_categorical_matches_sklearn(kind, tmp_path):
    X, score, Xt = _categorical_data()
    mask = [False, True, False, True]
    if kind == "regression":
        est = HistGradientBoostingRegressor(max_iter=30, categorical_features=mask, random_state=0)
        est.fit(X, score)
    else:
        y = (score > 0).astype(int) if kind == "binary" else np.digitize(score, [-0.5, 0.8])
        est = HistGradientBoostingClassifier(max_iter=30, categorical_features=mask, random_state=0)
        est.fit(X, y)
    model, sess = _export(est, tmp_path)
    if kind == "regression":
        _check_regressor(est, Xt, sess)
    else:
        _check_classifier(est, Xt, sess, _meta(model))


# -------------------------------------------------------------------- GradientBoosting


@pytest.mark.parametrize("data", ["binary", "multiclass", "regression"])
def test_gradient_boosting_matches_sklearn(data, tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    X, y, Xt = DATA[data]
    if data == "regression":
        est = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y)
        _, sess = _export(est, tmp_path)
        _check_regressor(est, _rows(est, Xt), sess)
    else:
        est = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, y)
        model, sess = _export(est, tmp_path)
        _check_classifier(est, _rows(est, Xt), sess, _meta(model))


# --- float32 trees (export_onnx(..., dtype="float32"), `skvault export --dtype float32`) -------

FLOAT32_RTOL = 1e-5
FLOAT32_OPS = ("TreeEnsembleRegressor", "TreeEnsemble")


def _float32_graph(est, tmp_path, name="m32"):
    out = tmp_path / f"{name}.onnx"
    skvault.export_onnx(est, out, dtype="float32")
    model, sess = _session(out)
    ensembles = [n for n in model.graph.node if n.op_type in FLOAT32_OPS]
    assert ensembles
    return model, sess, ensembles


def _tensor_types(node):
    return {a.name: a.t.data_type for a in node.attribute if a.type == onnx.AttributeProto.TENSOR}


def _assert_float32_regressors(model, ensembles):
    """The trees run in float32 as TreeEnsembleRegressor (float attributes, ai.onnx.ml 4)."""
    assert [n.op_type for n in ensembles] == ["TreeEnsembleRegressor"] * len(ensembles)
    assert not any(n.op_type == "TreeEnsemble" for n in model.graph.node)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets["ai.onnx.ml"] == 4
    for node in ensembles:
        kinds = {a.name: a.type for a in node.attribute}
        assert kinds["nodes_values"] == onnx.AttributeProto.FLOATS
        assert kinds["target_weights"] == onnx.AttributeProto.FLOATS
        assert not any(k.endswith("_as_tensor") for k in kinds)
        modes = {m.decode() for a in node.attribute if a.name == "nodes_modes" for m in a.strings}
        assert modes <= {"BRANCH_LEQ", "LEAF"}


def _assert_float32_probabilities(est, model, sess, rows):
    got = _run(sess, rows)
    expected = est.predict_proba(rows)
    # A split decided differently would land in another leaf: far outside this tolerance.
    np.testing.assert_allclose(got["probabilities"], expected, rtol=FLOAT32_RTOL, atol=1e-6)
    assert got["probabilities"].dtype == np.float64
    clear = np.sort(expected, axis=1)
    clear = clear[:, -1] - clear[:, -2] > 1e-5 if expected.shape[1] > 1 else np.ones(len(rows), bool)
    np.testing.assert_array_equal(got["label"][clear], est.predict(rows)[clear])
    meta = _meta(model)
    assert "float32" in meta["skvault.tolerance"] and "trees run in float32" in meta["skvault.float32"]
    assert json.loads(meta["skvault.classes"]) == [str(c) for c in est.classes_]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeClassifier(random_state=0),
        lambda: RandomForestClassifier(n_estimators=15, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
    ],
    ids=["tree", "forest", "extra"],
)
@pytest.mark.parametrize("data", ["binary", "multiclass", "many_classes", "binary_nan"])
def test_float32_tree_classifiers_split_exactly_as_sklearn(make, data, tmp_path):
    X, y, X_test = DATA[data]
    est = make().fit(X, y)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    # A binary classifier's trees sum p1 alone; the graph forms [1 - p1, p1] in double.
    n_targets = next(a.i for a in ensembles[0].attribute if a.name == "n_targets")
    assert n_targets == (1 if len(est.classes_) == 2 else len(est.classes_))
    _assert_float32_probabilities(est, model, sess, _rows(est, X_test))  # rows at, and next to, every threshold


def test_float32_string_labels(tmp_path):
    X, y, X_test = DATA["multiclass"]
    est = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, np.array(["cat", "dog", "emu"])[y])
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    _assert_float32_probabilities(est, model, sess, _rows(est, X_test))


@pytest.mark.parametrize("data", ["binary", "multiclass", "binary_nan"])
def test_float32_gradient_boosting_classifier_splits_exactly_as_sklearn(data, tmp_path):
    from sklearn.ensemble import GradientBoostingClassifier

    X, y, X_test = DATA[data]
    if data == "binary_nan":  # GradientBoosting refuses NaN: its trees see the imputed columns
        from sklearn.impute import SimpleImputer

        est = make_pipeline(SimpleImputer(), GradientBoostingClassifier(n_estimators=30, random_state=0)).fit(X, y)
        rows = X_test
    else:
        est = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, y)
        rows = _rows(est, X_test)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    _assert_float32_probabilities(est, model, sess, rows)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber", "quantile"])
def test_float32_gradient_boosting_regressor_within_the_documented_tolerance(loss, tmp_path):
    from sklearn.ensemble import GradientBoostingRegressor

    X, y, X_test = DATA["regression"]
    est = GradientBoostingRegressor(n_estimators=30, loss=loss, random_state=0).fit(X, y)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    rows = _rows(est, X_test)
    got = _run(sess, rows)["prediction"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, est.predict(rows), rtol=FLOAT32_RTOL, atol=1e-6 * np.abs(y).max())


def test_float32_multi_output_forest_regressor(tmp_path):
    X, y, X_test = DATA["regression"]
    Y = np.column_stack([y, -2 * y, y**2])
    est = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, Y)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    rows = _rows(est, X_test)
    got = _run(sess, rows)["prediction"]
    assert got.shape == (len(rows), 3)
    np.testing.assert_allclose(got, est.predict(rows), rtol=FLOAT32_RTOL, atol=1e-6 * np.abs(Y).max())


@pytest.mark.parametrize(
    "make",
    [
        lambda: IsolationForest(n_estimators=50, random_state=0),
        lambda: IsolationForest(n_estimators=5, max_samples=1, random_state=0),
    ],
    ids=["default", "one_sample"],
)
def test_float32_isolation_forest_within_the_documented_tolerance(make, tmp_path):
    X, _, X_test = DATA["regression_nan"]
    est = make().fit(X)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    rows = _rows(est, np.vstack([X_test, X_test * 5]))
    got = _run(sess, rows)
    expected = est.decision_function(rows)
    np.testing.assert_allclose(got["scores"], expected, rtol=FLOAT32_RTOL, atol=1e-6)
    clear = np.abs(expected) > 1e-5
    np.testing.assert_array_equal(got["label"][clear], est.predict(rows)[clear])


@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeRegressor(random_state=0),
        lambda: RandomForestRegressor(n_estimators=15, random_state=0),
        lambda: make_pipeline(StandardScaler(), ExtraTreesRegressor(n_estimators=10, random_state=0)),
    ],
    ids=["tree", "forest", "pipeline"],
)
def test_float32_tree_regressors_within_the_documented_tolerance(make, tmp_path):
    X, y, X_test = DATA["regression_nan"]
    est = make().fit(X, y)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    _assert_float32_regressors(model, ensembles)
    inner = est[-1] if hasattr(est, "steps") else est
    rows = np.vstack([X_test, _rows(inner, X_test)]) if not hasattr(est, "steps") else X_test
    got = _run(sess, rows)["prediction"]
    np.testing.assert_allclose(got, est.predict(rows), rtol=FLOAT32_RTOL, atol=1e-6 * np.abs(y).max())


def test_float32_keeps_hist_gradient_boosting_in_double(tmp_path):
    X, y, X_test = DATA["binary"]
    est = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    model, sess, ensembles = _float32_graph(est, tmp_path)
    assert [n.op_type for n in ensembles] == ["TreeEnsemble"]
    assert {o.domain: o.version for o in model.opset_import}["ai.onnx.ml"] == 5
    assert all(_tensor_types(n)["nodes_splits"] == onnx.TensorProto.DOUBLE for n in ensembles)
    np.testing.assert_allclose(_run(sess, X_test)["probabilities"], est.predict_proba(X_test), rtol=1e-12, atol=1e-15)


def test_float32_cli_and_bad_dtype(tmp_path):
    import subprocess
    import sys

    X, y, _ = DATA["binary"]
    path = tmp_path / "m.skv"
    skvault.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path)
    done = subprocess.run(
        [sys.executable, "-m", "skvault", "export", str(path), str(tmp_path / "m.onnx"), "--dtype", "float32"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    model = onnx.load(str(tmp_path / "m.onnx"))
    _assert_float32_regressors(model, [n for n in model.graph.node if n.op_type in FLOAT32_OPS])
    with pytest.raises(ValueError, match="dtype"):
        skvault.export_onnx(path, tmp_path / "x.onnx", dtype="float16")
    assert not (tmp_path / "x.onnx").exists()
