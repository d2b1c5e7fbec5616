"""skvault.native on DataFrames with text and category columns (issue 19, first part).

Encoders fitted on strings read them from the frame; category columns arrive as codes and
categories; None, NaN and pd.NA stay apart as scikit-learn keeps them. Expected values come
from scikit-learn, live, on the same frames (with unknown categories and missing values).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    ExtraTreesRegressor,
    IsolationForest,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

import skvault
import skvault.native
from native_helpers import assert_same

pd = pytest.importorskip("pandas")

CITIES = ["Lyon", "Paris", "Nice", "Brest"]


def frame(n: int, seed: int, unseen: bool = False, holes: bool = False) -> "pd.DataFrame":
    """Numbers, text with NaN (pandas' str dtype), an object column with None, a category
    column with missing values. ``unseen`` adds values never seen in fit; ``holes`` puts
    NaN in the numbers too."""
    rng = np.random.default_rng(seed)
    cities = CITIES + (["Oslo"] if unseen else [])
    city = rng.choice(cities, n).astype(object)
    city[rng.random(n) < 0.1] = np.nan
    plan = rng.choice(["basic", "pro", "team"] + (["gold"] if unseen else []), n).astype(object)
    plan[rng.random(n) < 0.1] = None
    grades = ["A", "B", "C"] + (["D"] if unseen else [])
    grade = pd.Categorical(rng.choice(grades, n), categories=grades)
    grade[rng.random(n) < 0.1] = np.nan
    age = rng.normal(40, 12, n)
    if holes:
        age[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "city": pd.Series(city, dtype="str"),
            "income": rng.lognormal(3, 1, n),
            "plan": pd.Series(plan, dtype=object),
            "grade": grade,
        }
    )


def target(X: "pd.DataFrame") -> np.ndarray:
    score = (X["age"].fillna(40) - 40) / 12 + (X["city"] == "Paris") - (X["plan"] == "pro") * 0.5
    return (score.to_numpy() > 0).astype(np.int64)


def encoded_ct(encoder_factory):
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("text", encoder_factory(), ["city", "plan"]),
        ],
        remainder="drop",
    )


PIPELINES = {
    "onehot-ignore+logistic": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(handle_unknown="ignore")), LogisticRegression(max_iter=500)
    ),
    "onehot-drop-first+logistic": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(drop="first", handle_unknown="ignore")),
        LogisticRegression(max_iter=500),
    ),
    "onehot-if-binary+forest": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False)),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ),
    "ordinal-encoded-value+forest": lambda: make_pipeline(
        encoded_ct(
            lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
        ),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ),
    "selector-by-dtype+ridge": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), make_column_selector(dtype_include="number")),
                ("text", OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include=["object", "str"])),
                ("cat", OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_include="category")),
            ]
        ),
        Ridge(),
    ),
    "impute-text+onehot+logistic": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), ["age", "income"]),
                (
                    "text",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                    ["city", "plan"],
                ),
            ]
        ),
        LogisticRegression(max_iter=500),
    ),
    "impute-constant-indicator+ordinal+forest": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="median"), ["age"]),
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="missing", add_indicator=True),
                        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    ),
                    ["city"],
                ),
            ]
        ),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ),
    "onehot-scaled+gradient-boosting": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(handle_unknown="ignore")),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
    ),
    "ordinal+extra-trees-regressor": lambda: make_pipeline(
        encoded_ct(lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
        ExtraTreesRegressor(n_estimators=5, random_state=0),
    ),
    "onehot-min-frequency+multinomial": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(min_frequency=60, handle_unknown="infrequent_if_exist")),
        LogisticRegression(max_iter=500),
    ),
    "onehot+sgd-log-loss": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(handle_unknown="ignore")),
        SGDClassifier(loss="log_loss", random_state=0),
    ),
    "target-encoder+hgb": lambda: make_pipeline(
        ColumnTransformer(
            [("te", TargetEncoder(random_state=0), ["city", "plan"]), ("num", "passthrough", ["age", "income"])]
        ),
        HistGradientBoostingClassifier(max_iter=10, random_state=0),
    ),
    "text-imputer+tree": lambda: make_pipeline(
        ColumnTransformer(
            [
                (
                    "text",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                    ["city", "plan"],
                ),
                ("num", "passthrough", ["age", "income"]),
            ],
        ),
        DecisionTreeClassifier(max_depth=6, random_state=0),
    ),
    "positions-and-mask+ridge": lambda: make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), [0, 2]),
                ("text", OneHotEncoder(handle_unknown="ignore"), [False, True, False, True, False]),
            ],
            verbose_feature_names_out=False,
        ),
        Ridge(),
    ),
    "category-onehot+forest": lambda: make_pipeline(
        ColumnTransformer(
            [("grade", OneHotEncoder(handle_unknown="ignore"), ["grade"]), ("num", "passthrough", ["age"])]
        ),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ),
    "onehot+linear-svc": lambda: make_pipeline(
        encoded_ct(lambda: OneHotEncoder(handle_unknown="ignore")), LinearSVC(random_state=0)
    ),
    "ordinal+isolation-forest": lambda: make_pipeline(
        encoded_ct(lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
        IsolationForest(n_estimators=20, random_state=0),
    ),
    "hgb-from-dtype-regressor": lambda: HistGradientBoostingRegressor(
        categorical_features="from_dtype", max_iter=10, random_state=0
    ),
    "hgb-from-dtype": lambda: HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=15, random_state=0
    ),
    "hgb-text-categories": lambda: HistGradientBoostingRegressor(
        categorical_features=["city", "plan"], max_iter=15, random_state=0
    ),
}

HGB_COLUMNS = {
    "hgb-from-dtype": ["age", "income", "grade"],
    "hgb-from-dtype-regressor": ["age", "income", "grade"],
    "hgb-text-categories": ["age", "income", "city", "plan"],
}


def _fitted(name):
    holes = name in HOLES
    X, Xt = frame(400, 0, holes=holes), frame(200, 1, unseen=True, holes=holes)
    columns = HGB_COLUMNS.get(name)
    if columns is not None:
        X, Xt = X[columns], Xt[columns]
    model = PIPELINES[name]().fit(X, target(frame(400, 0)))
    return model, Xt


#: Final estimators whose scores scikit-learn computes with BLAS (a sparse or dense dot
#: product of its own summation order): within docs/NATIVE.md's tolerance, labels exact.
LINEAR = {
    "onehot+linear-svc",
    "onehot-min-frequency+multinomial",
    "onehot+sgd-log-loss",
    "positions-and-mask+ridge",
    "onehot-ignore+logistic",
    "onehot-drop-first+logistic",
    "selector-by-dtype+ridge",
    "impute-text+onehot+logistic",
}
#: Pipelines fitted and checked on frames with NaN among the numbers too.
HOLES = {"impute-text+onehot+logistic", "impute-constant-indicator+ordinal+forest"}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_mixed_pipelines_match_scikit_learn(name, tmp_path):
    model, Xt = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about unknown categories
        for method in ("predict", "predict_proba", "decision_function", "score_samples"):
            if not hasattr(model, method):
                continue
            got, want = getattr(native, method)(Xt), getattr(model, method)(Xt)
            if name in LINEAR and not (method == "predict" and hasattr(model, "classes_")):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"{name} {method}")
            else:
                assert_same(got, want, f"{name} {method}")


SLICED = ["impute-text+onehot+logistic", "onehot-if-binary+forest", "ordinal-encoded-value+forest"]


@pytest.mark.parametrize("name", SLICED)
def test_frames_scored_in_parallel_slices_give_the_whole_frames_outputs(name, tmp_path):
    # Frames of more than 2 * SLICE_ROWS rows are scored natively in row slices on all
    # cores: the outputs must be scikit-learn's, and the very values of the same rows
    # scored in frames too small to be sliced.
    from skvault import _native

    n = 2 * _native.SLICE_ROWS + 777
    model, _ = _fitted(name)
    big = frame(n, 3, unseen=True, holes=name in HOLES)
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about unknown categories
        for method in ("predict", "predict_proba"):
            got = getattr(native, method)(big)
            pieces = np.concatenate(
                [getattr(native, method)(big.iloc[i : i + 500]) for i in range(0, n, 500)]
            )
            assert np.array_equal(got, pieces), f"{name} {method}: sliced differs from small frames"
            want = getattr(model, method)(big)
            if name in LINEAR and method != "predict":
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=f"{name} {method}")
            else:
                assert_same(got, want, f"{name} {method}")


def test_an_error_in_a_late_slice_names_the_row_of_the_whole_frame(tmp_path):
    from skvault import _native

    n = 3 * _native.SLICE_ROWS + 11
    enc = OneHotEncoder(handle_unknown="error").fit(frame(200, 0)[["city"]])
    skvault.dump(enc, tmp_path / "e.skv")
    row = n - 5  # in the last slice
    city = np.array(["Lyon"] * n, dtype=object)
    city[row] = "Oslo"
    Xt = pd.DataFrame({"city": pd.Series(city, dtype="str")})
    with pytest.raises(ValueError, match=rf"row {row}, column 0: Found unknown categories \['Oslo'\]"):
        skvault.native.load(tmp_path / "e.skv").transform(Xt)


def test_bare_encoders_transform_text_as_scikit_learn(tmp_path):
    X, Xt = frame(300, 0)[["city", "plan"]], frame(100, 2)[["city", "plan"]]
    for enc in (
        OneHotEncoder(sparse_output=False),
        OrdinalEncoder(),
        OrdinalEncoder(encoded_missing_value=-7),
    ):
        enc.fit(X)
        skvault.dump(enc, tmp_path / "e.skv")
        got = skvault.native.load(tmp_path / "e.skv").transform(Xt)
        assert_same(got, enc.transform(Xt), repr(enc))


def test_none_and_nan_are_different_categories(tmp_path):
    # In an object column, scikit-learn's encoders give None and NaN categories of their own.
    X = pd.DataFrame({"c": pd.Series(["a", None, np.nan, "b", None], dtype=object)})
    enc = OneHotEncoder(sparse_output=False).fit(X)
    assert len(enc.categories_[0]) == 4
    skvault.dump(enc, tmp_path / "e.skv")
    Xt = pd.DataFrame({"c": pd.Series([np.nan, None, "b", "a"], dtype=object)})
    assert_same(skvault.native.load(tmp_path / "e.skv").transform(Xt), enc.transform(Xt), "None vs NaN")


def test_unknown_text_is_refused_as_scikit_learn_refuses_it(tmp_path):
    X = frame(200, 0)[["city"]]
    enc = OneHotEncoder(handle_unknown="error").fit(X)
    skvault.dump(enc, tmp_path / "e.skv")
    Xt = pd.DataFrame({"city": pd.Series(["Lyon", "Oslo"], dtype="str")})
    with pytest.raises(ValueError, match="unknown categor"):
        enc.transform(Xt)
    with pytest.raises(ValueError, match=r"row 1, column 0: Found unknown categories \['Oslo'\]"):
        skvault.native.load(tmp_path / "e.skv").transform(Xt)


def test_text_where_the_model_expects_numbers_names_the_column(tmp_path):
    model, Xt = _fitted("onehot-ignore+logistic")
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    bad = Xt.assign(income=pd.Series(["12.5", "twelve"] * (len(Xt) // 2), dtype="str"))
    with pytest.raises(ValueError, match="could not convert string to float"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r'column "income" holds text \("twelve" at row 1\)'):
        native.predict(bad)
    # Text that is a number is read as numpy reads it, as scikit-learn does.
    numeric_text = Xt.assign(income=Xt["income"].map(lambda v: f" {v!r} ").astype("str"))
    assert_same(native.predict(numeric_text), model.predict(numeric_text), "numbers as text")


def test_a_missing_text_column_is_named(tmp_path):
    model, Xt = _fitted("onehot-ignore+logistic")
    skvault.dump(model, tmp_path / "m.skv")
    with pytest.raises(ValueError, match="plan"):
        model.predict(Xt.drop(columns=["plan"]))
    with pytest.raises(ValueError, match=r"missing: \['plan'\]"):
        skvault.native.load(tmp_path / "m.skv").predict(Xt.drop(columns=["plan"]))


def test_numeric_matrices_are_refused_by_encoders_fitted_on_text(tmp_path):
    enc = OrdinalEncoder().fit(frame(50, 0)[["city"]])
    skvault.dump(enc, tmp_path / "e.skv")
    with pytest.raises(ValueError, match="fitted on text: pass a DataFrame"):
        skvault.native.load(tmp_path / "e.skv").transform(np.zeros((2, 1)))


def test_text_imputers_and_indicators_transform_as_scikit_learn(tmp_path):
    X, Xt = frame(300, 0, holes=True), frame(100, 3, holes=True)
    text = ["city", "plan"]
    cases = [
        (SimpleImputer(strategy="most_frequent"), text),
        (SimpleImputer(strategy="constant", fill_value="?", add_indicator=True), text),
        (MissingIndicator(), text),
        (MissingIndicator(features="all"), ["age", "city"]),
        (SimpleImputer(add_indicator=True), ["age", "income"]),
    ]
    for est, cols in cases:
        est.fit(X[cols])
        skvault.dump(est, tmp_path / "e.skv")
        native = skvault.native.load(tmp_path / "e.skv")
        want = est.transform(Xt[cols])
        if want.dtype == object:
            # A text imputer's output is text: compare it through the encoder that follows
            # it in a pipeline (above); alone, only its numeric columns are numbers.
            with pytest.raises(ValueError, match="could not convert string to float"):
                native.transform(Xt[cols])
            continue
        # MissingIndicator returns booleans; native inference returns them as 0.0 and 1.0.
        assert_same(native.transform(Xt[cols]), want.astype(np.float64), repr(est))


def test_a_missing_value_new_in_transform_is_refused_as_scikit_learn_refuses_it(tmp_path):
    X = frame(100, 0)[["city", "plan"]].assign(plan=pd.Series(["a"] * 100, dtype=object))
    ind = MissingIndicator().fit(X)
    skvault.dump(ind, tmp_path / "e.skv")
    Xt = X.assign(plan=pd.Series([np.nan] + ["a"] * 99, dtype=object))
    with pytest.raises(ValueError, match="have missing values in transform but have no missing values in fit"):
        ind.transform(Xt)
    with pytest.raises(ValueError, match=r"The features \[1\] have missing values in transform"):
        skvault.native.load(tmp_path / "e.skv").transform(Xt)


def test_a_none_marker_refuses_nan_as_scikit_learn_does(tmp_path):
    X = pd.DataFrame({"c": pd.Series(["a", None, "b", "a"], dtype=object)})
    imp = make_pipeline(SimpleImputer(missing_values=None, strategy="most_frequent"), OneHotEncoder())
    imp.fit(X)
    skvault.dump(imp, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    ok = pd.DataFrame({"c": pd.Series([None, "b"], dtype=object)})
    assert_same(native.transform(ok), imp.transform(ok).toarray(), "None imputed")
    bad = pd.DataFrame({"c": pd.Series([np.nan, "b"], dtype=object)})
    with pytest.raises(ValueError, match="Input (X )?contains NaN"):
        imp.transform(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        native.transform(bad)


def skewed(n: int, seed: int, unseen: bool = False) -> "pd.DataFrame":
    """Text with rare values (infrequent categories), NaN among them."""
    rng = np.random.default_rng(seed)
    values = np.array(["a", "b", "c", "d", "e", "nan"] + (["zz"] if unseen else []), dtype=object)
    p = [0.35, 0.25, 0.15, 0.06, 0.04, 0.1, 0.05] if unseen else [0.4, 0.25, 0.15, 0.06, 0.04, 0.1]
    col = rng.choice(values, n, p=p)
    col[col == "nan"] = np.nan
    other = rng.choice(["x", "y", "w"], n, p=[0.7, 0.25, 0.05]).astype(object)
    return pd.DataFrame({"t": pd.Series(col, dtype=object), "u": pd.Series(other, dtype="str")})


@pytest.mark.parametrize(
    "encoder",
    [
        lambda: OneHotEncoder(min_frequency=30, handle_unknown="infrequent_if_exist", sparse_output=False),
        lambda: OneHotEncoder(max_categories=3, handle_unknown="ignore", sparse_output=False),
        lambda: OneHotEncoder(min_frequency=0.1, drop="first", handle_unknown="ignore", sparse_output=False),
        lambda: OneHotEncoder(max_categories=4, handle_unknown="warn", sparse_output=False),
        lambda: OrdinalEncoder(min_frequency=30, handle_unknown="use_encoded_value", unknown_value=-1),
        lambda: OrdinalEncoder(max_categories=3, handle_unknown="use_encoded_value", unknown_value=-3,
                               encoded_missing_value=-9),
    ],
    ids=["onehot-min-frequency", "onehot-max-categories", "onehot-drop-first", "onehot-warn",
         "ordinal-min-frequency", "ordinal-max-categories"],
)
def test_infrequent_categories_group_as_scikit_learn_groups_them(encoder, tmp_path):
    X, Xt = skewed(500, 0), skewed(300, 1, unseen=True)
    enc = encoder().fit(X)
    assert any(c is not None for c in enc.infrequent_categories_)
    skvault.dump(enc, tmp_path / "e.skv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # handle_unknown="warn"
        want = enc.transform(Xt)
    assert_same(skvault.native.load(tmp_path / "e.skv").transform(Xt), want, repr(enc))


@pytest.mark.parametrize("kind", ["binary", "continuous", "multiclass"])
def test_target_encoder_transforms_as_scikit_learn(kind, tmp_path):
    X, Xt = frame(400, 0)[["city", "plan", "age"]], frame(150, 4, unseen=True)[["city", "plan", "age"]]
    rng = np.random.default_rng(5)
    y = {
        "binary": target(frame(400, 0)),
        "continuous": rng.normal(size=400) + (X["city"] == "Paris").to_numpy(),
        "multiclass": rng.choice(["lo", "mid", "hi"], 400),
    }[kind]
    enc = TargetEncoder(random_state=0).fit(X[["city", "plan"]], y)
    skvault.dump(enc, tmp_path / "e.skv")
    got = skvault.native.load(tmp_path / "e.skv").transform(Xt[["city", "plan"]])
    assert_same(got, enc.transform(Xt[["city", "plan"]]), f"TargetEncoder {kind}")
    # In a pipeline, after a ColumnTransformer.
    model = make_pipeline(
        ColumnTransformer([("te", TargetEncoder(random_state=0), ["city", "plan"]), ("num", "passthrough", ["age"])]),
        RandomForestClassifier(n_estimators=5, random_state=0) if kind != "continuous" else Ridge(),
    ).fit(X, y)
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    if kind == "continuous":
        np.testing.assert_allclose(native.predict(Xt), model.predict(Xt), rtol=1e-12, atol=1e-14)
    else:
        assert_same(native.predict_proba(Xt), model.predict_proba(Xt), f"pipeline {kind}")


def test_validation_dataframes_round_trip_with_their_dtypes(tmp_path):
    X, y = frame(300, 0, holes=True), target(frame(300, 0, holes=True))
    X = X.assign(
        visits=pd.array(np.where(np.arange(300) % 7 == 0, None, np.arange(300) % 5), dtype="Int64"),
        flag=pd.array(np.where(np.arange(300) % 11 == 0, None, np.arange(300) % 2 == 0), dtype="boolean"),
        note=pd.array(np.where(np.arange(300) % 13 == 0, None, "n"), dtype="string"),
    )
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income", "visits", "flag"]),
                ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan", "grade"]),
            ]
        ),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ).fit(X, y)
    path = tmp_path / "m.skv"
    skvault.dump(model, path, validation=(X, y))
    loaded = skvault.load(path, validate=True)
    assert type(loaded).__name__ == "Pipeline"
    # What is stored gives back the same frame (dtypes, categories, missing values).
    from skvault import _validation

    stored = _validation.frame_to_tree(X.iloc[:100])
    pd.testing.assert_frame_equal(_validation.tree_to_frame(stored), X.iloc[:100].reset_index(drop=True))
    schema = skvault.inspect(path)["metadata"]["input_schema"]
    assert schema["source"] == "validation"
    assert {c["name"]: c["dtype"] for c in schema["columns"]} == {n: str(t) for n, t in X.dtypes.items()}


def test_a_validation_column_of_an_unsupported_dtype_is_refused_by_name(tmp_path):
    X = pd.DataFrame({"a": [1.0, 2.0], "when": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    model = make_pipeline(StandardScaler()).fit(X[["a"]])
    with pytest.raises(TypeError, match="validation column 'when' has dtype datetime64"):
        skvault.dump(model, tmp_path / "m.skv", validation=X)
    assert not (tmp_path / "m.skv").exists()


def test_native_validate_rechecks_the_stored_rows_without_scikit_learn(tmp_path):
    X, y = frame(300, 0, holes=True), target(frame(300, 0, holes=True))
    model = _fitted("impute-constant-indicator+ordinal+forest")[0]
    path = tmp_path / "m.skv"
    skvault.dump(model, path, validation=(X, y))
    report = skvault.native.load(path).validate()
    assert report["n_rows"] == 100
    assert set(report["methods"]) == {"predict", "predict_proba"}
    # Numeric rows too; a sparse transform output is reported as skipped, not as passed.
    enc = OneHotEncoder().fit(np.array([[0.0], [1.0], [2.0]]))
    skvault.dump(enc, tmp_path / "e.skv", validation=np.array([[1.0], [2.0]]))
    report = skvault.native.load(tmp_path / "e.skv").validate()
    assert report["methods"] == [] and "transform" in report["skipped"]
    skvault.dump(model, tmp_path / "none.skv")
    with pytest.raises(skvault.ValidationError, match="no validation samples"):
        skvault.native.load(tmp_path / "none.skv").validate()


def test_native_validate_finds_outputs_that_do_not_match(tmp_path):
    from skvault import _native, _validation

    X, y = frame(200, 0), target(frame(200, 0))
    a = _fitted("onehot-if-binary+forest")[0]
    b = make_pipeline(
        encoded_ct(lambda: OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False)),
        RandomForestClassifier(n_estimators=10, random_state=1),
    ).fit(X, y)
    tree, summary = _validation.build(a, (X, y))  # a's outputs, stored with b
    _native.dump(b, str(tmp_path / "m.skv"), metadata={"validation": summary}, validation=tree)
    with pytest.raises(skvault.ValidationError, match="validation failed for predict"):
        skvault.load(tmp_path / "m.skv", validate=True)
    with pytest.raises(skvault.ValidationError, match=r"validation failed for predict(_proba)?: \d+ row"):
        skvault.native.load(tmp_path / "m.skv").validate()


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True)


def _predicted_like_scikit_learn(name, model, method, X, got):
    """``skvault predict``'s output equals scikit-learn's ``method`` on ``X``: labels (in the
    output's dtype) and tree outputs exactly, linear scores within NATIVE.md's tolerance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = getattr(model, method)(X)
    if method == "predict" and hasattr(model, "classes_"):
        assert_same(got, want.astype(got.dtype), f"{name} predict")
    elif name in LINEAR:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    else:
        assert_same(got, want, f"{name} {method}")


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_skvault_predict_reads_text_columns_of_a_csv(name, tmp_path):
    model, Xt = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    # As pandas writes a CSV: missing values as empty cells, columns in another order.
    Xt[list(reversed(Xt.columns))].to_csv(tmp_path / "in.csv", index=False)
    # A CSV cannot tell None from NaN: scikit-learn's answer is on the frame pandas reads
    # back, with the model's dtypes.
    Xt = pd.read_csv(tmp_path / "in.csv")[list(Xt.columns)].astype(Xt.dtypes.to_dict())
    methods = [([], "predict")] + ([(["--proba"], "predict_proba")] if hasattr(model, "predict_proba") else [])
    for flag, method in methods:
        out = tmp_path / f"{method}.npy"
        r = _cli("predict", tmp_path / "m.skv", tmp_path / "in.csv", "-o", out, *flag)
        assert r.returncode == 0, r.stderr
        _predicted_like_scikit_learn(name, model, method, Xt, np.load(out, allow_pickle=False))


def test_skvault_predict_names_a_missing_text_column_and_writes_nothing(tmp_path):
    model, Xt = _fitted("onehot-ignore+logistic")
    skvault.dump(model, tmp_path / "m.skv")
    Xt.drop(columns=["plan", "city"]).to_csv(tmp_path / "in.csv", index=False)
    r = _cli("predict", tmp_path / "m.skv", tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert r.returncode == 2
    assert 'columns "city", "plan" are missing from the input' in r.stderr
    assert not (tmp_path / "out.csv").exists()


def test_json_export_keeps_text_categories_schema_and_validation_rows(tmp_path):
    model, Xt = _fitted("impute-constant-indicator+ordinal+forest")
    X = frame(300, 0, holes=True)
    skvault.dump(model, tmp_path / "a.skv", validation=(X, target(X)))
    skvault.export_json(tmp_path / "a.skv", tmp_path / "a.json")
    skvault.import_json(tmp_path / "a.json", tmp_path / "b.skv")
    a, b = (skvault.inspect(tmp_path / f"{n}.skv")["metadata"] for n in "ab")
    assert b["input_schema"] == a["input_schema"] and b["input_schema"]["source"] == "validation"
    native = skvault.native.load(tmp_path / "b.skv")
    assert_same(native.predict_proba(Xt), model.predict_proba(Xt), "after a JSON round trip")
    assert native.validate()["methods"] == ["predict", "predict_proba"]
    skvault.load(tmp_path / "b.skv", validate=True)


def test_random_frames_give_scikit_learns_outputs_or_its_error(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    model = _fitted("impute-constant-indicator+ordinal+forest")[0]
    strict = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["age"]), ("text", OneHotEncoder(handle_unknown="error"), ["city", "plan"])]
        ),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ).fit(frame(300, 0).assign(city=lambda d: d["city"].fillna("Lyon")), target(frame(300, 0)))
    natives = {}
    for name, m in (("lenient", model), ("strict", strict)):
        skvault.dump(m, tmp_path / f"{name}.skv")
        natives[name] = (m, skvault.native.load(tmp_path / f"{name}.skv"))

    text = st.one_of(st.sampled_from(CITIES + ["basic", "pro", "Oslo", ""]), st.text(max_size=3), st.none(), st.just(np.nan))
    number = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.integers(-5, 5))
    rows = st.lists(st.tuples(number, text, number, text), min_size=1, max_size=12)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(rows=rows, str_dtype=st.booleans())
    def check(rows, str_dtype):
        age, city, income, plan = (list(c) for c in zip(*rows))
        X = pd.DataFrame(
            {
                "age": pd.Series(age, dtype=float),
                "city": pd.Series(city, dtype="str" if str_dtype else object),
                "income": pd.Series(income, dtype=float),
                "plan": pd.Series(plan, dtype=object),
                "grade": pd.Categorical(["A"] * len(rows), categories=["A", "B", "C"]),
            }
        )
        for m, native in natives.values():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    want = m.predict_proba(X)
                except (ValueError, TypeError):
                    with pytest.raises(ValueError):
                        native.predict_proba(X)
                    continue
            assert_same(native.predict_proba(X), want, "random frame")

    check()


@pytest.mark.parametrize("name", ["impute-text+onehot+logistic", "hgb-from-dtype", "target-encoder+hgb"])
def test_pyarrow_tables_predict_as_their_dataframes(name, tmp_path):
    pa = pytest.importorskip("pyarrow")
    model, Xt = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    native = skvault.native.load(tmp_path / "m.skv")
    # What scikit-learn sees for this table is pandas' reading of it (None and NaN both null).
    table = pa.Table.from_pandas(Xt[list(reversed(Xt.columns))], preserve_index=False)
    as_pandas = table.to_pandas()[list(Xt.columns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = model.predict_proba(as_pandas) if hasattr(model, "predict_proba") else model.predict(as_pandas)
    got = native.predict_proba(table) if hasattr(model, "predict_proba") else native.predict(table)
    if name in LINEAR:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    else:
        assert_same(got, want, f"{name} on a pyarrow Table")
    with pytest.raises(ValueError, match="missing"):
        native.predict(table.drop_columns([Xt.columns[0]]))
    # The column plan is kept for the last schema seen: one-row tables of either column
    # order, in turn, give the rows of the batch.
    straight = pa.Table.from_pandas(Xt, preserve_index=False)
    method = native.predict_proba if hasattr(model, "predict_proba") else native.predict
    for i in (0, 5, 6):
        for t in (table.slice(i, 1), straight.slice(i, 1)):
            np.testing.assert_allclose(method(t)[0], got[i], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_skvault_predict_reads_string_and_category_columns_of_parquet(name, tmp_path):
    pytest.importorskip("pyarrow")
    model, Xt = _fitted(name)
    skvault.dump(model, tmp_path / "m.skv")
    Xt[list(reversed(Xt.columns))].to_parquet(tmp_path / "in.parquet", index=False)
    # scikit-learn's answer on the frame pandas reads back (a null string is NaN there).
    back = pd.read_parquet(tmp_path / "in.parquet")[list(Xt.columns)].astype(Xt.dtypes.to_dict())
    method = "predict_proba" if hasattr(model, "predict_proba") else "predict"
    out = tmp_path / "out.npy"
    r = _cli("predict", tmp_path / "m.skv", tmp_path / "in.parquet", "-o", out, "--method", method.replace("_", "-"))
    assert r.returncode == 0, r.stderr
    _predicted_like_scikit_learn(name, model, method, back, np.load(out, allow_pickle=False))
