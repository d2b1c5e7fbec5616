"""The input schema recorded by dump (metadata ``input_schema``, FORMAT.md section 8).

scikit-learn keeps column names, not dtypes: the schema takes dtypes from a validation
DataFrame when given one, and otherwise derives each column's kind from the fitted model.
Each file is also checked against the published JSON Schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import skvault

pd = pytest.importorskip("pandas")

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "manifest.schema.json").read_text())


def _frame(n=40):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "city": pd.Series(rng.choice(["Lyon", "Paris", "Nice"], n), dtype="str"),
            "visits": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "grade": pd.Categorical(rng.choice(["A", "B", "C"], n), categories=["C", "B", "A"], ordered=True),
            "note": pd.Series(rng.choice(["x", "y"], n), dtype=object),
        }
    ), (np.arange(n) % 2)


def _schema_of(model, tmp_path, **kw):
    path = tmp_path / "m.skv"
    skvault.dump(model, path, **kw)
    metadata = skvault.inspect(path)["metadata"]
    jsonschema.validate(metadata, {**SCHEMA["properties"]["metadata"], "$defs": SCHEMA["$defs"]})
    return metadata.get("input_schema"), path


def _kinds(schema):
    return {c["name"]: c["kind"] for c in schema["columns"]}


def _mixed_pipeline():
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), make_column_selector(dtype_include="number")),
            ("city", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["city"]),
            ("note", OrdinalEncoder(), [4]),
        ],
        remainder="drop",
    )
    return make_pipeline(ct, LogisticRegression())


def test_a_dataframe_pipeline_records_each_columns_kind_from_the_model(tmp_path):
    X, y = _frame()
    model = _mixed_pipeline().fit(X, y)
    schema, _ = _schema_of(model, tmp_path)
    assert schema["source"] == "model"
    assert [c["name"] for c in schema["columns"]] == list(model.feature_names_in_)
    # Text where an encoder or imputer was fitted on object values; the category column is
    # dropped by the transformer (remainder="drop"), so input may omit it.
    assert _kinds(schema) == {"age": "number", "city": "text", "visits": "number", "grade": "unused", "note": "text"}
    assert all("dtype" not in c for c in schema["columns"])


def test_category_columns_of_boosting_keep_their_categories(tmp_path):
    X, y = _frame()
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=3).fit(X[["age", "grade"]], y)
    schema, _ = _schema_of(model, tmp_path)
    grade = schema["columns"][1]
    assert grade["kind"] == "category" and grade["dtype"] == "category"
    # The categories the model saw, as its preprocessor recorded them.
    assert grade["categories"] == sorted(X["grade"].cat.categories)
    assert _kinds(schema)["age"] == "number"


def test_models_fitted_on_arrays_record_no_schema(tmp_path):
    X, y = _frame()
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(X[["age"]].to_numpy(), y)
    schema, _ = _schema_of(model, tmp_path)
    assert schema is None


def test_inspect_shows_the_input_columns(tmp_path):
    X, y = _frame()
    model = _mixed_pipeline().fit(X, y)
    _, path = _schema_of(model, tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "skvault", "inspect", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "input (5 columns, kinds derived from the fitted model):" in out
    for line in ("  age: numbers", "  city: text", "  grade: unused", "  note: text"):
        assert line + "\n" in out, out
