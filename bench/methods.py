"""The persistence methods compared by `bench/run.py`: one save and one load function each.

A method with `same_file_as` set does not save a file of its own: it loads the file that the
named method saved (joblib with mmap_mode="r", skvault with mmap=True).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import skops.io

import skvault


@dataclass
class Method:
    name: str
    suffix: str
    save: Callable[[Any, Path], None] | None
    load: Callable[[Path], Any]
    same_file_as: str | None = None
    # Prepared once per file, outside the timings (e.g. the names a user reviews and trusts).
    prepare_load: Callable[[Path], dict[str, Any]] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _pickle_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def _pickle_load(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _skops_trusted(path: Path) -> dict[str, Any]:
    return {"trusted": skops.io.get_untrusted_types(file=path)}


REFERENCE = "joblib"

METHODS: list[Method] = [
    Method("pickle", ".pkl", _pickle_save, _pickle_load, note="protocol 5"),
    Method("joblib", ".joblib", lambda o, p: joblib.dump(o, p), joblib.load, note="uncompressed"),
    Method(
        "joblib zlib-3",
        ".joblib.z",
        lambda o, p: joblib.dump(o, p, compress=("zlib", 3)),
        joblib.load,
    ),
    Method(
        "joblib lzma-3",
        ".joblib.xz",
        lambda o, p: joblib.dump(o, p, compress=("lzma", 3)),
        joblib.load,
    ),
    Method(
        "joblib mmap",
        "",
        None,
        lambda p: joblib.load(p, mmap_mode="r"),
        same_file_as="joblib",
        note='load(mmap_mode="r") of the uncompressed file',
    ),
    Method(
        "skops",
        ".skops",
        lambda o, p: skops.io.dump(o, p),
        lambda p, trusted=None: skops.io.load(p, trusted=trusted),
        prepare_load=_skops_trusted,
        note="trusted=get_untrusted_types(file=...), computed outside the timing",
    ),
    Method("skvault", ".skv", lambda o, p: skvault.dump(o, p), skvault.load, note="uncompressed"),
    Method(
        "skvault zstd",
        ".zstd.skv",
        lambda o, p: skvault.dump(o, p, compress="zstd"),
        skvault.load,
        note="level 3 (default)",
    ),
    Method(
        "skvault lz4",
        ".lz4.skv",
        lambda o, p: skvault.dump(o, p, compress="lz4"),
        skvault.load,
    ),
    Method(
        "skvault mmap",
        "",
        None,
        lambda p: skvault.load(p, mmap=True),
        same_file_as="skvault",
        note="load(mmap=True) of the uncompressed file (digests not checked)",
    ),
]

BY_NAME = {m.name: m for m in METHODS}
