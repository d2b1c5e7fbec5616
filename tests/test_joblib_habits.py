"""joblib's and skops' spellings work as their users expect (issue 20, "joblib and skops habits").

Each test failed before the change: ``compress=3`` was a TypeError, ``mmap_mode`` and open
files were refused, ``get_untrusted_types(file=...)`` did not exist.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import skvault
from conftest import split_skv

# Compressible and big enough that every level gives its own size.
OBJ = {"ramp": np.arange(200_000, dtype=np.int64) % 1000, "noise": np.random.default_rng(0).random(5_000)}


def _layout(data: bytes) -> list[tuple[str, int]]:
    """(codec, stored length) of every array: what the codec and level decided."""
    _, manifest, _ = split_skv(data)
    return [(a["codec"], a["length"]) for a in manifest["arrays"]]


@pytest.mark.parametrize(
    "joblib_form, skvault_form",
    [
        (True, {"compress": "zstd"}),
        (3, {"compress": "zstd", "level": 3}),
        (9, {"compress": "zstd", "level": 9}),
        (("zstd", 9), {"compress": "zstd", "level": 9}),
        (["zstd", 1], {"compress": "zstd", "level": 1}),
        (("lz4", 1), {"compress": "lz4"}),
        (("lz4", 9), {"compress": "lz4"}),
        (0, {}),
        (False, {}),
        (("zstd", 0), {}),
    ],
)
def test_joblib_compress_forms_write_what_their_codec_and_level_write(tmp_path, joblib_form, skvault_form):
    expected = _layout(skvault.dumps(OBJ, **skvault_form))
    assert _layout(skvault.dumps(OBJ, compress=joblib_form)) == expected
    path = tmp_path / "m.skv"
    skvault.dump(OBJ, path, compress=joblib_form)
    assert _layout(path.read_bytes()) == expected
    back = skvault.load(path)
    np.testing.assert_array_equal(back["ramp"], OBJ["ramp"])


def test_integer_levels_are_zstd_levels():
    assert _layout(skvault.dumps(OBJ, compress=1)) != _layout(skvault.dumps(OBJ, compress=19))
    assert {c for c, _ in _layout(skvault.dumps(OBJ, compress=19))} == {"zstd"}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"compress": "zlib"}, ["zlib", "zstd"]),
        ({"compress": ("gzip", 3)}, ["gzip", "zstd"]),
        ({"compress": ("lzma", 3)}, ["lzma"]),
        ({"compress": 3, "level": 5}, ["already sets the level"]),
        ({"compress": ("zstd", 3), "level": 5}, ["already sets the level"]),
        ({"compress": ("zstd",)}, ["(name, level)"]),
        ({"compress": (3, "zstd")}, ["(name, level)"]),
        ({"compress": 23}, ["23"]),
    ],
)
def test_joblib_forms_skvault_does_not_write_are_refused_naming_the_fix(kwargs, words):
    with pytest.raises(skvault.InvalidOptionError) as info:
        skvault.dumps(OBJ, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("mode", ["r", "c"])
def test_mmap_mode_is_mmap(tmp_path, mode):
    path = tmp_path / "m.skv"
    skvault.dump(OBJ, path)
    back = skvault.load(path, mmap_mode=mode)
    assert not back["ramp"].flags.owndata  # a view of the mapped file
    assert back["ramp"].flags.writeable == (mode == "c")
    np.testing.assert_array_equal(back["ramp"], OBJ["ramp"])
    assert skvault.load(path, mmap=True, mmap_mode="r")["ramp"].flags.writeable is False


def test_mmap_and_mmap_mode_that_disagree_are_refused(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(OBJ, path)
    with pytest.raises(skvault.InvalidOptionError, match="disagree"):
        skvault.load(path, mmap="c", mmap_mode="r")
    with pytest.raises(skvault.InvalidOptionError, match="mmap_mode"):
        skvault.load(path, mmap_mode="w+")


def test_open_binary_files_work_for_dump_and_load(tmp_path):
    path = tmp_path / "m.skv"
    with open(path, "wb") as f:
        skvault.dump(OBJ, f, compress=3)
    with open(path, "rb") as f:
        back = skvault.load(f)
    np.testing.assert_array_equal(back["ramp"], OBJ["ramp"])
    buffer = io.BytesIO()
    skvault.dump(OBJ, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(skvault.load(buffer)["noise"], OBJ["noise"])
    # What went into the file object is a complete .skv file.
    assert skvault.get_untrusted_types(buffer.getvalue()) == []


def test_open_files_refuse_text_mode_and_mmap(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(OBJ, path)
    with open(path, "rb") as f, pytest.raises(skvault.InvalidOptionError, match="memory-mapped"):
        skvault.load(f, mmap=True)
    with open(path, encoding="latin-1") as f, pytest.raises(TypeError, match="text mode"):
        skvault.load(f)


def test_get_untrusted_types_takes_skops_spellings(tmp_path):
    path = tmp_path / "m.skv"
    skvault.dump(OBJ, path)
    assert skvault.get_untrusted_types(file=path) == []
    assert skvault.get_untrusted_types(data=path.read_bytes()) == []
    assert skvault.get_untrusted_types(file=str(path), trusted="a.b") == []
    with pytest.raises(TypeError, match="one of"):
        skvault.get_untrusted_types(path, file=path)
    with pytest.raises(TypeError, match="one of"):
        skvault.get_untrusted_types()


def test_mmap_on_a_compressed_file_warns_instead_of_copying_silently(tmp_path):
    path = tmp_path / "z.skv"
    skvault.dump(OBJ, path, compress="zstd")
    with pytest.warns(skvault.MmapCopyWarning, match=r"2 of 2 arrays .* decompressed into memory") as caught:
        back = skvault.load(path, mmap=True)
    assert caught[0].filename == __file__  # points at the caller's load(), not at skvault
    np.testing.assert_array_equal(back["ramp"], OBJ["ramp"])
    plain = tmp_path / "plain.skv"
    skvault.dump(OBJ, plain)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skvault.load(plain, mmap=True)
        skvault.load(path)  # no mmap asked: nothing to warn about


def test_functions_and_classes_from_main_are_refused_with_the_fix(tmp_path):
    # A script defines a transformer function in __main__ and saves a pipeline using it:
    # the file could be loaded by no other process, so dump refuses it, naming the fix.
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np, skvault\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "def log1p(x):\n"
        "    return np.log1p(x)\n"
        "class Box:\n"
        "    pass\n"
        "for obj in (FunctionTransformer(log1p).fit(np.ones((3, 2))), Box()):\n"
        "    try:\n"
        "        skvault.dump(obj, 'm.skv')\n"
        "    except skvault.UnsupportedObjectError as e:\n"
        "        print('refused:', e)\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("refused:")]
    assert len(lines) == 2, out.stdout
    assert "__main__.log1p" in lines[0] and "Move log1p into a module" in lines[0]
    assert "__main__.Box" in lines[1]
    assert not (tmp_path / "m.skv").exists()
