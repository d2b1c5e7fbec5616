"""Old files: ``scan`` pickle / joblib / ``.skv`` files without running them, and ``convert``
pickle or joblib models into ``.skv`` files. Both run in Rust (``skvault-pickle``); nothing is
unpickled or imported."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from skvault import _api, _native

Verdict = Literal["safe", "unknown", "unsafe"]
Kind = Literal["safe", "unknown", "dangerous"]


@dataclass(frozen=True)
class GlobalRef:
    """A global (class or function) that a file names, and how the scanner rates it."""

    module: str
    name: str
    kind: Kind
    count: int
    offset: int

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ScanReport:
    """What :func:`scan` found in one file.

    ``verdict`` is ``"safe"`` (every global trusted), ``"unknown"`` (untrusted names, none
    known to be dangerous) or ``"unsafe"`` (a dangerous global, a suspicious construct, or a
    stream that cannot be read to its end).
    """

    path: Path
    size: int
    verdict: Verdict
    format: str
    protocol: int | None
    pickles: int
    joblib_arrays: int
    globals: tuple[GlobalRef, ...]
    issues: tuple[str, ...]
    error: str | None

    @property
    def is_safe(self) -> bool:
        return self.verdict == "safe"

    @property
    def dangerous(self) -> list[str]:
        return [g.qualified for g in self.globals if g.kind == "dangerous"]

    @property
    def unknown(self) -> list[str]:
        return [g.qualified for g in self.globals if g.kind == "unknown"]

    @classmethod
    def _from_json(cls, doc: dict[str, Any], path: Path | None = None) -> ScanReport:
        return cls(
            path=Path(doc["path"]) if "path" in doc else (path or Path()),
            size=int(doc.get("size", 0)),
            verdict=doc["verdict"],
            format=doc["format"],
            protocol=doc["protocol"],
            pickles=doc["pickles"],
            joblib_arrays=doc["joblib_arrays"],
            globals=tuple(
                GlobalRef(g["module"], g["name"], g["kind"], g["count"], g["offset"]) for g in doc["globals"]
            ),
            issues=tuple(doc["issues"]),
            error=doc["error"],
        )


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` did."""

    path: Path
    report: ScanReport
    sklearn_versions: tuple[str, ...]
    migrations: tuple[dict[str, Any], ...]
    arrays: int
    bytes_written: int


def scan(path: str | os.PathLike[str], *, trusted: Iterable[str] | str | None = None) -> ScanReport | list[ScanReport]:
    """Rates a pickle, joblib or ``.skv`` file without running it.

    A folder is scanned recursively and gives a list of reports (files that are plainly not
    pickles are left out). ``trusted`` adds qualified names to rate safe (dangerous names
    cannot be trusted). Raises ``OSError`` when a file cannot be read.
    """
    p = Path(os.fspath(path))
    docs = json.loads(_native.scan_paths([p], trusted=_api._names(trusted)))
    reports = [ScanReport._from_json(d) for d in docs]
    if p.is_dir():
        return reports
    return reports[0]


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    trusted: Iterable[str] | str | None = None,
    compress: Literal["zstd", "lz4"] | None = None,
    level: int | None = None,
) -> Conversion:
    """Converts a pickle or joblib file into the ``.skv`` file ``dst``, without importing anything.

    The file is scanned first with the same reader. Raises :class:`UnsafeFileError` (with the
    scan report) for dangerous or unreadable files, :class:`UntrustedTypesError` listing the
    names to review (pass them in ``trusted``), :class:`MigrationError` when state saved by an
    older scikit-learn cannot be brought up to date. Writes are atomic: on any error nothing is
    left at ``dst``.
    """
    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    doc = json.loads(
        _native.convert(src_p, dst_p, trusted=_api._names(trusted), compress=compress, level=level)
    )
    return Conversion(
        path=dst_p,
        report=ScanReport._from_json(doc["report"], src_p),
        sklearn_versions=tuple(doc["sklearn_versions"]),
        migrations=tuple(doc["migrations"]),
        arrays=doc["arrays"],
        bytes_written=doc["bytes_written"],
    )
