"""skvault.native with pandas DataFrames: ColumnTransformer columns chosen by name, feature
names checked as scikit-learn checks them. Expected values come from scikit-learn, live."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

import skvault
import skvault.native
from native_helpers import assert_same, datasets

pd = pytest.importorskip("pandas")

COLS = ["age", "income", "score", "kind", "ratio", "debt"]


def _frames(name="binary"):
    X, y, Xt = datasets()[name]
    return pd.DataFrame(X, columns=COLS), y, pd.DataFrame(Xt, columns=COLS)


def _roundtrip(model, tmp_path):
    skvault.dump(model, tmp_path / "m.skv")
    return skvault.native.load(tmp_path / "m.skv")


def _by_name():
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income", "debt"]),
            ("kind", OneHotEncoder(handle_unknown="ignore"), ["kind"]),
            ("mm", MinMaxScaler(), ["ratio"]),
        ],
        remainder="drop",
    )


def test_column_transformer_by_name_in_a_forest_pipeline(tmp_path):
    df, y, dft = _frames()
    model = make_pipeline(_by_name(), RandomForestClassifier(20, random_state=0)).fit(df, y)
    native = _roundtrip(model, tmp_path)
    assert list(native.feature_names_in_) == COLS
    assert_same(native.predict_proba(dft), model.predict_proba(dft), "predict_proba")
    assert_same(native.predict(dft), model.predict(dft), "predict")
    # The same rows as a plain array give the same answer (positional).
    assert_same(native.predict_proba(dft.to_numpy()), model.predict_proba(dft), "array")


def test_column_transformer_by_name_with_remainder_and_logistic(tmp_path):
    df, y, dft = _frames("multiclass")
    ct = ColumnTransformer([("s", StandardScaler(), ["score", "age"])], remainder="passthrough")
    model = make_pipeline(ct, LogisticRegression(max_iter=500)).fit(df, y)
    native = _roundtrip(model, tmp_path)
    head = _roundtrip(model[0], tmp_path)
    assert_same(head.transform(dft), model[0].transform(dft), "transform")
    np.testing.assert_allclose(native.predict_proba(dft), model.predict_proba(dft), rtol=1e-12)
    assert_same(native.predict(dft), model.predict(dft), "predict")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.drop(columns=["debt"]),           # a column missing
        lambda d: d.assign(extra=1.0),                # a column too many
        lambda d: d.rename(columns={"age": "AGE"}),   # a name changed
    ],
    ids=["missing", "extra", "renamed"],
)
def test_wrong_columns_are_refused_by_name(tmp_path, change):
    df, y, dft = _frames()
    model = RandomForestClassifier(5, random_state=0).fit(df, y)
    native = _roundtrip(model, tmp_path)
    bad = change(dft)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(bad)   # scikit-learn refuses these too
    with pytest.raises(ValueError, match="feature names should match") as e:
        native.predict(bad)
    for name in set(bad.columns) ^ set(COLS):
        assert name in str(e.value)


def test_columns_in_another_order_are_taken_by_name(tmp_path):
    # A ColumnTransformer selects DataFrame columns by name in scikit-learn too.
    df, y, dft = _frames()
    model = make_pipeline(_by_name(), RandomForestClassifier(5, random_state=0)).fit(df, y)
    native = _roundtrip(model, tmp_path)
    shuffled = dft[COLS[::-1]]
    assert_same(native.predict_proba(shuffled), model.predict_proba(shuffled), "predict_proba")
    dup = dft.copy()
    dup.columns = COLS[:-1] + ["age"]
    with pytest.raises(ValueError, match="more than once"):
        native.predict(dup)


def test_text_column_is_refused(tmp_path):
    df, y, dft = _frames()
    model = RandomForestClassifier(5, random_state=0).fit(df, y)
    native = _roundtrip(model, tmp_path)
    bad = dft.astype({"kind": object})
    bad.loc[bad.index[0], "kind"] = "many"
    with pytest.raises(ValueError, match=r'column "kind" holds text \("many" at row 0\).*could not convert string to float'):
        native.predict(bad)


def test_nullable_columns_become_nan(tmp_path):
    df, y, dft = _frames()
    model = RandomForestClassifier(20, random_state=0).fit(df, y)
    native = _roundtrip(model, tmp_path)
    nullable = dft.astype({"kind": "Int64"})
    nullable.loc[nullable.index[:7], "kind"] = pd.NA
    want = model.predict_proba(nullable)
    assert np.isnan(nullable["kind"].to_numpy(dtype=float, na_value=np.nan)).sum() == 7
    assert_same(native.predict_proba(nullable), want, "predict_proba")
    # A model that refuses NaN refuses the nulls, as scikit-learn does.
    lin = LogisticRegression().fit(df, y)
    native_lin = _roundtrip(lin, tmp_path)
    with pytest.raises(ValueError):
        lin.predict(nullable)
    with pytest.raises(ValueError, match="NaN"):
        native_lin.predict(nullable)


def test_frame_for_a_model_fitted_without_names_is_positional(tmp_path):
    df, y, dft = _frames()
    model = RandomForestClassifier(5, random_state=0).fit(df.to_numpy(), y)
    native = _roundtrip(model, tmp_path)
    assert native.feature_names_in_ is None
    assert_same(native.predict_proba(dft), model.predict_proba(dft.to_numpy()), "predict_proba")


def _mixed_dtypes(n: int) -> "pd.DataFrame":
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": np.arange(n),
            "s": pd.Series(rng.choice(["a", "b", None], n), dtype="str"),
            "sa": pd.Series(rng.choice(["a", "b", None], n), dtype="string[pyarrow]"),
            "sp": pd.Series(rng.choice(["a", "b", None], n), dtype="string[python]"),
            "o": pd.Series(rng.choice(["x", None, np.nan], n), dtype=object),
            "c": pd.Categorical(rng.choice(["u", "v"], n)),
            "n": pd.array([1, None] * (n // 2), dtype="Int64"),
            "b": pd.array([True, None] * (n // 2), dtype="boolean"),
            "g": rng.normal(size=n),
        }
    )
    df["f2"] = df["f"] * 2  # a column added later lands in a block of its own
    return df


@pytest.mark.parametrize("n", [2, 200])
def test_columns_read_from_pandas_blocks_are_the_frames_columns(n):
    # One-row frames are read from pandas' internal blocks (fast); this pins that reading
    # to the public one, column by column, for every dtype native inference takes.
    from skvault import native as N

    df = _mixed_dtypes(n)
    got, kinds = N._column_arrays(df)
    want = [s.array for _, s in df.items()]
    assert len(got) == len(want) == len(kinds) == df.shape[1]
    for name, g, w, k in zip(df.columns, got, want, kinds):
        assert N._kind(g.dtype) == N._kind(w.dtype) == k, name
        assert _same_values(np.asarray(g, dtype=object), np.asarray(w, dtype=object)), name


def test_text_of_a_few_rows_converts_as_text_of_many():
    # Up to _FEW_ROWS rows, text columns are read through the array's own iteration
    # (faster for one row); beyond, through numpy. Both give the same values and markers.
    from skvault import native as N

    df = _mixed_dtypes(200)
    for name in ("s", "sa", "sp", "o"):
        values = df[name].array
        assert 3 <= N._FEW_ROWS < len(values)
        for start in range(0, 30, 3):  # slices with and without missing values
            few = _spec_values(N._column_spec(values[start : start + 3]))
            many = _spec_values(N._column_spec(values))[start : start + 3]
            assert _same_values(few, many), (name, few, many)
        assert any(v is None or v is pd.NA or v != v for v in N._column_spec(values)[1]), "missing values are tested"


def _spec_values(spec) -> list:
    """The values skvault._native reads from a column spec: kind "arrow" reads None as NaN."""
    kind, items = spec[0], spec[1]
    return [float("nan") if kind == "arrow" and v is None else v for v in items]


def _same_values(a, b) -> bool:
    """Equal lists of Python values, NaN equal to NaN and None only to None."""
    return len(a) == len(b) and all(
        x is y or (type(x) is type(y) and x is not pd.NA and (x == y or (x != x and y != y))) for x, y in zip(a, b)
    )


def test_a_frame_without_blocks_is_read_through_its_public_columns():
    from skvault import native as N

    df = _mixed_dtypes(4)

    class Elsewhere:  # a DataFrame-like object without pandas' block manager
        columns = df.columns
        items = df.items

    got, kinds = N._column_arrays(Elsewhere())
    assert [N._kind(a.dtype) for a in got] == kinds == [N._kind(t) for t in df.dtypes]
    assert [N._kind(t) for t in df.dtypes] == ["numbers", "numbers"] + ["objects"] * 4 + ["category"] + [
        "numbers"
    ] * 4
