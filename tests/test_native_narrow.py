"""Pipelines whose final trees read few of the columns before them (docs/NATIVE.md,
"Narrowed pipelines").

A one-hot encoding makes hundreds of columns; HistGradientBoosting splits on a few. Native
inference then builds only the columns the trees read. What must not change: outputs
(bit-identical to scikit-learn), and every error scikit-learn raises, including those from
columns no tree reads (an unknown category, text where a number is expected).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skvault
import skvault.native
from native_helpers import assert_both_raise, assert_same

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

N_CATS = 40


def frame(n: int, seed: int, unseen: bool = False) -> "pd.DataFrame":
    rng = np.random.default_rng(seed)
    cats = [f"c{i}" for i in range(N_CATS)] + (["never-seen"] if unseen else [])
    a = rng.choice(cats, n).astype(object)
    a[rng.random(n) < 0.05] = np.nan
    b = rng.choice([f"b{i}" for i in range(N_CATS)], n).astype(object)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "a": pd.Series(a, dtype="str"),
            "x": x,
            "b": pd.Series(b, dtype=object),
            "z": rng.normal(size=n),
            "w": rng.normal(size=n),
        }
    )


def target(df: "pd.DataFrame") -> np.ndarray:
    a_code = df["a"].fillna("c0").str[1:].astype(int).to_numpy()
    return ((a_code % 7 == 0) + np.nan_to_num(df["x"].to_numpy()) > 0.5).astype(int)


def preprocessor(on_unknown: str = "ignore") -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown=on_unknown, sparse_output=False),
                ),
                ["a", "b"],
            ),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["x", "z"]),
            ("rest", "passthrough", ["w"]),
        ]
    )


def fitted(final, on_unknown: str = "ignore"):
    df = frame(600, 0)
    y = target(df) if hasattr(final, "predict_proba") else df["z"].to_numpy()
    model = make_pipeline(preprocessor(on_unknown), final).fit(df, y)
    return model


def used_share(model) -> float:
    """The share of the preprocessor's outputs the trees split on: the premise of these tests
    (narrowing applies at most at 3/4)."""
    hgb = model[-1]
    used = set()
    for iteration in hgb._predictors:
        for p in iteration:
            nodes = p.nodes
            used |= set(nodes["feature_idx"][nodes["is_leaf"] == 0].tolist())
    return len(used) / hgb.n_features_in_


SHALLOW = {"max_iter": 4, "max_depth": 2, "random_state": 0}


@pytest.mark.parametrize(
    "final",
    [HistGradientBoostingClassifier(**SHALLOW), HistGradientBoostingRegressor(**SHALLOW)],
    ids=["classifier", "regressor"],
)
def test_narrowed_pipeline_outputs_equal_scikit_learn(tmp_path, final):
    model = fitted(final)
    assert used_share(model) < 0.25
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    df = frame(3000, 1, unseen=True)
    methods = ["predict", "predict_proba"] if hasattr(model, "predict_proba") else ["predict"]
    for method in methods:
        want = getattr(model, method)(df)
        assert_same(getattr(native, method)(df), want, f"{method} on a DataFrame")
        assert_same(getattr(native, method)(pa.Table.from_pandas(df)), want, f"{method} on a table")
        assert_same(getattr(native, method)(df.iloc[:1]), want[:1], f"{method} on one row")


def test_an_unknown_category_in_columns_no_tree_reads_still_raises(tmp_path):
    model = fitted(HistGradientBoostingClassifier(**SHALLOW), on_unknown="error")
    assert used_share(model) < 0.25
    # "b" is noise: no tree splits on any of its 40 columns.
    hgb = model[-1]
    b_columns = {i for i, n in enumerate(model[0].get_feature_names_out()) if n.startswith("text__b_")}
    for iteration in hgb._predictors:
        for p in iteration:
            assert not b_columns & set(p.nodes["feature_idx"][p.nodes["is_leaf"] == 0].tolist())
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    df = frame(50, 2)
    assert_same(native.predict_proba(df), model.predict_proba(df), "known categories")
    df.loc[7, "b"] = "never-seen"
    assert_both_raise(lambda: model.predict_proba(df), lambda: native.predict_proba(df))
    with pytest.raises(ValueError, match=r"row 7, column 1: Found unknown categories \['never-seen'\]"):
        native.predict(df)


def test_text_in_a_number_column_no_tree_reads_still_raises(tmp_path):
    model = fitted(HistGradientBoostingClassifier(**SHALLOW))
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    df = frame(20, 3)
    df["w"] = df["w"].astype(object)
    df.loc[3, "w"] = "text"
    assert_both_raise(lambda: model.predict(df), lambda: native.predict(df))


def test_infinity_in_a_passthrough_column_is_accepted_as_scikit_learn_accepts_it(tmp_path):
    model = fitted(HistGradientBoostingClassifier(**SHALLOW))
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    df = frame(20, 4)
    df.loc[5, "w"] = np.inf
    assert_same(native.predict_proba(df), model.predict_proba(df), "infinity in w")


def test_a_feature_union_block_is_narrowed_by_picking(tmp_path):
    """A FeatureUnion of a scaler and a one-hot encoder over numeric codes: the scaler's
    block cannot narrow itself, so its kept columns are picked from its whole output."""
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.integers(0, 30, 500), rng.normal(size=500), rng.normal(size=500)])
    y = (X[:, 0] % 5 == 0).astype(int)
    union = FeatureUnion([("scaled", StandardScaler()), ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    model = make_pipeline(union, HistGradientBoostingClassifier(**SHALLOW))
    union.set_params(onehot__sparse_output=False)
    model.fit(X, y)
    assert used_share(model) < 0.75
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    T = np.column_stack([rng.integers(0, 35, 300), rng.normal(size=300), rng.normal(size=300)])
    assert_same(native.predict_proba(T), model.predict_proba(T), "FeatureUnion")
