"""Portable JSON export: every estimator of the round-trip suite (tests/estimator_zoo.py)
survives export_json + import_json with identical outputs, every document validates against
docs/export.schema.json, and bad documents are refused with nothing written."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import referencing

import skvault
import estimator_zoo  # noqa: E402  (tests/ is on sys.path under pytest)

DOCS = Path(__file__).resolve().parent.parent / "docs"
LAYOUT_SENSITIVE = {"IncrementalPCA"}


@pytest.fixture(scope="module")
def validator():
    manifest = json.loads((DOCS / "manifest.schema.json").read_text())
    schema = json.loads((DOCS / "export.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    registry = referencing.Registry().with_resource(
        manifest["$id"], referencing.Resource.from_contents(manifest)
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def cases():
    return estimator_zoo.cases()


def _outputs(estimator, case):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in case.methods:
            out[method] = getattr(estimator, method)(case.X)
    return out


def test_every_estimator_round_trips_through_json(cases, validator, tmp_path):
    problems = []
    for i, case in enumerate(cases):
        src, doc, back = tmp_path / f"{i}.skv", tmp_path / f"{i}.json", tmp_path / f"{i}-back.skv"
        try:
            skvault.dump(case.estimator, src)
            skvault.export_json(src, doc)
            document = json.loads(doc.read_text())
            errors = sorted(validator.iter_errors(document), key=lambda e: e.path)
            if errors:
                problems.append(f"{case.name}: schema: {errors[0].message[:200]}")
                continue
            skvault.import_json(doc, back)
            loaded = skvault.load(back)
            reference = case.estimator
            if case.name.split("-")[0] in LAYOUT_SENSITIVE:
                reference = skvault.load(src)
            expected, got = _outputs(reference, case), _outputs(loaded, case)
            for method in case.methods:
                if not estimator_zoo.same_output(expected[method], got[method]):
                    problems.append(f"{case.name}.{method}: outputs differ")
            # The arrays come back bit for bit: same manifest array table digests.
            a = json.loads(skvault._native.manifest_json(os.fspath(src)))["arrays"]
            b = json.loads(skvault._native.manifest_json(os.fspath(back)))["arrays"]
            if [e["digest"] for e in a] != [e["digest"] for e in b]:
                problems.append(f"{case.name}: array bytes differ after the round trip")
        except Exception as exc:  # collect every failure, then report them all
            problems.append(f"{case.name}: {type(exc).__name__}: {exc}")
    assert problems == [], f"{len(problems)} of {len(cases)} cases failed:\n" + "\n".join(problems)


def _doc(tmp_path, est=None):
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    X[0, 0] = np.nan
    est = est or DecisionTreeClassifier(max_depth=3, random_state=0).fit(np.nan_to_num(X), X[:, 1] > 0)
    out = tmp_path / "m.json"
    skvault.export_json(est, out)
    return json.loads(out.read_text())


def test_floats_are_exact_and_special_values_encoded(tmp_path):
    from sklearn.preprocessing import StandardScaler

    X = np.array([[0.1, 1e-310], [0.2, np.inf], [0.30000000000000004, 2.0]])
    sc = StandardScaler().fit(X[:, :1])
    sc.scale_ = np.array([np.inf])
    sc.mean_ = np.array([np.float64(0.1) + np.float64(0.2)])
    doc_path = tmp_path / "s.json"
    skvault.export_json(sc, doc_path)
    text = doc_path.read_text()
    assert '"inf"' in text
    assert "0.30000000000000004" in text
    back = tmp_path / "s.skv"
    skvault.import_json(doc_path, back)
    loaded = skvault.load(back)
    assert loaded.mean_.tobytes() == sc.mean_.tobytes()
    assert loaded.scale_.tobytes() == sc.scale_.tobytes()


def _write(tmp_path, doc, name="bad.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_wrong_shape_is_refused_and_nothing_written(tmp_path):
    doc = _doc(tmp_path)
    i = next(i for i, a in enumerate(doc["arrays"]) if len(a["shape"]) >= 1 and a["shape"][0] > 1)
    doc["arrays"][i]["data"] = doc["arrays"][i]["data"][:-1]
    out = tmp_path / "bad.skv"
    with pytest.raises(skvault.ExportError, match=f"/arrays/{i}/data"):
        skvault.import_json(_write(tmp_path, doc), out)
    assert not out.exists()


def test_wrong_element_type_is_refused(tmp_path):
    doc = _doc(tmp_path)
    i = next(i for i, a in enumerate(doc["arrays"]) if a["dtype"] == "<f8" and a["shape"])
    flat = doc["arrays"][i]["data"]
    while isinstance(flat[0], list):
        flat = flat[0]
    flat[0] = "twelve"
    with pytest.raises(skvault.ExportError, match="not a float"):
        skvault.import_json(_write(tmp_path, doc), tmp_path / "bad.skv")
    assert not (tmp_path / "bad.skv").exists()


def test_untrusted_class_is_refused_unless_trusted(tmp_path):
    doc = _doc(tmp_path)
    text = json.dumps(doc).replace(
        "sklearn.tree._classes.DecisionTreeClassifier", "evil.module.Backdoor"
    )
    src = tmp_path / "evil.json"
    src.write_text(text)
    out = tmp_path / "evil.skv"
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.import_json(src, out)
    assert info.value.names == ["evil.module.Backdoor"]
    assert not out.exists()
    # With the name trusted, the document imports (load still refuses it by default).
    skvault.import_json(src, out, trusted=["evil.module.Backdoor"])
    assert skvault.get_untrusted_types(out) == ["evil.module.Backdoor"]


def test_dangerous_name_is_refused_even_if_trusted(tmp_path):
    doc = _doc(tmp_path)
    text = json.dumps(doc).replace("sklearn.tree._classes.DecisionTreeClassifier", "os.system")
    src = tmp_path / "evil.json"
    src.write_text(text)
    with pytest.raises(skvault.SkvaultError):
        skvault.import_json(src, tmp_path / "evil.skv", trusted=["os.system"])
    assert not (tmp_path / "evil.skv").exists()


def test_not_a_document_is_refused(tmp_path):
    for content in ["[]", "{}", '{"format": "skvault-json", "version": 2}', "not json"]:
        src = tmp_path / "x.json"
        src.write_text(content)
        with pytest.raises(skvault.ExportError):
            skvault.import_json(src, tmp_path / "x.skv")
        assert not (tmp_path / "x.skv").exists()


def test_cli_export_json_and_import(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from skvault import _native

    rng = np.random.RandomState(0)
    X, y = rng.randn(80, 4), rng.randint(0, 3, 80)
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    skv = tmp_path / "m.skv"
    skvault.dump(est, skv)
    assert _native.cli_main(["skvault", "export", str(skv), str(tmp_path / "m.json")]) == 0
    assert _native.cli_main(["skvault", "import", str(tmp_path / "m.json"), str(tmp_path / "b.skv")]) == 0
    np.testing.assert_array_equal(skvault.load(tmp_path / "b.skv").predict_proba(X), est.predict_proba(X))


def test_registry_export(tmp_path):
    from sklearn.linear_model import LogisticRegression

    onnx = pytest.importorskip("onnx")
    rng = np.random.RandomState(0)
    X, y = rng.randn(80, 4), rng.randint(0, 2, 80)
    est = LogisticRegression().fit(X, y)
    reg = skvault.Registry(tmp_path / "reg")
    v = reg.register(est, "m")
    reg.set_alias("m", "champion", v)
    reg.export("m", tmp_path / "m.json", alias="champion")
    reg.export("m", tmp_path / "m.onnx", version=v)
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))
    skvault.import_json(tmp_path / "m.json", tmp_path / "back.skv")
    np.testing.assert_array_equal(skvault.load(tmp_path / "back.skv").predict_proba(X), est.predict_proba(X))
    from skvault import _native

    code = _native.cli_main(
        ["skvault", "registry", "--uri", str(tmp_path / "reg"), "export", "m", "--alias", "champion", "-o", str(tmp_path / "c.onnx")]
    )
    assert code == 0 and (tmp_path / "c.onnx").exists()
