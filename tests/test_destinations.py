"""Every writer (dump, exports, import, convert, registry download, the CLI) goes through one
atomic write, which refuses a destination that exists and is not a regular file: a rename
would otherwise replace a FIFO, a directory or ``/dev/null`` itself with a file."""

from __future__ import annotations

import os
import pickle
import socket
import stat
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skvault


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture
def skv(model, tmp_path):
    path = tmp_path / "model.skv"
    skvault.dump(model, path)
    return path


def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _folder(tmp_path):
    path = tmp_path / "folder"
    path.mkdir()
    (path / "inside").write_bytes(b"keep")
    return path


def _temporaries(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".skvault-")]


def assert_refused(call, path, kind):
    """``call()`` raises DestinationError naming ``path`` and ``kind``, and leaves nothing behind."""
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(skvault.DestinationError) as info:
        call()
    err = info.value
    assert isinstance(err, OSError) and isinstance(err, skvault.SkvaultError)
    assert err.filename == str(path)
    assert err.kind == kind
    assert str(path) in str(err) and kind in str(err)
    assert sorted(p.name for p in path.parent.iterdir()) == before
    assert _temporaries(path.parent) == []


def test_the_error_is_importable_and_an_oserror():
    assert issubclass(skvault.DestinationError, OSError)
    assert issubclass(skvault.DestinationError, skvault.SkvaultError)
    assert skvault.exceptions.DestinationError is skvault.DestinationError
    err = skvault.DestinationError("x: refused", "x", "FIFO")
    assert pickle.loads(pickle.dumps(err)).kind == "FIFO"


def test_dump_refuses_a_fifo_and_leaves_it(model, tmp_path):
    fifo = _fifo(tmp_path)
    assert_refused(lambda: skvault.dump(model, fifo), fifo, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dump_refuses_a_directory_and_leaves_its_content(model, tmp_path):
    folder = _folder(tmp_path)
    assert_refused(lambda: skvault.dump(model, folder), folder, "directory")
    assert [p.name for p in folder.iterdir()] == ["inside"]


def test_dump_refuses_a_socket(model, tmp_path):
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert_refused(lambda: skvault.dump(model, path), path, "socket")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_dump_refuses_symlinks_and_never_writes_through_them(model, tmp_path):
    target = tmp_path / "target.skv"
    target.write_bytes(b"old")
    link = tmp_path / "link.skv"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.skv"
    dangling.symlink_to(tmp_path / "nowhere.skv")
    assert_refused(lambda: skvault.dump(model, link), link, "symbolic link")
    assert_refused(lambda: skvault.dump(model, dangling), dangling, "symbolic link")
    assert link.is_symlink() and dangling.is_symlink()
    assert target.read_bytes() == b"old"
    assert not (tmp_path / "nowhere.skv").exists()


def test_dump_to_a_character_device_is_refused_and_it_stays_a_device(model, tmp_path):
    # A device made for the test first: should the refusal ever regress, this test must not
    # replace the machine's /dev/null (as root, a rename would).
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device node (not root)")
    assert_refused(lambda: skvault.dump(model, node), node, "character device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    null = os.path.realpath("/dev/null")
    with pytest.raises(skvault.DestinationError, match="character device") as info:
        skvault.dump(model, null)
    assert info.value.filename == null
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_a_regular_file_is_still_replaced(model, skv):
    skv.write_bytes(b"old")
    skvault.dump(model, skv)
    assert skvault.load(skv).coef_.shape == (1, 3)


def test_exports_and_import_refuse_special_destinations(skv, tmp_path):
    fifo = _fifo(tmp_path)
    folder = _folder(tmp_path)
    assert_refused(lambda: skvault.export_onnx(skv, fifo), fifo, "FIFO")
    assert_refused(lambda: skvault.export_json(skv, folder), folder, "directory")
    doc = tmp_path / "model.json"
    skvault.export_json(skv, doc)
    assert_refused(lambda: skvault.import_json(doc, fifo), fifo, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_convert_refuses_a_fifo(model, tmp_path):
    src = tmp_path / "model.pkl"
    src.write_bytes(pickle.dumps(model))
    fifo = _fifo(tmp_path)
    assert_refused(lambda: skvault.convert(src, fifo), fifo, "FIFO")


def test_registry_download_refuses_a_fifo(model, tmp_path):
    reg = skvault.Registry(tmp_path / "registry")
    reg.register(model, "m")
    fifo = _fifo(tmp_path)
    assert_refused(lambda: reg.download("m", fifo), fifo, "FIFO")
    assert_refused(lambda: reg.export("m", fifo, format="json"), fifo, "FIFO")


def test_cli_refuses_with_a_message_naming_the_path_and_kind(skv, tmp_path):
    fifo = _fifo(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "skvault", "export", str(skv), str(fifo), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert str(fifo) in result.stderr and "FIFO" in result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _temporaries(tmp_path) == []
