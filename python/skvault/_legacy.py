"""Old files: ``scan`` pickle / joblib / ``.skv`` files without running them, and ``convert``
pickle or joblib models into ``.skv`` files. Both run in Rust (``skvault-pickle``); nothing is
unpickled or imported."""

from __future__ import annotations

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
    def _from_native(
        cls, report: _native.ScanReport, path: Path | None = None, size: int = 0
    ) -> ScanReport:
        return cls(
            path=path or Path(),
            size=size,
            verdict=report.verdict,
            format=report.format,
            protocol=report.protocol,
            pickles=report.pickles,
            joblib_arrays=report.joblib_arrays,
            globals=tuple(
                GlobalRef(g.module, g.name, g.kind, g.count, g.first_offset) for g in report.globals
            ),
            issues=tuple(report.issues),
            error=report.error,
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
    scans = _native.scan_paths([p], trusted=_api._names(trusted))
    reports = [ScanReport._from_native(s.report, s.path, s.size) for s in scans]
    if p.is_dir():
        return reports
    return reports[0]


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    trusted: Iterable[str] | str | None = None,
    compress: Literal["zstd", "lz4"] | None = None,
    level: int | Literal["archive"] | None = None,
) -> Conversion:
    """Converts a pickle or joblib file into the ``.skv`` file ``dst``, without importing anything.

    The file is scanned first with the same reader. Raises :class:`UnsafeFileError` (with the
    scan report) for dangerous or unreadable files, :class:`UntrustedTypesError` listing the
    names to review (pass them in ``trusted``), :class:`MigrationError` when state saved by an
    older scikit-learn cannot be brought up to date. Writes are atomic: on any error nothing is
    left at ``dst``. ``level="archive"`` is zstd's archival level, as in :func:`skvault.dump`.
    """
    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    compress, level = _api._archive(compress, level)
    names = _api._names(trusted)
    done = _native.convert(src_p, dst_p, trusted=names, compress=compress, level=level)
    return Conversion(
        path=dst_p,
        report=ScanReport._from_native(done.report, src_p),
        sklearn_versions=tuple(done.sklearn_versions),
        migrations=tuple(m.to_dict() for m in done.migrations),
        arrays=done.arrays,
        bytes_written=done.bytes_written,
    )
