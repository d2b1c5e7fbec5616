"""`skvault scan` / `skvault.scan` / `convert` on files that are not pickles at all (text,
empty, random bytes, images): an error saying "not a pickle", never a verdict. And the other
side, which matters more: whatever the scanner calls "not a pickle" must be a file that the
real unpicklers (`pickle.load`'s C unpickler, the Python one joblib uses, `joblib.load`)
refuse before importing anything, and a real pickle that is truncated or broken stays UNSAFE.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import joblib
import numpy as np
import pytest

import skvault


def cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True)


NOT_PICKLES = {
    "empty.pkl": b"",
    "notes.txt": b"hello, these are my notes\n",
    "data.json": b'{"a": [1, 2, 3]}\n',
    "noise.bin": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tolist()).replace(
        b"\x80", b"\x00"
    ),
    "image.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00",
    "numbers.csv": b"0.5,1.5\n2.5,3.5\n",
}


def _not_a_pickle(path: Path) -> bool:
    try:
        skvault.scan(path)
    except skvault.FormatError as e:
        assert "not a pickle" in str(e), e
        return True
    return False


@pytest.mark.parametrize("name", sorted(NOT_PICKLES))
def test_scan_of_a_file_that_is_no_pickle_is_an_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(NOT_PICKLES[name])
    if name == "noise.bin":
        path.write_bytes(b"\x00" + NOT_PICKLES[name])  # no opcode first
    with pytest.raises(skvault.FormatError, match="not a pickle"):
        skvault.scan(path)
    with pytest.raises(skvault.FormatError, match="not a pickle"):
        skvault.convert(path, tmp_path / "out.skv")
    assert not (tmp_path / "out.skv").exists()
    out = cli("scan", path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ERROR" in out.stdout and "not a pickle" in out.stdout and "UNSAFE" not in out.stdout
    doc = json.loads(cli("scan", "--json", path).stdout)
    assert doc["summary"] == {"files": 1, "safe": 0, "unknown": 0, "unsafe": 0, "errors": 1, "skipped": 0}
    assert doc["files"][0]["verdict"] == "error" and "not a pickle" in doc["files"][0]["error"]
    converted = cli("convert", path, tmp_path / "out.skv")
    assert converted.returncode == 2 and "not a pickle" in converted.stderr
    assert not (tmp_path / "out.skv").exists()


def test_an_unsafe_file_beside_a_non_pickle_still_wins(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"hello\n")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    out = cli("scan", tmp_path / "notes.txt", evil)
    assert out.returncode == 1, out.stdout
    # In a folder, a non-pickle that is not named like one is skipped, as before.
    walked = cli("scan", "--json", tmp_path)
    doc = json.loads(walked.stdout)
    assert doc["summary"]["skipped"] == 1 and doc["summary"]["unsafe"] == 1


@pytest.fixture
def canary(tmp_path, monkeypatch):
    """A module that leaves a file behind when it is imported: proof that an unpickler got as
    far as importing what the stream names."""
    mod = tmp_path / "mods"
    mod.mkdir()
    flag = tmp_path / "imported"
    (mod / "skvault_canary.py").write_text(
        f"open({str(flag)!r}, 'w').close()\ndef boom(*a):\n    open({str(flag)!r}, 'w').close()\n"
    )
    monkeypatch.syspath_prepend(str(mod))
    yield flag
    sys.modules.pop("skvault_canary", None)


# Streams that import the canary if an unpickler reads them: after any first byte that the
# scanner calls "not a pickle", none of them may be reached.
SUFFIXES = [
    b"cskvault_canary\nboom\n(tR.",
    b"(iskvault_canary\nboom\n.",
    b"\x80\x04\x8c\x0eskvault_canary\x8c\x04boom\x93)R.",
    b"0\n" + b"cskvault_canary\nboom\n)R.",
    b"NG\r\ncskvault_canary\nboom\n)R.",
]


def _unpicklers(data: bytes, path: Path):
    yield lambda: pickle.Unpickler(io.BytesIO(data)).load()  # C
    yield lambda: pickle._Unpickler(io.BytesIO(data)).load()  # Python, as joblib uses
    yield lambda: joblib.load(path)


def test_whatever_is_called_not_a_pickle_no_unpickler_runs(tmp_path, canary):
    """Every first byte (and PNG's signature) with streams that would import the canary
    behind it: when the scanner says "not a pickle", the C unpickler, the Python unpickler and
    joblib.load all fail and import nothing; otherwise the scan is a verdict."""
    heads = [bytes([b]) for b in range(256)] + [b"\x89PNG\r\n"]
    called_not_a_pickle = 0
    for head in heads:
        for suffix in SUFFIXES:
            data = head + suffix
            path = tmp_path / "f.bin"
            path.write_bytes(data)
            if not _not_a_pickle(path):
                continue
            called_not_a_pickle += 1
            for load in _unpicklers(data, path):
                with pytest.raises(Exception):  # noqa: B017, PT011 - any failure, but a failure
                    load()
                assert not canary.exists(), (head, suffix)
                assert "skvault_canary" not in sys.modules
    # The rule covers most bytes: non-opcodes and the 31 opcodes no pickle starts with.
    assert called_not_a_pickle > 150 * len(SUFFIXES)
    # The canary works: the same suffixes on their own do import it.
    path = tmp_path / "plain.pkl"
    path.write_bytes(SUFFIXES[0])
    pickle.loads(SUFFIXES[0])
    assert canary.exists()


def _pickles_of(obj):
    for protocol in range(6):
        yield f"p{protocol}", pickle.dumps(obj, protocol=protocol)
    for compress in (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
        buf = io.BytesIO()
        joblib.dump(obj, buf, compress=compress)
        yield f"joblib-{compress}", buf.getvalue()


def test_truncated_and_broken_real_pickles_stay_unsafe(tmp_path):
    obj = {"w": np.arange(6.0), "od": OrderedDict(a=1), "s": "text"}
    for label, data in _pickles_of(obj):
        path = tmp_path / "cut.pkl"
        cuts = sorted({1, 2, 3, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1})
        for cut in cuts:
            path.write_bytes(data[:cut])
            report = skvault.scan(path)
            assert report.verdict == "unsafe", (label, cut, report)
        # Corrupted after its magic (or first opcodes): still read, still unsafe.
        path.write_bytes(data[:6] + b"\xff" * 16 + data[22:])
        assert skvault.scan(path).verdict == "unsafe", label
        with pytest.raises(skvault.UnsafeFileError):
            skvault.convert(path, tmp_path / "x.skv")
    assert not (tmp_path / "x.skv").exists()
