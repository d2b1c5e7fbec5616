"""The exception classes: importable from ``skvault``, catchable as ``SkvaultError``, and
raised as ``docs/ERRORS.md`` documents for a few representative failures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import skvault
import skvault.exceptions

ERRORS_MD = Path(__file__).resolve().parents[1] / "docs" / "ERRORS.md"

CLASSES = [name for name in skvault.exceptions.__all__ if not name.endswith("Warning")]


@pytest.mark.parametrize("name", CLASSES)
def test_every_exception_is_importable_from_skvault_and_catchable_as_skvault_error(name):
    cls = getattr(skvault, name)
    assert cls is getattr(skvault.exceptions, name)
    assert name in skvault.__all__
    assert issubclass(cls, skvault.SkvaultError)
    with pytest.raises(skvault.SkvaultError):
        raise cls(*_args(cls))


def _args(cls):
    if cls is skvault.UntrustedTypesError:
        return (["os.system"],)
    if cls is skvault.ValidationError:
        return ("predict", 1, 0.5)
    return ("message",)


def test_the_table_of_classes_in_docs_names_every_class_and_only_them():
    text = ERRORS_MD.read_text(encoding="utf-8")
    table = text[text.index("| Class | Bases |") : text.index("## `skvault_format::FormatError`")]
    builtins = {"ValueError", "TypeError", "OSError", "LookupError", "AttributeError"}
    documented = set(re.findall(r"`(\w+Error)`", table)) - builtins
    assert documented == set(CLASSES)


@pytest.mark.parametrize(
    "kwargs",
    [{"compress": "lz4", "level": 3}, {"compress": "zstd", "level": 99}, {"compress": None, "level": 1}, {"compress": "gz"}],
)
def test_a_write_option_the_codec_does_not_take_is_an_invalid_option_error(kwargs):
    with pytest.raises(skvault.InvalidOptionError) as info:
        skvault.dumps(np.arange(3), **kwargs)
    assert isinstance(info.value, ValueError)


def test_a_truncated_file_is_a_format_error():
    data = skvault.dumps({"a": np.arange(100.0)})
    with pytest.raises(skvault.FormatError) as info:
        skvault.loads(data[: len(data) // 2])
    assert not isinstance(info.value, skvault.IntegrityError)


def test_a_changed_array_byte_is_an_integrity_error():
    data = bytearray(skvault.dumps(np.arange(1000.0)))
    data[-9] ^= 1
    with pytest.raises(skvault.IntegrityError, match="digest mismatch"):
        skvault.loads(bytes(data))


def test_a_lambda_is_an_unsupported_object_error():
    with pytest.raises(skvault.UnsupportedObjectError) as info:
        skvault.dumps(lambda: 0)
    assert isinstance(info.value, TypeError)


def test_a_missing_file_is_the_builtin_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        skvault.load(tmp_path / "missing.skv")
