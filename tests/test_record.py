"""The model record: metadata, validation samples, version policy, inspect, verify, diff."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from skv_bytes import SkvParts, blob_entries
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skvault

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_REG, Y_REG = make_regression(80, 4, noise=0.1, random_state=0)
CLI = [sys.executable, "-m", "skvault"]


def _record(model, **kwargs):
    return skvault.inspect(skvault.dumps(model, **kwargs))["metadata"]


# ----------------------------------------------------------------------------- metadata


def test_classifier_record_has_environment_params_features_and_classes():
    model = LogisticRegression(C=0.5, max_iter=500).fit(X_IRIS, Y_IRIS)
    md = _record(model)
    assert md["object"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert md["created_at"].endswith("Z") and md["created_at"][:2] == "20"
    env = md["environment"]
    import sklearn

    assert env["scikit-learn"] == sklearn.__version__ and env["numpy"] == np.__version__
    assert env["python"].count(".") == 2 and env["skvault"] == skvault.__version__
    est = md["estimator"]
    assert est["params"]["C"] == 0.5 and est["params"]["max_iter"] == 500
    assert est["n_features_in"] == 4
    assert est["classes"] == [0, 1, 2]


def test_regressor_record_has_no_classes():
    est = _record(Ridge(alpha=2.0).fit(X_REG, Y_REG))["estimator"]
    assert est["class"] == "sklearn.linear_model._ridge.Ridge"
    assert est["params"]["alpha"] == 2.0 and est["n_features_in"] == 4
    assert "classes" not in est


def test_pipeline_record_lists_each_step_with_nested_params():
    model = make_pipeline(StandardScaler(), LogisticRegression(C=3.0)).fit(X_IRIS, Y_IRIS)
    est = _record(model)["estimator"]
    assert [s["name"] for s in est["steps"]] == ["standardscaler", "logisticregression"]
    assert est["steps"][1]["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert est["steps"][1]["params"]["C"] == 3.0
    nested = est["params"]["steps"][1]
    assert nested[0] == "logisticregression" and nested[1]["params"]["C"] == 3.0


def test_clusterer_record():
    est = _record(KMeans(n_clusters=3, n_init=2, random_state=0).fit(X_IRIS))["estimator"]
    assert est["params"]["n_clusters"] == 3 and est["n_features_in"] == 4


def test_feature_names_are_recorded():
    model = Ridge().fit(X_REG, Y_REG)
    model.feature_names_in_ = np.array(["a", "b", "c", "d"], dtype=object)
    assert _record(model)["estimator"]["feature_names_in"] == ["a", "b", "c", "d"]


def test_user_metadata_and_metrics_round_trip(tmp_path):
    path = tmp_path / "m.skv"
    user = {"owner": "ana", "run": {"id": 7, "tags": ["a", "b"]}}
    skvault.dump(Ridge().fit(X_REG, Y_REG), path, metadata=user, metrics={"r2": 0.97, "n": np.int64(80)})
    md = skvault.inspect(path)["metadata"]
    assert md["user"] == user
    assert md["metrics"] == {"r2": 0.97, "n": 80}


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"metadata": {"x": object()}}, TypeError),
        ({"metadata": {"x": float("nan")}}, TypeError),
        ({"metadata": ["not", "a", "dict"]}, TypeError),
        ({"metrics": {"acc": "high"}}, TypeError),
        ({"metrics": {"acc": float("inf")}}, ValueError),
    ],
)
def test_bad_metadata_is_refused_before_writing(tmp_path, kwargs, error):
    path = tmp_path / "m.skv"
    with pytest.raises(error):
        skvault.dump(Ridge().fit(X_REG, Y_REG), path, **kwargs)
    assert not path.exists()


# ----------------------------------------------------------------------------- validation


def _validation_file(tmp_path):
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_IRIS, Y_IRIS)
    path = tmp_path / "v.skv"
    skvault.dump(model, path, validation=(X_IRIS, Y_IRIS))
    return model, path


def _dict_get(node, key):
    for k, v in node["dict"]:
        if k == key:
            return v
    raise KeyError(key)


def _validation_array(parts: SkvParts, method: str) -> int:
    outputs = _dict_get(parts.manifest["validation"], "outputs")
    return _dict_get(outputs, method)["array"]


def test_validation_record_and_clean_load(tmp_path):
    model, path = _validation_file(tmp_path)
    v = skvault.inspect(path)["metadata"]["validation"]
    assert v["n_rows"] == 100
    assert v["methods"] == ["predict", "predict_proba"]
    assert v["class_distribution"] == {"0": 50, "1": 50, "2": 50}
    loaded = skvault.load(path, validate=True)
    assert np.array_equal(loaded.predict_proba(X_IRIS), model.predict_proba(X_IRIS))


def test_regressor_validation_records_target_summary():
    md = _record(Ridge().fit(X_REG, Y_REG), validation=(X_REG, Y_REG))
    summary = md["validation"]["target_summary"]
    assert summary["n"] == 80 and summary["min"] == pytest.approx(Y_REG.min())
    assert md["validation"]["methods"] == ["predict"]


def test_altered_probabilities_fail_validation_with_a_precise_message(tmp_path):
    _, path = _validation_file(tmp_path)
    parts = SkvParts.parse(path.read_bytes())
    i = _validation_array(parts, "predict_proba")
    proba = np.frombuffer(parts.blob_raw(i), dtype="<f8").copy().reshape(100, 3)
    proba[[3, 17], 0] += 0.25
    parts.set_blob(i, proba.tobytes())
    path.write_bytes(parts.to_bytes())
    skvault.load(path)  # digests are consistent: only validation can tell
    with pytest.raises(skvault.ValidationError) as info:
        skvault.load(path, validate=True)
    err = info.value
    assert err.method == "predict_proba" and err.n_rows == 2
    assert err.max_diff == pytest.approx(0.25)
    assert "predict_proba" in str(err) and "2 row(s)" in str(err)


def test_altered_labels_fail_validation_exactly(tmp_path):
    _, path = _validation_file(tmp_path)
    parts = SkvParts.parse(path.read_bytes())
    i = _validation_array(parts, "predict")
    labels = np.frombuffer(parts.blob_raw(i), dtype="<i8").copy()
    labels[5] = (labels[5] + 1) % 3
    parts.set_blob(i, labels.tobytes())
    path.write_bytes(parts.to_bytes())
    with pytest.raises(skvault.ValidationError, match="predict: 1 row"):
        skvault.load(path, validate=True)


def test_validate_without_samples_is_an_error(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(Ridge().fit(X_REG, Y_REG), path)
    with pytest.raises(skvault.ValidationError, match="no validation samples"):
        skvault.load(path, validate=True)


# ----------------------------------------------------------------------------- versions


def _with_versions(tmp_path, **versions):
    path = tmp_path / "m.skv"
    skvault.dump(Ridge().fit(X_REG, Y_REG), path)
    parts = SkvParts.parse(path.read_bytes())
    parts.manifest["metadata"]["environment"].update(versions)
    path.write_bytes(parts.to_bytes())
    return path


def _bump(version: str, part: int) -> str:
    nums = [int(x) for x in version.split(".")[:3]]
    nums[part] += 1
    return ".".join(map(str, nums))


def test_major_mismatch_is_an_error_naming_both_versions(tmp_path):
    import sklearn

    other = _bump(sklearn.__version__, 0)
    path = _with_versions(tmp_path, **{"scikit-learn": other})
    with pytest.raises(skvault.VersionMismatchError) as info:
        skvault.load(path)
    assert other in str(info.value) and sklearn.__version__ in str(info.value)
    assert "validate=True" in str(info.value)


def test_numpy_major_mismatch_is_an_error(tmp_path):
    path = _with_versions(tmp_path, numpy=_bump(np.__version__, 0))
    with pytest.raises(skvault.VersionMismatchError, match="numpy"):
        skvault.load(path)


def test_minor_mismatch_warns(tmp_path):
    import sklearn

    path = _with_versions(tmp_path, **{"scikit-learn": _bump(sklearn.__version__, 1)})
    with pytest.warns(skvault.VersionMismatchWarning, match="minor"):
        skvault.load(path)


def test_patch_mismatch_is_silent(tmp_path):
    import sklearn

    path = _with_versions(tmp_path, **{"scikit-learn": _bump(sklearn.__version__, 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skvault.load(path)


def test_overrides(tmp_path):
    import sklearn

    major = _with_versions(tmp_path, **{"scikit-learn": _bump(sklearn.__version__, 0)})
    with pytest.warns(skvault.VersionMismatchWarning):
        skvault.load(major, on_version_mismatch="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skvault.load(major, on_version_mismatch="ignore")
    minor = _with_versions(tmp_path, **{"scikit-learn": _bump(sklearn.__version__, 1)})
    with pytest.raises(skvault.VersionMismatchError):
        skvault.load(minor, on_version_mismatch="error")
    with pytest.raises(ValueError, match="on_version_mismatch"):
        skvault.load(minor, on_version_mismatch="sometimes")


def test_version_error_comes_before_anything_is_built(tmp_path, monkeypatch):
    import sklearn
    from sklearn.linear_model import _ridge

    path = _with_versions(tmp_path, **{"scikit-learn": _bump(sklearn.__version__, 0)})
    built = []
    monkeypatch.setattr(_ridge.Ridge, "__setstate__", lambda self, s: built.append(s), raising=False)
    with pytest.raises(skvault.VersionMismatchError):
        skvault.load(path)
    assert built == []


# ----------------------------------------------------------------------------- verify


@pytest.mark.parametrize("compress", [None, "zstd", "lz4"])
def test_verify_catches_a_flipped_bit_in_every_array(tmp_path, compress):
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_IRIS, Y_IRIS)
    data = skvault.dumps(model, compress=compress)
    parts = SkvParts.parse(data)
    arrays = parts.manifest["arrays"]
    assert len(arrays) >= 9
    # Each blob in file order: an array stored on its own, or a pack (format 1.2, with a codec)
    # whose damage is reported on one of its member arrays.
    owners = [[i] for i, e in enumerate(arrays) if "pack" not in e]
    owners += [[i for i, e in enumerate(arrays) if e.get("pack") == p] for p in range(len(parts.manifest.get("packs", [])))]
    assert (compress is None) == (len(owners) == len(arrays))
    for b, entry in enumerate(blob_entries(parts.manifest)):
        if entry["length"] == 0:
            continue
        broken = SkvParts.parse(data)
        blob = bytearray(broken.blobs[b])
        blob[len(blob) // 2] ^= 0x10
        broken.blobs[b] = bytes(blob)  # digest left as it was: the stored bytes are corrupt
        path = tmp_path / f"{b}.skv"
        path.write_bytes(broken.to_bytes())
        with pytest.raises(skvault.FormatError):
            skvault.verify(path)
        result = subprocess.run([*CLI, "verify", str(path)], capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        assert any(f"array {i}:" in result.stderr for i in owners[b]), (owners[b], result.stderr)


def test_verify_passes_on_untouched_files(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(Ridge().fit(X_REG, Y_REG), path, compress="zstd")
    skvault.verify(path)
    result = subprocess.run([*CLI, "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and "OK" in result.stdout


# ----------------------------------------------------------------------------- inspect


BLOCK_SKLEARN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("inspect must not import " + name)
sys.meta_path.insert(0, Block())
import skvault, json
record = skvault.inspect(sys.argv[1])
print(json.dumps({"class": record["metadata"]["object"], "untrusted": record["untrusted"]}))
assert not any(m == "sklearn" or m.startswith("sklearn.") for m in sys.modules)
"""


def test_inspect_never_imports_scikit_learn(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(make_pipeline(StandardScaler(), Ridge()).fit(X_REG, Y_REG), path)
    result = subprocess.run([sys.executable, "-c", BLOCK_SKLEARN, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"class": "sklearn.pipeline.Pipeline", "untrusted": []}


def test_cli_inspect_summary_params_and_json(tmp_path):
    path = tmp_path / "m.skv"
    model = make_pipeline(StandardScaler(), LogisticRegression(C=3.0)).fit(X_IRIS, Y_IRIS)
    skvault.dump(model, path, compress="zstd", metrics={"accuracy": 0.96})
    text = subprocess.run([*CLI, "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    for expected in ["sklearn.pipeline.Pipeline", "scikit-learn", "logisticregression", "accuracy = 0.96",
                     "classes: 0, 1, 2", "features: 4", "<f8", "untrusted names: none"]:
        assert expected in text, expected
    # The five float arrays share a pack (too small to compress); the int ones keep their blobs.
    assert "pack 0: 5 arrays, none      216 B ->      216 B" in text
    assert re.search(r"steps\[0\]\[1\]\.mean_ +<f8 +\(4\) pack 0 +32 B -> +\(in pack\)", text), text
    assert re.search(r"classes_ +<i8 +\(3\) none +24 B -> +24 B", text), text
    doc = json.loads(subprocess.run([*CLI, "inspect", "--json", str(path)], capture_output=True, check=True).stdout)
    assert doc["metadata"]["metrics"] == {"accuracy": 0.96} and doc["format_version"] == "1.2"  # zstd: compressed manifest, packs
    params = json.loads(subprocess.run([*CLI, "inspect", "--params", str(path)], capture_output=True, check=True).stdout)
    assert params == skvault.inspect(path)["metadata"]["estimator"]["params"]
    rebuilt = LogisticRegression(**params["steps"][1][1]["params"])
    assert rebuilt.get_params() == LogisticRegression(C=3.0).get_params()


def test_cli_inspect_prints_the_record_the_card_shows(tmp_path):
    """inspect and the card render one record (skvault_card::record): each step with its
    members and the parameters set away from their defaults, the input columns, and versions
    the writer could not read as "not recorded"."""
    from sklearn.compose import ColumnTransformer

    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), [0, 1]), ("rest", "passthrough", [2, 3])]),
        LogisticRegression(C=3.0, max_iter=500),
    ).fit(X_IRIS, Y_IRIS)
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    parts = SkvParts.parse(path.read_bytes())
    parts.manifest["metadata"]["environment"]["scipy"] = None
    path.write_bytes(parts.to_bytes())
    text = subprocess.run([*CLI, "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    steps = text.split("\nsteps:\n")[1].split("\n\n")[0].splitlines()
    assert steps[0] == "  columntransformer: sklearn.compose._column_transformer.ColumnTransformer"
    assert "    - num: sklearn.preprocessing._data.StandardScaler, columns [0,1]" in steps
    assert "    - rest: passthrough, columns [2,3]" in steps
    assert "    C = 3.0" in steps and "    max_iter = 500" in steps
    assert not any("transformers =" in line for line in steps), steps  # its members are listed
    assert "scipy not recorded" in text
    card = subprocess.run([*CLI, "card", str(path), "--format", "md"], capture_output=True, text=True)
    assert card.returncode == 0, card.stderr
    assert "scipy: not recorded" in card.stdout


def test_cli_inspect_and_card_name_an_unreadable_input_schema(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(LogisticRegression(max_iter=500).fit(X_IRIS, Y_IRIS), path)
    parts = SkvParts.parse(path.read_bytes())
    parts.manifest["metadata"]["input_schema"] = {"source": "model", "columns": "nope"}
    path.write_bytes(parts.to_bytes())
    text = subprocess.run([*CLI, "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"input: unreadable input_schema \(.*sequence", text), text
    card = subprocess.run([*CLI, "card", str(path), "--format", "md"], capture_output=True, text=True)
    assert card.returncode == 0, card.stderr
    assert "input schema cannot be read" in card.stdout


def test_cli_errors_are_clear(tmp_path):
    missing = subprocess.run([*CLI, "inspect", str(tmp_path / "nope.skv")], capture_output=True, text=True)
    assert missing.returncode == 2 and "No such file" in missing.stderr
    junk = tmp_path / "junk.skv"
    junk.write_bytes(b"\x80\x04\x95not a skv file")
    bad = subprocess.run([*CLI, "inspect", str(junk)], capture_output=True, text=True)
    assert bad.returncode == 2 and "magic" in bad.stderr


def test_cli_diff(tmp_path):
    a, b = tmp_path / "a.skv", tmp_path / "b.skv"
    skvault.dump(Ridge(alpha=1.0).fit(X_REG, Y_REG), a, metrics={"r2": 0.9})
    skvault.dump(Ridge(alpha=5.0).fit(X_REG, Y_REG), b, metrics={"r2": 0.8})
    same = subprocess.run([*CLI, "diff", str(a), str(a)], capture_output=True, text=True)
    assert same.returncode == 0 and "no differences" in same.stdout
    diff = subprocess.run([*CLI, "diff", str(a), str(b)], capture_output=True, text=True)
    assert diff.returncode == 1
    assert "alpha: 1.0 -> 5.0" in diff.stdout and "r2: 0.9 -> 0.8" in diff.stdout
    assert "model.coef_" in diff.stdout


def test_source_date_epoch_makes_dumps_reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    model = Ridge().fit(X_REG, Y_REG)
    assert skvault.dumps(model) == skvault.dumps(model)
    assert _record(model)["created_at"] == "2023-11-14T22:13:20Z"
    assert os.environ["SOURCE_DATE_EPOCH"] == "1700000000"


# ----------------------------------------------------------------------------- mmap modes


def test_copy_on_write_mapping_is_writable_and_never_touches_the_file(tmp_path):
    from sklearn.svm import SVC

    path = tmp_path / "svc.skv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability= is deprecated in 1.9
        model = SVC(probability=True, random_state=0).fit(X_IRIS, Y_IRIS)
    skvault.dump(model, path)
    before = path.read_bytes()
    shared = skvault.load(path, mmap=True)
    assert not shared.support_vectors_.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        shared.predict_proba(X_IRIS)  # libsvm needs writable buffers, as with joblib's mmap_mode="r"
    private = skvault.load(path, mmap="c")
    vectors = private.support_vectors_
    assert vectors.flags.writeable and not vectors.flags.owndata
    assert np.array_equal(private.predict_proba(X_IRIS), model.predict_proba(X_IRIS))
    vectors[:] = 0.0
    assert path.read_bytes() == before
    assert np.array_equal(skvault.load(path).support_vectors_, model.support_vectors_)
    with pytest.raises(ValueError, match="mmap"):
        skvault.load(path, mmap="w")


@pytest.mark.parametrize("mode", [True, "c"])
def test_mapped_arrays_are_verified_when_asked(tmp_path, mode):
    path = tmp_path / "m.skv"
    skvault.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(X_IRIS, Y_IRIS), path)
    parts = SkvParts.parse(path.read_bytes())
    index = max(range(len(parts.blobs)), key=lambda i: len(parts.blobs[i]))
    fields = [f[0] for f in parts.manifest["arrays"][index]["dtype"]["fields"]]
    assert fields[3:5] == ["threshold", "impurity"]  # the largest blob is a tree's nodes
    blob = bytearray(parts.blobs[index])
    blob[32] ^= 1  # the lowest bit of the first node's impurity, which no state check reads
    parts.blobs[index] = bytes(blob)  # the digest in the manifest stays the old one
    path.write_bytes(parts.to_bytes())
    # Mapped arrays are not hashed unless asked, tree nodes included (SECURITY.md): damage
    # the state checks let through loads; verify=True, and every copying load, catch it.
    skvault.load(path, mmap=mode)
    with pytest.raises(skvault.IntegrityError, match=f"array {index}"):
        skvault.load(path, mmap=mode, verify=True)
    with pytest.raises(skvault.IntegrityError, match=f"array {index}"):
        skvault.load(path)


def test_the_recorded_versions_come_from_imported_modules_without_a_metadata_scan(monkeypatch):
    """The environment's versions of scikit-learn, numpy and scipy are their modules'
    `__version__` once imported (equal to the distributions' metadata), so the first dump or
    load in a process does not scan sys.path for them; a package not imported still gets its
    metadata's version."""
    import importlib.metadata

    import scipy
    import sklearn

    from skvault import _metadata

    expected = {d: importlib.metadata.version(d) for d in ("scikit-learn", "numpy", "scipy")}
    assert {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__} == expected

    def no_scan(dist):
        raise AssertionError(f"metadata scanned for {dist}")

    monkeypatch.setattr(_metadata.importlib_metadata, "version", no_scan)
    _metadata._environment.cache_clear()
    try:
        env = _metadata.environment()
        assert {d: env[d] for d in expected} == expected
    finally:
        _metadata._environment.cache_clear()
    monkeypatch.undo()
    monkeypatch.delitem(sys.modules, "scipy")
    assert _metadata._version("scipy") == expected["scipy"]
