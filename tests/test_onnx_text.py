"""ONNX export of DataFrame pipelines with text and category columns (issue 19, ONNX part).

Every pipeline of the zoo in tests/test_native_text.py is exported, checked with
onnx.checker, run by onnxruntime on the same frame scikit-learn predicts (unknown
categories and missing values included, fed through ``skvault.onnx_feed``) and compared
with scikit-learn: labels identical, values within the documented tolerance
(docs/EXPORT.md). Pipelines the exporter cannot describe are refused naming the class and
the reason, and nothing is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler  # noqa: E402

import skvault  # noqa: E402
from onnx_helpers import EXPORT_ATOL, EXPORT_RTOL, session  # noqa: E402
from test_native_text import PIPELINES, _fitted, frame, skewed, target  # noqa: E402

#: Pipelines the exporter refuses, and the reason it gives.
REFUSED = {
    # plan holds None, which SimpleImputer (missing_values=NaN) leaves alone: the encoder
    # has a None category the graph cannot tell from the NaN the imputer replaces.
    "impute-text+onehot+logistic": "OneHotEncoder cannot be exported to ONNX (a missing category after a SimpleImputer",
    "target-encoder+hgb": "TargetEncoder cannot be exported to ONNX (TargetEncoder is not exported yet)",
    "text-imputer+tree": "OrdinalEncoder cannot be exported to ONNX (a missing category after a SimpleImputer",
}


def _export(model, tmp_path):
    skvault.dump(model, tmp_path / "m.skv")
    skvault.export_onnx(tmp_path / "m.skv", tmp_path / "m.onnx")
    return session(tmp_path / "m.onnx")


def _run(sess, frame):
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, skvault.onnx_feed(sess, frame))))


def _close(got, want, what):
    assert got.dtype == np.float64, what
    np.testing.assert_allclose(got, want, rtol=EXPORT_RTOL, atol=EXPORT_ATOL, err_msg=what)


@pytest.mark.parametrize("name", sorted(set(PIPELINES) - set(REFUSED)))
def test_text_pipelines_run_in_onnxruntime_as_in_scikit_learn(name, tmp_path):
    model, Xt = _fitted(name)
    proto, sess = _export(model, tmp_path)
    # Unknown categories and missing values are in the rows compared.
    assert Xt.isna().to_numpy().any()
    got = _run(sess, Xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about unknown categories
        if hasattr(model, "classes_"):
            np.testing.assert_array_equal(got["label"], model.predict(Xt))
            if hasattr(model, "predict_proba"):
                _close(got["probabilities"], model.predict_proba(Xt), name)
        elif "scores" in got:  # IsolationForest
            np.testing.assert_array_equal(got["label"], model.predict(Xt))
            _close(got["scores"], model.decision_function(Xt), name)
        else:
            _close(got["prediction"], model.predict(Xt), name)
    # One [N, 1] input per column read: strings for text and category columns.
    meta = {p.key: p.value for p in proto.metadata_props}
    described = json.loads(meta["skvault.input"])
    types = {i.name: i.type for i in sess.get_inputs()}
    assert {d["name"] for d in described} == set(types)
    for d in described:
        assert types[d["name"]] == ("tensor(string)" if d["type"] == "string" else "tensor(double)")
        text = Xt[d["column"]].dtype.kind not in "fiu"
        assert (d["type"] == "string") == text, d


#: The zoo's pipelines that end in trees, forests, gradient boosting or an isolation forest.
TREE_PIPELINES = sorted(n for n in set(PIPELINES) - set(REFUSED) if any(
    w in n for w in ("forest", "tree", "gradient-boosting", "hgb")))


@pytest.mark.parametrize("name", TREE_PIPELINES)
def test_text_pipelines_with_float32_trees(name, tmp_path):
    """`dtype="float32"` behind text encoders: the trees become TreeEnsembleRegressor and the
    model imports ai.onnx.ml 4, which LabelEncoder's tensor attributes allow (HistGradientBoosting
    stays a double TreeEnsemble, opset 5); values within the float32 tolerance (1e-5)."""
    model, Xt = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    skvault.export_onnx(tmp_path / "m.skv", tmp_path / "m.onnx", dtype="float32")
    proto, sess = session(tmp_path / "m.onnx")
    ops = {n.op_type for n in proto.graph.node}
    ml = {o.domain: o.version for o in proto.opset_import}["ai.onnx.ml"]
    if "hgb" in name:
        assert "TreeEnsemble" in ops and "TreeEnsembleRegressor" not in ops and ml == 5
    else:
        assert "TreeEnsembleRegressor" in ops and "TreeEnsemble" not in ops and ml == 4
    got = _run(sess, Xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "probabilities" in got:
            want = model.predict_proba(Xt)
            np.testing.assert_allclose(got["probabilities"], want, rtol=1e-5, atol=1e-6, err_msg=name)
            top = np.sort(want, axis=1)
            clear = top[:, -1] - top[:, -2] > 1e-5
            np.testing.assert_array_equal(got["label"][clear], model.predict(Xt)[clear])
        elif "scores" in got:  # IsolationForest
            want = model.decision_function(Xt)
            np.testing.assert_allclose(got["scores"], want, rtol=1e-5, atol=1e-6, err_msg=name)
            clear = np.abs(want) > 1e-5
            np.testing.assert_array_equal(got["label"][clear], model.predict(Xt)[clear])
        else:
            want = model.predict(Xt)
            np.testing.assert_allclose(got["prediction"], want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=name)


#: Imputers the zoo's refused pipelines hold, where the graph can be exact: numbers with
#: add_indicator, text imputers on columns whose only missing value is the one imputed
#: (city: NaN; plan: None, imputed with missing_values=None).
IMPUTING = {
    "impute-nan-text+indicator-numbers+logistic": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), ["age", "income"]),
                (
                    "text",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                    ["city"],
                ),
            ]
        ),
        LogisticRegression(max_iter=500),
    ),
    "impute-none-constant+ordinal+forest": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="median", add_indicator=True), ["age"]),
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(missing_values=None, strategy="constant", fill_value="missing"),
                        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    ),
                    ["plan"],
                ),
            ]
        ),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ),
}


@pytest.mark.parametrize("name", sorted(IMPUTING))
def test_imputing_pipelines_run_in_onnxruntime_as_in_scikit_learn(name, tmp_path):
    X, Xt = frame(400, 0, holes=True), frame(200, 1, unseen=True, holes=True)
    model = IMPUTING[name]().fit(X, target(X))
    _, sess = _export(model, tmp_path)
    got = _run(sess, Xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(got["label"], model.predict(Xt))
        _close(got["probabilities"], model.predict_proba(Xt), name)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_text_pipelines_the_exporter_cannot_describe_are_refused(name, tmp_path):
    model, _ = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    with pytest.raises(skvault.ExportError) as info:
        skvault.export_onnx(tmp_path / "m.skv", tmp_path / "m.onnx")
    assert REFUSED[name] in str(info.value)
    r = subprocess.run(
        [sys.executable, "-m", "skvault", "export", str(tmp_path / "m.skv"), str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and REFUSED[name] in r.stderr, r.stderr
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: OneHotEncoder(min_frequency=30, handle_unknown="infrequent_if_exist", sparse_output=False),
        lambda: OneHotEncoder(max_categories=3, handle_unknown="ignore", sparse_output=False),
        lambda: OneHotEncoder(min_frequency=0.1, drop="first", handle_unknown="ignore", sparse_output=False),
        lambda: OneHotEncoder(max_categories=4, handle_unknown="warn", sparse_output=False),
        lambda: OneHotEncoder(drop="if_binary", sparse_output=False, handle_unknown="ignore"),
        lambda: OrdinalEncoder(min_frequency=30, handle_unknown="use_encoded_value", unknown_value=-1),
        lambda: OrdinalEncoder(
            max_categories=3, handle_unknown="use_encoded_value", unknown_value=-3, encoded_missing_value=-9
        ),
        lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
    ],
    ids=[
        "onehot-min-frequency",
        "onehot-max-categories",
        "onehot-drop-first",
        "onehot-warn",
        "onehot-if-binary",
        "ordinal-min-frequency",
        "ordinal-max-categories",
        "ordinal-unknown-nan",
    ],
)
def test_text_encoders_with_infrequent_and_unknown_categories(encoder, tmp_path):
    X, Xt = skewed(500, 0), skewed(300, 1, unseen=True)
    enc = encoder().fit(X)
    _, sess = _export(enc, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = enc.transform(Xt)
    got = _run(sess, Xt)["transformed"]
    # Encoders are exact: the same bits, NaN where scikit-learn gives NaN.
    np.testing.assert_array_equal(got, want)


def test_text_imputers_feed_encoders(tmp_path):
    X, Xt = skewed(300, 0), skewed(200, 1, unseen=True)
    for model in (
        make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
        make_pipeline(
            SimpleImputer(strategy="constant", fill_value="?"),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        ),
        # The indicator's 0/1 column reaches the encoder as a feature of bool categories.
        make_pipeline(
            SimpleImputer(strategy="constant", fill_value="?", add_indicator=True),
            OneHotEncoder(handle_unknown="ignore", drop="if_binary"),
        ),
    ):
        model.fit(X)
        _, sess = _export(model, tmp_path)
        want = model.transform(Xt)
        want = want.toarray() if hasattr(want, "toarray") else want
        np.testing.assert_array_equal(_run(sess, Xt)["transformed"], want, err_msg=repr(model))


def test_input_names_are_sanitized_and_kept_apart_from_the_graph_names(tmp_path):
    X = pd.DataFrame(
        {
            "first name": ["a", "b", "a", "c"] * 10,
            "1st": ["x", "y", "y", "x"] * 10,
            "label": ["p", "q", "q", "p"] * 10,
        }
    )
    y = np.array([0, 1, 1, 0] * 10)
    model = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()).fit(X, y)
    proto, sess = _export(model, tmp_path)
    assert [i.name for i in sess.get_inputs()] == ["first_name", "_1st", "label_1"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert [d["column"] for d in json.loads(meta["skvault.input"])] == list(X.columns)
    # The CLI writes the same graph.
    r = subprocess.run(
        [sys.executable, "-m", "skvault", "export", str(tmp_path / "m.skv"), str(tmp_path / "cli.onnx")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()
    Xt = X.iloc[:5].assign(label=["p", "zz", None, "q", "p"])
    got = _run(sess, Xt)
    np.testing.assert_array_equal(got["label"], model.predict(Xt))
    _close(got["probabilities"], model.predict_proba(Xt), "sanitized")


def test_none_and_nan_as_two_categories_are_refused(tmp_path):
    # A string tensor has one missing value (""): two missing categories cannot be told apart.
    X = pd.DataFrame({"c": pd.Series(["a", None, np.nan, "b", None], dtype=object)})
    enc = OneHotEncoder().fit(X)
    skvault.dump(enc, tmp_path / "e.skv")
    with pytest.raises(skvault.ExportError, match="two categories are missing values or the empty string"):
        skvault.export_onnx(tmp_path / "e.skv", tmp_path / "e.onnx")
    assert not (tmp_path / "e.onnx").exists()


def test_onnx_feed_reads_nullable_numbers_and_feeds_numeric_models_their_matrix(tmp_path):
    X = pd.DataFrame(
        {
            "n": pd.array([1, None, 3, 4, 5, None, 7, 8] * 5, dtype="Int64"),
            "c": pd.Series(["a", "b", None, "a", "b", "a", "b", "a"] * 5, dtype=object),
        }
    )
    y = np.array([0, 1, 1, 0, 1, 0, 1, 0] * 5)
    model = make_pipeline(
        ColumnTransformer(
            [("n", SimpleImputer(), ["n"]), ("c", OneHotEncoder(handle_unknown="ignore"), ["c"])]
        ),
        LogisticRegression(),
    ).fit(X, y)
    _, sess = _export(model, tmp_path)
    feed = skvault.onnx_feed(sess, X)
    assert feed["n"].dtype == np.float64 and np.isnan(feed["n"][1, 0])
    assert feed["c"][2, 0] == ""
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
    np.testing.assert_array_equal(got["label"], model.predict(X))
    _close(got["probabilities"], model.predict_proba(X), "nullable")
    # A model without text keeps the single input X, which onnx_feed fills from the frame.
    numeric = make_pipeline(SimpleImputer(), LogisticRegression()).fit(X[["n"]].astype("float64"), y)
    _, sess = _export(numeric, tmp_path)
    assert [i.name for i in sess.get_inputs()] == ["X"]
    got = sess.run(None, skvault.onnx_feed(sess, X[["n"]]))[0]
    np.testing.assert_array_equal(got, numeric.predict(X[["n"]].astype("float64")))
