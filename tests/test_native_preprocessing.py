"""Native transformers and composites, compared live with scikit-learn.

Element-wise transformers are bit-identical; PCA and Normalizer(norm="l2") sum products
in an order numpy leaves to BLAS/einsum, so they are compared within a tolerance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

import skvault
from native_helpers import (
    assert_both_raise,
    assert_same,
    datasets,
    encoder_data,
    one_hot_encoders,
    roundtrip,
)

DATA = datasets()


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


EXACT = {
    "StandardScaler": lambda: StandardScaler(),
    "StandardScaler-nomean": lambda: StandardScaler(with_mean=False),
    "StandardScaler-nostd": lambda: StandardScaler(with_std=False),
    "MinMaxScaler": lambda: MinMaxScaler(),
    "MinMaxScaler-clip": lambda: MinMaxScaler(feature_range=(-2, 3), clip=True),
    "MaxAbsScaler": lambda: MaxAbsScaler(),
    "RobustScaler": lambda: RobustScaler(),
    "RobustScaler-nocenter": lambda: RobustScaler(with_centering=False, quantile_range=(10, 90)),
    "Normalizer-l1": lambda: Normalizer(norm="l1"),
    "Normalizer-max": lambda: Normalizer(norm="max"),
    "SimpleImputer-mean": lambda: SimpleImputer(),
    "SimpleImputer-median": lambda: SimpleImputer(strategy="median"),
    "SimpleImputer-most_frequent": lambda: SimpleImputer(strategy="most_frequent"),
    "SimpleImputer-constant": lambda: SimpleImputer(strategy="constant", fill_value=-7.5),
    "PolynomialFeatures-2": lambda: PolynomialFeatures(2),
    "PolynomialFeatures-3-nobias": lambda: PolynomialFeatures(3, include_bias=False),
    "PolynomialFeatures-interaction": lambda: PolynomialFeatures(3, interaction_only=True),
    "PolynomialFeatures-2to3": lambda: PolynomialFeatures((2, 3)),
    "PolynomialFeatures-2to3-nobias": lambda: PolynomialFeatures((2, 3), include_bias=False),
    "FunctionTransformer": lambda: FunctionTransformer(),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_transformers(tmp_path, name):
    nan = name.startswith(("SimpleImputer", "StandardScaler", "MinMax", "MaxAbs", "Robust"))
    X, _, Xt = DATA["binary_nan" if nan else "binary"]
    model = EXACT[name]().fit(X)
    native = roundtrip(model, tmp_path)
    rows = np.vstack([Xt, Xt * 1e3, -Xt])
    assert_same(native.transform(rows), _dense(model.transform(rows)), "transform")


def test_imputer_with_a_numeric_missing_marker_and_empty_columns(tmp_path):
    X, _, Xt = DATA["binary"]
    X = X.copy()
    X[:, 3] = np.where(X[:, 3] == 2, -1, X[:, 3])
    model = SimpleImputer(missing_values=-1.0, strategy="median").fit(X)
    assert_same(roundtrip(model, tmp_path).transform(Xt), model.transform(Xt), "marker")
    Xe = X.copy()
    Xe[:, 2] = np.nan
    for keep in (False, True):
        model = SimpleImputer(keep_empty_features=keep).fit(Xe)
        got = roundtrip(model, tmp_path).transform(Xt)
        assert_same(got, model.transform(Xt), f"keep_empty_features={keep}")


@pytest.mark.parametrize("whiten", [False, True])
def test_pca(tmp_path, whiten):
    X, _, Xt = DATA["regression"]
    model = PCA(n_components=4, whiten=whiten).fit(X)
    got, want = roundtrip(model, tmp_path).transform(Xt), model.transform(Xt)
    scale = (np.abs(Xt) + np.abs(model.mean_)) @ np.abs(model.components_).T
    if whiten:
        scale = scale / np.sqrt(model.explained_variance_)
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 1e-14 * scale), np.max(np.abs(got - want) / scale)


def test_normalizer_l2(tmp_path):
    X, _, Xt = DATA["regression"]
    model = Normalizer().fit(X)
    np.testing.assert_allclose(roundtrip(model, tmp_path).transform(Xt), model.transform(Xt),
                               rtol=1e-15, atol=0)


ENCODERS = {
    **{f"onehot-{name}": make for name, make in one_hot_encoders().items()},
    "ordinal": lambda: OrdinalEncoder(),
    "ordinal-unknown": lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
}


@pytest.mark.parametrize("make", list(ENCODERS.values()), ids=list(ENCODERS))
def test_encoders(tmp_path, make):
    X, Xt, unknown = encoder_data()
    model = make().fit(X)
    native = roundtrip(model, tmp_path)
    assert_same(native.transform(Xt), _dense(model.transform(Xt)), "known categories")
    if model.handle_unknown == "error":
        assert_both_raise(lambda: model.transform(unknown), lambda: native.transform(unknown))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns about unknown categories
            want = _dense(model.transform(unknown))
        assert_same(native.transform(unknown), want, "unknown categories")


def test_text_categories_load_and_read_text_only_from_frames(tmp_path):
    # Encoders fitted on text are supported (tests/test_native_text.py); a numeric matrix
    # cannot hold their values and is refused.
    model = OneHotEncoder().fit(np.array([["a"], ["b"]], dtype=object))
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    native = skvault.native.load(path)
    with pytest.raises(ValueError, match="fitted on text"):
        native.transform(np.array([[0.0]]))


def _mixed():
    X, y, Xt = DATA["multiclass"]
    return X, y, Xt


def test_pipeline_scaler_logistic(tmp_path):
    X, y, Xt = _mixed()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    native = roundtrip(model, tmp_path)
    assert_same(native.predict(Xt), model.predict(Xt), "predict")
    np.testing.assert_allclose(native.predict_proba(Xt), model.predict_proba(Xt), rtol=1e-12, atol=1e-15)
    assert native.classes_.tolist() == model.classes_.tolist()


def test_pipeline_with_forest_is_bit_identical(tmp_path):
    X, y, Xt = DATA["binary_nan"]
    model = make_pipeline(SimpleImputer(), MinMaxScaler(), RandomForestClassifier(10, random_state=0))
    model.fit(X, y)
    native = roundtrip(model, tmp_path)
    assert_same(native.predict_proba(Xt), model.predict_proba(Xt), "predict_proba")


def test_column_transformer_and_feature_union(tmp_path):
    X, y, Xt = _mixed()
    X, Xt = X.copy(), Xt.copy()
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), [0, 1, 2]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), [3]),
            ("drop", "drop", [4]),
        ],
        remainder="passthrough",
    )
    union = FeatureUnion(
        [("poly", PolynomialFeatures(2)), ("id", "passthrough"), ("no", "drop")],
        transformer_weights={"poly": 0.5},
    )
    model = Pipeline([("ct", ct), ("u", union), ("skip", "passthrough"), ("clf", Ridge())])
    model.fit(X, y.astype(float))
    native = roundtrip(model, tmp_path)
    head = Pipeline(model.steps[:-1])
    assert_same(roundtrip(head, tmp_path, "h.skv").transform(Xt), head.transform(Xt), "features")
    np.testing.assert_allclose(native.predict(Xt), model.predict(Xt), rtol=1e-12)


def test_column_transformer_with_mask_and_slice(tmp_path):
    X, y, Xt = _mixed()
    ct = ColumnTransformer(
        [("a", MinMaxScaler(), np.array([False, True, False, False, True, False])),
         ("b", RobustScaler(), slice(2, 4))],
        remainder=StandardScaler(),
    )
    model = ct.fit(X)
    assert_same(roundtrip(model, tmp_path).transform(Xt), model.transform(Xt), "transform")


def test_column_transformer_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, Xt = _mixed()
    cols = [f"f{i}" for i in range(X.shape[1])]
    df, dft = pd.DataFrame(X, columns=cols), pd.DataFrame(Xt, columns=cols)
    model = ColumnTransformer([("a", MinMaxScaler(), ["f1", "f4"])], remainder="passthrough").fit(df)
    native = roundtrip(model, tmp_path)
    assert list(native.feature_names_in_) == cols
    assert_same(native.transform(Xt), model.transform(dft), "transform")


def test_unsupported_member_is_named_at_load(tmp_path):
    X, y, _ = _mixed()
    model = make_pipeline(MinMaxScaler(), FunctionTransformer(np.log1p), Ridge()).fit(X, y)
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    with pytest.raises(skvault.UnsupportedModelError, match="steps/1.*FunctionTransformer"):
        skvault.native.load(path)
