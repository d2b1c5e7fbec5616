"""`skvault serve` over real sockets: outputs equal scikit-learn's for a forest, a
HistGradientBoosting model and a mixed-type DataFrame pipeline in every request format;
models from files and from registries (folder and the S3 test server); the model list,
health, readiness, metrics and the OpenAPI document. Errors, limits, auth, hot reload and
shutdown are in test_serve_robust.py.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import openapi_spec_validator
import pandas as pd
import pytest
import sklearn
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import skvault
from serve_helpers import Server, predictions


def numeric_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 4)), columns=["f0", "f1", "f2", "f3"])


def mixed_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "lyon", "nice", "lille"], n).astype(object)
    city[rng.random(n) < 0.1] = None
    age = rng.normal(40, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "city": city,
            "plan": pd.Categorical(rng.choice(["free", "pro", "team"], n)),
            "age": age,
            "income": rng.normal(3000, 800, n),
        }
    )


def mixed_pipeline():
    ct = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"), OneHotEncoder(handle_unknown="ignore")), ["city"]),
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
        (make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
    )
    return make_pipeline(ct, LogisticRegression(max_iter=500))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (fitted model, rows to ask about); each dumped to tmp/<name>.skv."""
    tmp = tmp_path_factory.mktemp("serve-models")
    Xn = numeric_frame(300, 0)
    yn = (Xn.f0 + Xn.f1 > 0).astype(int)
    Xm = mixed_frame(300, 1)
    ym = ((Xm.city.fillna("") == "paris") | (Xm.income > 3200)).astype(int)
    fitted = {
        "forest": (RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0).fit(Xn, yn), numeric_frame(25, 2)),
        "hgb": (HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(Xn, yn), numeric_frame(25, 3)),
        "mixed": (mixed_pipeline().fit(Xm, ym), mixed_frame(25, 4)),
    }
    # Unknown categories in the rows asked about.
    rows = fitted["mixed"][1]
    rows.loc[0, "city"] = "marseille"
    rows["plan"] = rows["plan"].cat.add_categories(["enterprise"])
    rows.loc[1, "plan"] = "enterprise"
    for name, (model, _) in fitted.items():
        skvault.dump(model, tmp / f"{name}.skv")
    return tmp, fitted


@pytest.fixture(scope="module")
def server(models):
    tmp, fitted = models
    with Server(*(str(tmp / f"{n}.skv") for n in fitted), "--log-format", "json") as s:
        yield s
        assert s.stop() == 0


def cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def rows_of(df: pd.DataFrame) -> list[list]:
    return [[cell(v) for v in row] for row in df.astype(object).itertuples(index=False)]


def records_of(df: pd.DataFrame) -> list[dict]:
    return [dict(zip(df.columns, row)) for row in rows_of(df)]


def body(fmt: str, df: pd.DataFrame) -> tuple[bytes, str]:
    """The request body of `df` in format `fmt`, and its content type."""
    doc = None
    if fmt == "dataframe_split":
        doc = {"dataframe_split": {"columns": list(df.columns), "data": rows_of(df)}}
    elif fmt == "dataframe_records":
        doc = {"dataframe_records": records_of(df)}
    elif fmt == "inputs_rows":
        doc = {"inputs": rows_of(df)}
    elif fmt == "inputs_columns":
        doc = {"inputs": {c: [cell(v) for v in df[c].astype(object)] for c in df.columns}}
    elif fmt == "instances_rows":
        doc = {"instances": rows_of(df)}
    elif fmt == "instances_records":
        doc = {"instances": records_of(df)}
    if doc is not None:
        return json.dumps(doc).encode(), "application/json"
    if fmt == "csv":
        return df.to_csv(index=False).encode(), "text/csv"
    if fmt == "parquet":
        out = io.BytesIO()
        df.to_parquet(out, index=False)
        return out.getvalue(), "application/vnd.apache.parquet"
    raise ValueError(fmt)


FORMATS = ["dataframe_split", "dataframe_records", "inputs_rows", "inputs_columns", "instances_rows", "instances_records", "csv", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["forest", "hgb", "mixed"])
def test_outputs_equal_scikit_learn_in_every_request_format(server, models, name, fmt):
    _, fitted = models
    model, rows = fitted[name]
    data, ctype = body(fmt, rows)
    status, headers, raw = server.request("POST", f"/v1/models/{name}/predict", data, {"Content-Type": ctype})
    assert status == 200, raw
    assert headers["content-type"] == "application/json"
    assert predictions(json.loads(raw)) == model.predict(rows).tolist()
    status, _, raw = server.request(
        "POST", f"/v1/models/{name}/predict?method=predict_proba", data, {"Content-Type": ctype}
    )
    assert status == 200, raw
    np.testing.assert_allclose(predictions(json.loads(raw)), model.predict_proba(rows), rtol=1e-12, atol=1e-15)


def test_decision_function_and_transform(server, models):
    _, fitted = models
    model, rows = fitted["mixed"]
    data, ctype = body("dataframe_split", rows)
    status, _, raw = server.request("POST", "/v1/models/mixed/predict?method=decision_function", data, {"Content-Type": ctype})
    assert status == 200, raw
    np.testing.assert_allclose(predictions(json.loads(raw)), model.decision_function(rows), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("accept", ["text/csv", "application/x-npy"])
def test_csv_and_npy_responses(server, models, accept):
    _, fitted = models
    model, rows = fitted["forest"]
    data, ctype = body("dataframe_split", rows)
    status, headers, raw = server.request(
        "POST", "/v1/models/forest/predict?method=predict_proba", data, {"Content-Type": ctype, "Accept": accept}
    )
    assert status == 200, raw
    assert headers["content-type"].startswith(accept)
    if accept == "text/csv":
        got = pd.read_csv(io.BytesIO(raw)).to_numpy()
    else:
        got = np.load(io.BytesIO(raw), allow_pickle=False)
    np.testing.assert_allclose(got, model.predict_proba(rows), rtol=1e-12)


def test_invocations_chooses_the_model_by_query(server, models):
    _, fitted = models
    model, rows = fitted["hgb"]
    status, doc = server.post_json("/invocations?model=hgb", json.loads(body("dataframe_split", rows)[0]))
    assert status == 200, doc
    assert predictions(doc) == model.predict(rows).tolist()
    status, doc = server.post_json("/invocations", json.loads(body("dataframe_split", rows)[0]))
    assert status == 400 and doc["error_code"] == "model_required"
    assert "forest" in doc["message"] and "hgb" in doc["message"]


def test_invocations_with_one_model_is_mlflows_endpoint(models):
    tmp, fitted = models
    model, rows = fitted["mixed"]
    with Server(str(tmp / "mixed.skv")) as s:
        status, doc = s.post_json("/invocations", json.loads(body("dataframe_records", rows)[0]))
        assert status == 200, doc
        assert predictions(doc) == model.predict(rows).tolist()
        assert s.stop() == 0


def test_model_list_health_ready_and_openapi(server, models):
    tmp, fitted = models
    status, doc = server.get_json("/v1/models")
    assert status == 200
    by_name = {m["name"]: m for m in doc["models"]}
    assert set(by_name) == set(fitted)
    forest = by_name["forest"]
    assert forest["class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert forest["classes"] == [0, 1]
    assert forest["feature_names"] == ["f0", "f1", "f2", "f3"]
    # FORMAT.md section 1: the header's bytes 24..56 are the manifest's BLAKE3 digest.
    assert forest["digest"] == "blake3:" + (tmp / "forest.skv").read_bytes()[24:56].hex()
    assert "predict_proba" in forest["methods"]
    mixed = by_name["mixed"]
    assert [c["name"] for c in mixed["input_schema"]["columns"]] == ["city", "plan", "age", "income"]
    status, one = server.get_json("/v1/models/mixed")
    assert status == 200 and one["input_schema"] == mixed["input_schema"]
    # The record a person reads, as `skvault inspect`, the card and the registry page show it.
    record = forest["record"]
    assert record["name"] == "forest" and record["class"] == forest["class"]
    assert {"name": "n_estimators", "value": "40"} in record["params"]
    assert dict(record["environment"])["scikit-learn"] == sklearn.__version__
    assert "blake3:" + record["provenance"]["manifest_blake3"] == forest["digest"]
    assert record["classes"] == ["0", "1"]
    steps = mixed["record"]["steps"]
    assert [(s["name"], s["class"].rsplit(".", 1)[1]) for s in steps] == [
        ("columntransformer", "ColumnTransformer"),
        ("logisticregression", "LogisticRegression"),
    ]
    assert [c["name"] for c in mixed["record"]["columns"]] == ["city", "plan", "age", "income"]
    assert one["record"] == mixed["record"]
    # skvault inspect prints the same parameters from the same record.
    cmd = [sys.executable, "-m", "skvault", "inspect", str(tmp / "forest.skv")]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert [f"  {p['name']} = {p['value']}" in text.splitlines() for p in record["params"]] == [True] * len(
        record["params"]
    )
    status, doc = server.get_json("/health")
    assert status == 200 and doc["status"] == "ok" and set(doc["models"]) == set(fitted)
    status, doc = server.get_json("/ready")
    assert status == 200 and doc["ready"] is True
    status, spec = server.get_json("/openapi.json")
    assert status == 200
    openapi_spec_validator.validate(spec)
    for path in ["/invocations", "/v1/models/{name}/predict", "/v1/models", "/v1/models/{name}", "/health", "/ready", "/metrics"]:
        assert path in spec["paths"], path


def test_metrics_count_requests_rows_and_latency(models):
    tmp, fitted = models
    _, rows = fitted["forest"]
    with Server(str(tmp / "forest.skv"), "--log-format", "off") as s:
        data, ctype = body("dataframe_split", rows)
        for _ in range(3):
            assert s.request("POST", "/v1/models/forest/predict", data, {"Content-Type": ctype})[0] == 200
        assert s.request("POST", "/v1/models/forest/predict", b"{", {"Content-Type": ctype})[0] == 400
        status, headers, raw = s.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
        text = raw.decode()
        assert 'skvault_requests_total{model="forest",method="predict",status="200"} 3' in text
        assert 'skvault_rows_predicted_total{model="forest",method="predict"} 75' in text
        assert 'skvault_request_duration_seconds_count{model="forest",method="predict"} 4' in text
        assert text.rstrip().endswith("# EOF")
        assert s.stop() == 0


def test_json_log_lines(server):
    status, _ = server.get_json("/health")
    server.wait_for(lambda: any('"path":"/health"' in line for line in server.lines), what="the log line")
    lines = [json.loads(line) for line in server.lines[1:] if line.startswith("{")]
    health = [r for r in lines if r.get("path") == "/health"]
    assert health and health[-1]["status"] == 200 and health[-1]["http_method"] == "GET"
    predict = [r for r in lines if "model" in r]
    assert predict and {"model", "method", "rows", "duration_ms", "status"} <= set(predict[-1])


def test_models_from_a_registry(backend, models):
    reg = backend.open()
    tmp, fitted = models
    v1 = reg.register(tmp / "forest.skv", "fraud", metrics={"auc": 0.91})
    reg.register(tmp / "hgb.skv", "fraud", metrics={"auc": 0.93})
    reg.set_alias("fraud", "champion", v1)
    reg.register(tmp / "mixed.skv", "churn")
    with Server("--registry", backend.uri, "fraud@champion", "latest=fraud", "churn@1", env=backend.child_env()) as s:
        status, doc = s.get_json("/v1/models")
        by_name = {m["name"]: m for m in doc["models"]}
        assert by_name["fraud"]["version"] == 1 and by_name["fraud"]["alias"] == "champion"
        assert by_name["fraud"]["metrics"] == {"auc": 0.91}
        assert by_name["latest"]["version"] == 2 and by_name["churn"]["version"] == 1
        for served, name in [("fraud", "forest"), ("latest", "hgb"), ("churn", "mixed")]:
            model, rows = fitted[name]
            data, ctype = body("dataframe_split", rows)
            status, headers, raw = s.request("POST", f"/v1/models/{served}/predict", data, {"Content-Type": ctype})
            assert status == 200, raw
            assert predictions(json.loads(raw)) == model.predict(rows).tolist()
            assert headers["skvault-model-version"] == str(by_name[served]["version"])
        assert s.stop() == 0
