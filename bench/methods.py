"""The persistence methods compared by `bench/run.py`: one save and one load function each.

A method with `same_file_as` set does not save a file of its own: it loads the file that the
named method saved (joblib with mmap_mode="r", skvault with mmap=True).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import skops.io
import zstandard

import skvault


@dataclass
class Method:
    name: str
    suffix: str
    save: Callable[[Any, Path], None] | None
    # None for a floor that only saves.
    load: Callable[[Path], Any] | None
    same_file_as: str | None = None
    # Prepared once per file, outside the timings (e.g. the names a user reviews and trusts).
    prepare_load: Callable[[Path], dict[str, Any]] | None = None
    # Prepared once per model, outside the timings: keyword arguments of `save`.
    prepare_save: Callable[[Any], dict[str, Any]] | None = None
    # A floor is not a competitor: a lower bound on what skvault's save or load can cost.
    floor: bool = False
    # Written once, outside the timings: only its size is a result (e.g. the record alone).
    size_only: bool = False
    # Saved over its own file of the run before (written once outside the timings before the
    # first run), as a script or notebook saving its model again does; other saves are timed
    # to a path where no file is.
    replaces: bool = False
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


def _skvault_bytes(obj: Any) -> dict[str, Any]:
    return {"data": skvault.dumps(obj)}


def _write_fsync(obj: Any, path: Path, data: bytes = b"") -> None:
    """What any durable atomic save must do once the bytes exist, as skvault's dump does it:
    a temporary file in the folder, written, fdatasync, renamed over `path`, folder fsync."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _record_bytes(obj: Any) -> dict[str, Any]:
    """The record skvault's zstd file carries for `obj` (`metadata`: environment, class,
    parameters of every step), as compact JSON compressed with zstd level 3, the level the
    file's manifest is compressed with."""
    record = skvault.inspect(skvault.dumps(obj, compress="zstd"))["metadata"]
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return {"data": zstandard.ZstdCompressor(level=3).compress(text)}


def _write_bytes(obj: Any, path: Path, data: bytes = b"") -> None:
    path.write_bytes(data)


def _out_of_band(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        obj = pickle.load(f)
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return {"data": data, "buffers": buffers}


def _rebuild(path: Path, data: bytes = b"", buffers: Any = ()) -> Any:
    return pickle.loads(data, buffers=buffers)


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
        "skvault non-durable",
        ".nd.skv",
        lambda o, p: skvault.dump(o, p, durable=False),
        skvault.load,
        note="dump(durable=False): atomic rename, no fsync",
    ),
    Method(
        "pickle over its file",
        ".over.pkl",
        _pickle_save,
        None,
        replaces=True,
        note='protocol 5 into open(path, "wb") over the file of the run before (truncated)',
    ),
    Method(
        "skvault non-durable over its file",
        ".over.nd.skv",
        lambda o, p: skvault.dump(o, p, durable=False),
        None,
        replaces=True,
        note="dump(durable=False) over the file of the run before (renamed over)",
    ),
    Method(
        "skvault zstd",
        ".zstd.skv",
        lambda o, p: skvault.dump(o, p, compress="zstd"),
        skvault.load,
        note="level 3 (default)",
    ),
    Method(
        "skvault zstd archive",
        ".archive.skv",
        lambda o, p: skvault.dump(o, p, compress="zstd", level="archive"),
        skvault.load,
        note='level="archive" (zstd 10)',
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
    Method(
        "floor: fsync",
        ".floor.skv",
        _write_fsync,
        None,
        prepare_save=_skvault_bytes,
        floor=True,
        note="save floor: the bytes of skvault's uncompressed file (made beforehand) written to a "
        "temporary file, fdatasync, rename, folder fsync; no walking, hashing or encoding",
    ),
    Method(
        "floor: record",
        ".record.zst",
        _write_bytes,
        None,
        prepare_save=_record_bytes,
        floor=True,
        size_only=True,
        note="size floor: the record alone (the metadata every skvault file carries: "
        "environment, class, parameters of every step), compact JSON compressed with zstd "
        "level 3 as the manifest is; no skvault file can be smaller",
    ),
    Method(
        "floor: rebuild",
        "",
        None,
        _rebuild,
        same_file_as="pickle",
        prepare_load=_out_of_band,
        floor=True,
        note="load floor: pickle.loads of in-memory bytes with in-memory out-of-band buffers "
        "(no file, no digest): only the classes' own construction and __setstate__ (e.g. "
        "Tree copying its node arrays)",
    ),
]

BY_NAME = {m.name: m for m in METHODS}
