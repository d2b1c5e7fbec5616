"""What the benchmark ran on: machine, Python and package versions, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ["skvault", "numpy", "scipy", "scikit-learn", "joblib", "skops", "matplotlib"]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype", str(path)], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[-1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews the timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git(root: Path) -> str:
    """The commit the benchmarked tree is at (read-only git calls), '+dirty' with local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def describe(workdir: Path) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": _cpu(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "filesystem": _filesystem(workdir),
        "versions": versions,
        "commit": _git(Path(__file__).resolve().parent.parent),
    }


def report_lines(env: dict[str, Any], start: list[float] | None, end: list[float] | None) -> list[str]:
    """The lines a report opens with: when and where it ran, at which commit, and how busy the
    machine was at its start and end (other work skews the timings, less so the ratios)."""
    # Busy before the run began: the load at its end counts the benchmark's own threads.
    busy = (start or [0])[0] > env["nproc"] / 2
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v != "not installed")
    return [
        f"- Date: {env['date']}",
        f"- Machine: {env['nproc']} CPUs ({env['cpu']}), {env['memory_gib']} GiB RAM, {env['platform']}",
        f"- skvault at commit {env['commit']}; Python {env['python']}; {versions}",
        f"- Load average (1/5/15 min) at the start {start}, at the end {end}"
        + (" — **the machine had other work running** when the run began (more than half its CPUs "
           "busy over the last minute): absolute times are inflated and noisier." if busy else "."),
    ]
