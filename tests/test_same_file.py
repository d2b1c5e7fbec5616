"""A command never writes its output over its own input (issue 20, "Clear errors and safe
commands"): `skvault convert X X` replaced the pickle with the .skv file before."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skvault

X = np.random.default_rng(0).random((30, 3))
MODEL = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))


def cli(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True)


def _same_file_paths(path):
    """The path itself, another spelling of it, a hard link and a symbolic link to it."""
    hard = path.with_name("hard-" + path.name)
    os.link(path, hard)
    soft = path.with_name("soft-" + path.name)
    soft.symlink_to(path)
    return [path, path.parent / "." / path.name, hard, soft]


def test_convert_refuses_its_own_input(tmp_path):
    src = tmp_path / "model.pkl"
    src.write_bytes(pickle.dumps(MODEL, protocol=5))
    before = src.read_bytes()
    for out in _same_file_paths(src):
        result = cli("convert", src, out)
        assert result.returncode == 2, (out, result)
        assert "input file itself" in result.stderr or "symbolic link" in result.stderr
        with pytest.raises(skvault.DestinationError):
            skvault.convert(src, out)
        assert src.read_bytes() == before
    # A different output still works.
    skvault.convert(src, tmp_path / "model.skv")


def test_export_import_and_predict_refuse_their_own_inputs(tmp_path):
    model = tmp_path / "model.skv"
    skvault.dump(MODEL, model)
    before = model.read_bytes()
    for out in _same_file_paths(model):
        assert cli("export", model, out, "--format", "json").returncode == 2
        with pytest.raises(skvault.DestinationError):
            skvault.export_onnx(model, out)
        assert model.read_bytes() == before
    doc = tmp_path / "model.json"
    skvault.export_json(model, doc)
    doc_before = doc.read_bytes()
    assert cli("import", doc, doc).returncode == 2
    with pytest.raises(skvault.DestinationError):
        skvault.import_json(doc, doc)
    assert doc.read_bytes() == doc_before
    rows = tmp_path / "x.csv"
    np.savetxt(rows, X, delimiter=",")
    rows_before = rows.read_bytes()
    assert cli("predict", model, rows, "-o", rows).returncode == 2
    assert rows.read_bytes() == rows_before
    assert cli("predict", model, rows, "-o", tmp_path / "y.csv").returncode == 0
