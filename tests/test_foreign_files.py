"""A pickle or joblib file given where a .skv file is expected is recognised by its bytes,
and the error says what it is and how to convert it (issue 20, "Clear errors")."""

from __future__ import annotations

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skvault

X = np.random.default_rng(0).random((40, 3))
MODEL = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))


@pytest.fixture(params=["pickle", "joblib", "joblib-zlib", "joblib-gzip", "joblib-bz2", "joblib-xz"])
def foreign(request, tmp_path):
    path = tmp_path / "model.bin"  # the name says nothing: the bytes decide
    kind = request.param
    if kind == "pickle":
        path.write_bytes(pickle.dumps(MODEL, protocol=4))
    else:
        compress = {"joblib": 0, "joblib-zlib": 3}.get(kind)
        if compress is None:
            compress = (kind.split("-")[1], 3)
        joblib.dump(MODEL, path, compress=compress)
    return path


def cli(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True)


def test_python_functions_name_the_file_kind_and_the_fix(foreign):
    for call in (skvault.load, skvault.inspect, skvault.verify, skvault.get_untrusted_types):
        with pytest.raises(skvault.FormatError) as info:
            call(foreign)
        message = str(info.value)
        assert "not a .skv file" in message
        assert "looks like a" in message and ("pickle" in message or "joblib" in message)
        assert "skvault.convert(" in message and "skvault.scan(" in message
    # The advice works: scan says it is safe, convert makes a file that loads.
    assert skvault.scan(foreign).verdict == "safe"
    skvault.convert(foreign, foreign.with_suffix(".skv"))
    np.testing.assert_array_equal(skvault.load(foreign.with_suffix(".skv")).predict(X), MODEL.predict(X))


@pytest.mark.parametrize("command", ["inspect", "verify", "export"])
def test_cli_commands_name_the_file_kind_and_the_fix(foreign, tmp_path, command):
    args = [command, foreign]
    if command == "export":
        args.append(tmp_path / "m.onnx")
    result = cli(*args)
    assert result.returncode == 2, result
    assert "looks like a" in result.stderr
    assert "skvault convert" in result.stderr and "skvault scan" in result.stderr


def test_cli_predict_names_the_file_kind(foreign, tmp_path):
    np.save(tmp_path / "x.npy", X)
    result = cli("predict", foreign, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.returncode == 2, result
    assert "skvault convert" in result.stderr


def test_other_foreign_files_get_no_conversion_advice(tmp_path):
    for content in [b"xylophone,1,2\n", b"(dp0\nS'a'\n", b"PK\x03\x04" + bytes(40), bytes(range(64))]:
        path = tmp_path / "f.bin"
        path.write_bytes(content)
        with pytest.raises(skvault.FormatError) as info:
            skvault.load(path)
        assert "convert" not in str(info.value), content


def _says_what_it_is(message: str) -> None:
    assert "looks like a" in message and ("pickle" in message or "joblib" in message), message
    assert "convert" in message and "scan" in message, message


def test_registry_register_native_load_and_export_name_the_file_kind(foreign, tmp_path):
    reg = skvault.Registry(tmp_path / "registry")
    calls = {
        "Registry.register": lambda: reg.register(foreign, "m"),
        "native.load": lambda: skvault.native.load(foreign),
        "export_onnx": lambda: skvault.export_onnx(foreign, tmp_path / "m.onnx"),
        "export_json": lambda: skvault.export_json(foreign, tmp_path / "m.json"),
    }
    for what, call in calls.items():
        with pytest.raises(skvault.FormatError) as info:
            call()
        _says_what_it_is(str(info.value))
        assert "not a .skv file" in str(info.value), what
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.json").exists()


def test_cli_registry_register_names_the_file_kind(foreign, tmp_path):
    result = cli("registry", "--uri", tmp_path / "registry", "register", foreign, "m")
    assert result.returncode == 2, result
    _says_what_it_is(result.stderr)
    assert "skvault convert" in result.stderr and "skvault scan" in result.stderr
