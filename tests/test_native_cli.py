"""`skvault predict`: every input format, every output format, every error case.

Expected outputs come from scikit-learn on the same rows. The CLI runs as a subprocess
(`python -m skvault`, the Rust command line), so nothing of Python is involved in predicting.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest, RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skvault
from native_helpers import assert_same, datasets

CLI = [sys.executable, "-m", "skvault", "predict"]
DATA = datasets()


def run(*args, ok=True):
    result = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    X, y, Xt = DATA["multiclass"]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, np.array(["lo", "mid", "hi"])[y])
    path = tmp_path_factory.mktemp("m") / "clf.skv"
    skvault.dump(model, path)
    return model, path, Xt


def _csv(path, X, header=None):
    lines = [] if header is None else [",".join(header)]
    lines += [",".join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_npy_in_npy_out_labels_and_probabilities(tmp_path, classifier):
    model, path, Xt = classifier
    np.save(tmp_path / "x.npy", Xt)
    run(path, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_same(np.load(tmp_path / "y.npy"), model.predict(Xt), "labels")
    run(path, tmp_path / "x.npy", "-o", tmp_path / "p.npy", "--proba")
    assert_same(np.load(tmp_path / "p.npy"), model.predict_proba(Xt), "proba")


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int8, np.uint16, ">f8", bool])
def test_npy_input_dtypes_and_fortran_order(tmp_path, classifier, dtype):
    model, path, Xt = classifier
    X = np.asfortranarray((Xt * 3).astype(dtype))
    np.save(tmp_path / "x.npy", X)
    run(path, tmp_path / "x.npy", "-o", tmp_path / "p.npy", "--proba")
    assert_same(np.load(tmp_path / "p.npy"), model.predict_proba(X.astype(np.float64)), "proba")


def test_csv_without_header_and_csv_output(tmp_path, classifier):
    model, path, Xt = classifier
    _csv(tmp_path / "x.csv", Xt)
    run(path, tmp_path / "x.csv", "-o", tmp_path / "y.csv")
    lines = (tmp_path / "y.csv").read_text().splitlines()
    assert lines[0] == "prediction"
    assert lines[1:] == model.predict(Xt).tolist()
    run(path, tmp_path / "x.csv", "-o", tmp_path / "p.csv", "--proba")
    text = (tmp_path / "p.csv").read_text().splitlines()
    assert text[0].split(",") == model.classes_.tolist()
    got = np.array([[float(v) for v in line.split(",")] for line in text[1:]])
    assert_same(got, model.predict_proba(Xt), "proba read back from CSV (round-trip exact)")


def test_csv_header_is_matched_to_feature_names(tmp_path):
    X, y, Xt = DATA["regression"]
    cols = [f"f{i}" for i in range(X.shape[1])]
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    # What fitting on a DataFrame records (pandas is not a test dependency).
    model.feature_names_in_ = np.array(cols, dtype=object)
    skvault.dump(model, tmp_path / "m.skv")
    want = _predict_unnamed(model, Xt)
    order = [cols[i] for i in (3, 0, 5, 1, 4, 2)]
    _csv(tmp_path / "x.csv", Xt[:, [3, 0, 5, 1, 4, 2]], header=order)
    run(tmp_path / "m.skv", tmp_path / "x.csv", "-o", tmp_path / "y.npy")
    assert_same(np.load(tmp_path / "y.npy"), want, "predict")
    _csv(tmp_path / "bad.csv", Xt, header=cols[:-1] + ["zzz"])
    r = run(tmp_path / "m.skv", tmp_path / "bad.csv", "-o", tmp_path / "y.npy", ok=False)
    assert r.returncode == 2 and "missing" in r.stderr and "zzz" in r.stderr
    _csv(tmp_path / "dup.csv", Xt, header=cols[:-1] + ["f0"])
    r = run(tmp_path / "m.skv", tmp_path / "dup.csv", "-o", tmp_path / "y.npy", ok=False)
    assert r.returncode == 2 and "f5" in r.stderr


def _predict_unnamed(model, X):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "X does not have valid feature names"
        return model.predict(X)


def test_header_without_feature_names_is_positional(tmp_path, classifier):
    model, path, Xt = classifier
    _csv(tmp_path / "x.csv", Xt, header=[f"c{i}" for i in range(Xt.shape[1])])
    run(path, tmp_path / "x.csv", "-o", tmp_path / "y.npy")
    assert_same(np.load(tmp_path / "y.npy"), model.predict(Xt), "labels")


def test_other_methods_and_label_kinds(tmp_path):
    X, y, Xt = DATA["binary"]
    pipe = make_pipeline(StandardScaler()).fit(X)
    iso = IsolationForest(n_estimators=20, random_state=0).fit(X)
    for name, model in (("pipe", pipe), ("iso", iso)):
        skvault.dump(model, tmp_path / f"{name}.skv")
    np.save(tmp_path / "x.npy", Xt)
    run(tmp_path / "pipe.skv", tmp_path / "x.npy", "-o", tmp_path / "t.npy", "--method", "transform")
    assert_same(np.load(tmp_path / "t.npy"), pipe.transform(Xt), "transform")
    run(tmp_path / "iso.skv", tmp_path / "x.npy", "-o", tmp_path / "s.npy", "--method", "score-samples")
    assert_same(np.load(tmp_path / "s.npy"), iso.score_samples(Xt), "score_samples")
    run(tmp_path / "iso.skv", tmp_path / "x.npy", "-o", tmp_path / "l.npy")
    assert_same(np.load(tmp_path / "l.npy"), iso.predict(Xt), "int labels")


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d, Xt: np.save(d / "in.npy", Xt[:, :3]), "3 columns, but the model expects 6"),
        (lambda d, Xt: np.save(d / "in.npy", Xt[0]), "2-d"),
        (lambda d, Xt: np.save(d / "in.npy", Xt[:0]), "no rows"),
        (lambda d, Xt: np.save(d / "in.npy", np.array([["a"]], dtype=object)), "not numeric"),
        (lambda d, Xt: (d / "in.npy").write_bytes(b"\x93NUMPY\x01\x00garbage"), "header"),
        (lambda d, Xt: (d / "in.csv").write_text("1,2,3,4,5,6\n1,2,x,4,5,6\n"), "line 2, column 3"),
        (lambda d, Xt: (d / "in.csv").write_text("1,2,3,4,5,6\n1,2\n"), "line 2"),
        (lambda d, Xt: (d / "in.csv").write_text(""), "empty"),
        (lambda d, Xt: (d / "in.csv").write_text("a,b,c,d,e,f\n"), "no rows"),
        (lambda d, Xt: (d / "in.parquet").write_bytes(b"PAR1"), "not a readable Parquet file"),
        (lambda d, Xt: (d / "in.npy").write_bytes(b""), "not a .npy file"),
        (lambda d, Xt: (d / "in.csv").write_text("1,2,3\n4,5,6\n"), "3 columns, but the model expects 6"),
        (lambda d, Xt: (d / "in.csv").write_text("\n\n"), "no rows"),
        (lambda d, Xt: (d / "in.txt").write_text("1"), "format"),
    ],
    ids=["columns", "1-d", "no-rows", "object", "bad-npy", "non-numeric", "ragged", "empty",
         "header-only", "parquet", "empty-npy", "csv-columns", "blank-csv", "unknown-ext"],
)
def test_input_errors(tmp_path, classifier, setup, message):
    _, path, Xt = classifier
    setup(tmp_path, Xt)
    (name,) = [p for p in tmp_path.iterdir() if p.name.startswith("in.")]
    r = run(path, name, "-o", tmp_path / "out.npy", ok=False)
    assert r.returncode == 2
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "out.npy").exists()


def test_model_and_method_errors(tmp_path, classifier):
    _, path, Xt = classifier
    np.save(tmp_path / "x.npy", Xt)
    r = run(path, tmp_path / "x.npy", "-o", tmp_path / "o.npy", "--method", "transform", ok=False)
    assert r.returncode == 2 and "no method transform" in r.stderr and "predict_proba" in r.stderr
    r = run(tmp_path / "missing.skv", tmp_path / "x.npy", "-o", tmp_path / "o.npy", ok=False)
    assert r.returncode == 2 and "missing.skv" in r.stderr
    r = run(path, tmp_path / "x.npy", "-o", tmp_path / "o.json", ok=False)
    assert r.returncode == 2 and ".npy, .csv or .parquet" in r.stderr
    bad = Xt[:4].copy()
    bad[2, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    r = run(path, tmp_path / "inf.npy", "-o", tmp_path / "o.npy", ok=False)
    assert r.returncode == 2 and "row 2, column 1" in r.stderr


def test_output_is_replaced_atomically(tmp_path, classifier):
    model, path, Xt = classifier
    np.save(tmp_path / "x.npy", Xt)
    out = tmp_path / "y.npy"
    out.write_bytes(b"old")
    run(path, tmp_path / "x.npy", "-o", out)
    assert_same(np.load(out), model.predict(Xt), "labels")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]  # no temporary left
    # A failing run leaves the previous output untouched.
    np.save(tmp_path / "x.npy", Xt[:, :2])
    run(path, tmp_path / "x.npy", "-o", out, ok=False)
    assert_same(np.load(out), model.predict(Xt), "kept")


def _run_on_a_terminal(*args):
    """Runs the CLI with stdout on a pseudo-terminal; returns (exit code, stdout, stderr)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, *map(str, args)], stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        err = proc.stderr.read().decode()
        return proc.wait(timeout=30), b"".join(chunks), err
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_predict_to_stdout_on_a_terminal_csv_yes_npy_refused(tmp_path, classifier):
    """`-o -` writes CSV to a terminal as it would to a pipe; binary .npy bytes are refused
    there (exit 2, nothing written) instead of garbling the terminal."""
    _, path, Xt = classifier
    np.save(tmp_path / "x.npy", Xt)
    run(path, tmp_path / "x.npy", "-o", tmp_path / "y.csv")
    code, out, err = _run_on_a_terminal(path, tmp_path / "x.npy", "-o", "-")
    assert code == 0, err
    # The terminal turns "\n" into "\r\n".
    assert out.replace(b"\r\n", b"\n") == (tmp_path / "y.csv").read_bytes()
    code, out, err = _run_on_a_terminal(path, tmp_path / "x.npy", "-o", "-", "--format", "npy")
    assert (code, out) == (2, b"")
    assert "redirect stdout" in err and "--format csv" in err
