"""The default allow-list, checked against the installed numpy, scipy and scikit-learn."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import skvault

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gen_trusted  # noqa: E402


def _listed(package: str) -> list[str]:
    text = (gen_trusted.TRUSTED_DIR / f"{package}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_every_default_name_resolves_to_a_class_or_function_of_its_package():
    for name in skvault.default_trusted():
        module, attr = name.rsplit(".", 1)
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type) or callable(obj), f"{name} is a {type(obj).__name__}"
        if not isinstance(obj, (type, np.ufunc)):
            # Functions are listed only from the packages whose pure functions models hold.
            assert module.split(".")[0] in {"numpy", "scipy", "sklearn"}, name


def test_every_estimator_is_trusted_by_default():
    from sklearn.utils import all_estimators

    trusted = set(skvault.default_trusted())
    missing = [
        f"{cls.__module__}.{cls.__qualname__}"
        for _, cls in all_estimators()
        if f"{cls.__module__}.{cls.__qualname__}" not in trusted
    ]
    assert missing == []


@pytest.mark.parametrize("package", ["numpy", "scipy", "sklearn"])
def test_committed_lists_match_the_installed_packages(package):
    """Regenerating the list with tools/gen_trusted.py must give exactly the committed file."""
    assert _listed(package) == getattr(gen_trusted, f"{package}_names")()


def test_default_list_is_what_the_files_say():
    files = set()
    for package in ("builtins", "numpy", "scipy", "sklearn"):
        files.update(_listed(package))
    assert files == set(skvault.default_trusted())


def _resolve(name: str):
    module, attr = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)


def test_no_trusted_class_with_compiled_code_goes_unchecked():
    """SECURITY.md's design rule: a default-trusted class whose C or Cython code reads the
    state a file gives it has a Rust check of that state (skvault_infer::guard), or is not
    trusted by default. numpy arrays, scalars and dtypes are trusted only as values: the
    loader never creates them from an object node (next test)."""
    from skvault import _native

    guarded = set(_native.guarded_classes())
    unchecked = [
        name
        for name in skvault.default_trusted()
        if isinstance(obj := _resolve(name), type)
        and gen_trusted.has_compiled_code(obj)
        and not issubclass(obj, (np.ndarray, np.generic, np.dtype))
        and name not in guarded
    ]
    assert unchecked == []


def test_every_guarded_class_exists_here():
    from skvault import _native

    for name in _native.guarded_classes():
        assert isinstance(_resolve(name), type), name


VALUE_ONLY = [
    name
    for name in skvault.default_trusted()
    if isinstance(obj := _resolve(name), type) and issubclass(obj, (np.ndarray, np.generic, np.dtype))
]


@pytest.mark.parametrize("name", VALUE_ONLY)
def test_numpy_types_are_values_never_built_by_object_nodes(name):
    from conftest import forge

    with pytest.raises(skvault.FormatError, match="object node|only built by calling"):
        skvault.loads(forge({"object": name, "new": []}))
