"""Models saved by older scikit-learn versions, converted and loaded in the installed one.

`make test` creates one cached venv per version in OLD_VERSIONS (`.cache/old-sklearn/<v>`,
made by `make old-sklearn`); `tests/old_sklearn/make_models.py` fits and saves models there
with their outputs. Each converted model must give the old version's outputs (labels exactly,
floats within 1e-12 relative: the old venv's numpy and BLAS differ), and exactly what
`pickle.load` gives in the installed scikit-learn wherever that pickle loads and is right.
Models whose state cannot be migrated must be refused with `MigrationError`.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import skvault

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("SKVAULT_OLD_SKLEARN", ROOT / ".cache" / "old-sklearn"))
OLD_VERSIONS = ("1.2.2", "1.3.2", "1.5.2")
REQUIRED = os.environ.get("SKVAULT_REQUIRE_OLD_SKLEARN") == "1"

# (model name, versions below which conversion must be refused): what skvault cannot migrate.
REFUSED = {
    "gb_clf": (1, 4),  # loss classes of sklearn.ensemble._gb_losses, removed in 1.4
    "gb_reg": (1, 4),
    "isolation_forest": (1, 3),  # per-tree path lengths computed at fit time since 1.3
    "knn": (1, 3),  # EuclideanDistance became EuclideanDistance64 in 1.3
}


def _python(version: str) -> Path:
    return VENVS / version / "bin" / "python"


def test_old_versions_are_installed():
    missing = [v for v in OLD_VERSIONS if not _python(v).exists()]
    if missing and not REQUIRED:
        pytest.skip(f"old scikit-learn venvs missing: {missing} (run `make old-sklearn`)")
    assert not missing, f"`make old-sklearn` did not create {missing}"


@pytest.fixture(scope="module", params=OLD_VERSIONS)
def old_models(request, tmp_path_factory):
    version = request.param
    python = _python(version)
    if not python.exists():
        pytest.skip(f"no venv for scikit-learn {version}")
    out = tmp_path_factory.mktemp(f"sklearn-{version}")
    subprocess.run(
        [str(python), str(ROOT / "tests" / "old_sklearn" / "make_models.py"), str(out)],
        check=True,
        capture_output=True,
    )
    index = json.loads((out / "index.json").read_text())
    assert index["sklearn"] == version
    return out, index


def _version_tuple(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def _outputs(model, methods, X):
    out = {}
    for m in methods:
        r = getattr(model, m)(X)
        out[m] = np.asarray(r.toarray() if hasattr(r, "toarray") else r)
    return out


def _pickle_outputs(path: Path, methods, X):
    """What the installed scikit-learn's own pickle gives, or None if it cannot load/predict."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import joblib

            model = joblib.load(path)  # the test's own benign files
            return _outputs(model, methods, X)
    except Exception:
        return None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))


def test_converted_models_match_the_old_version(old_models, tmp_path):
    folder, index = old_models
    version = _version_tuple(index["sklearn"])
    checked = refused = 0
    failures = []
    for model in index["models"]:
        X = np.load(folder / f"X_{model['task']}.npy")
        expected = {m: np.load(folder / f"{model['name']}.{m}.npy") for m in model["methods"]}
        must_refuse = model["name"] in REFUSED and version < REFUSED[model["name"]]
        for file in model["files"]:
            src, dst = folder / file, tmp_path / f"{file}.skv"
            if must_refuse:
                with pytest.raises(skvault.MigrationError):
                    skvault.convert(src, dst)
                assert not dst.exists()
                refused += 1
                continue
            done = skvault.convert(src, dst)
            assert done.sklearn_versions == (index["sklearn"],)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # version-mismatch warnings are expected here
                got = _outputs(skvault.load(dst), model["methods"], X)
            for m in model["methods"]:
                if not _close(got[m], expected[m]):
                    failures.append(f"{file} {m}: differs from scikit-learn {index['sklearn']}")
            native = _pickle_outputs(src, model["methods"], X)
            if native is not None and all(_close(native[m], expected[m]) for m in model["methods"]):
                for m in model["methods"]:
                    if not np.array_equal(got[m], native[m]):
                        failures.append(f"{file} {m}: not bit-identical to the installed pickle.load")
            checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 30
    if version < (1, 4):
        assert refused >= 6


# Models of make_models.py that native inference does not support (refused at open time).
NATIVE_UNSUPPORTED = {"knn", "svc", "kmeans"}


def test_converted_models_predict_natively(old_models, tmp_path):
    """Converted models served by native inference give the old version's outputs, old
    classifier trees included: convert records that it turned their counts into fractions."""
    folder, index = old_models
    version = _version_tuple(index["sklearn"])
    checked, failures = [], []
    for model in index["models"]:
        name = model["name"]
        if name in REFUSED and version < REFUSED[name]:
            continue
        X = np.load(folder / f"X_{model['task']}.npy")
        dst = tmp_path / f"{name}.skv"
        skvault.convert(folder / model["files"][0], dst)
        if name in NATIVE_UNSUPPORTED:
            with pytest.raises(skvault.UnsupportedModelError):
                skvault.native.load(dst)
            continue
        native = skvault.native.load(dst)
        methods = [m for m in model["methods"] if m in native.methods]
        assert methods, f"{name}: no method in common with {native.methods}"
        for m in methods:
            expected = np.load(folder / f"{name}.{m}.npy")
            got = np.asarray(getattr(native, m)(X))
            if not _close(got, expected.astype(got.dtype) if expected.dtype.kind == "O" else expected):
                failures.append(f"{name} {m}: native differs from scikit-learn {index['sklearn']}")
        checked.append(name)
    assert not failures, "\n".join(failures)
    assert {"rf_weighted", "extra_trees", "tree_clf", "hgb_clf", "pipeline"} <= set(checked)


def test_unmigrated_forest_would_be_silently_wrong(old_models, tmp_path):
    """The 1.3 forest through plain pickle returns counts, not probabilities: the reason the
    values migration exists. The converted one returns the old probabilities."""
    folder, index = old_models
    if _version_tuple(index["sklearn"]) >= (1, 4):
        pytest.skip("only scikit-learn < 1.4 stored class counts")
    X = np.load(folder / "X_clf.npy")
    expected = np.load(folder / "rf_weighted.predict_proba.npy")
    src = folder / "rf_weighted.joblib"
    native = _pickle_outputs(src, ["predict_proba"], X)
    if native is not None:  # 1.3 loads (wrongly); 1.2's node struct is refused by pickle
        assert native["predict_proba"].max() > 1.5
    done = skvault.convert(src, tmp_path / "rf.skv")
    whats = {m["what"] for m in done.migrations}
    assert any("fractions" in w for w in whats), whats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = skvault.load(tmp_path / "rf.skv").predict_proba(X)
    np.testing.assert_array_equal(got, expected)


def test_converted_file_records_its_origin(old_models, tmp_path):
    folder, index = old_models
    src = folder / "logreg.z.joblib"
    skvault.convert(src, tmp_path / "m.skv")
    meta = skvault.inspect(tmp_path / "m.skv")["metadata"]
    assert meta["environment"]["scikit-learn"] == index["sklearn"]
    origin = meta["converted_from"]
    assert origin["file"] == "logreg.z.joblib" and origin["format"] == "zlib"
    import blake3

    assert origin["blake3"] == blake3.blake3(src.read_bytes()).hexdigest()
    # A minor version apart: loading warns, as for any file saved by another version.
    with pytest.warns(skvault.VersionMismatchWarning):
        skvault.load(tmp_path / "m.skv")
