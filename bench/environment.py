"""What the benchmark ran on: machine, Python and package versions, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
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
    """The commit the benchmarked tree is at (read-only git calls), '+dirty' with local changes
    (results that earlier benchmarks of the same run just wrote do not count)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":(exclude)bench/results"],
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



def _cpu_seconds() -> dict[str, float] | None:
    """Seconds of CPU time used so far by the whole machine (every CPU, from /proc/stat,
    time stolen by the hypervisor included) and by this process and its waited-for children,
    with the wall clock."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    own = os.times()
    return {
        "wall": time.monotonic(),
        "machine": (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
        "own": own.user + own.system + own.children_user + own.children_system,
    }


def snapshot() -> dict[str, Any]:
    """What a report compares between a run's start and end: load averages and CPU time."""
    return {"loadavg": loadavg(), "cpu": _cpu_seconds()}


def other_cpus(start: dict[str, Any], end: dict[str, Any]) -> float | None:
    """CPUs that other processes kept busy on average between two snapshots: the machine's
    CPU time less this run's own, over the wall time. Unlike the load average, this does not
    count the benchmark's own threads."""
    a, b = start.get("cpu"), end.get("cpu")
    if not a or not b or b["wall"] <= a["wall"]:
        return None
    return max(0.0, ((b["machine"] - a["machine"]) - (b["own"] - a["own"])) / (b["wall"] - a["wall"]))


def load_line(start: dict[str, Any], end: dict[str, Any]) -> str:
    """The load averages at a run's start and end (snapshots), said for what they are."""
    return (
        f"- Load average (1/5/15 min) at the start {start.get('loadavg')}, at the end {end.get('loadavg')}"
        " (it counts the benchmark's own threads too)."
    )


def other_work_line(nproc: int, start: dict[str, Any] | None, end: dict[str, Any] | None) -> str:
    """How much other work the machine did during a run (it skews the timings, less so the
    ratios). Busy: other processes kept over a quarter of the CPUs busy."""
    others = other_cpus(start, end) if start and end else None
    if others is None:
        return "- Other work during the run: not measured (no /proc/stat, or a run from before it was)."
    busy = others > nproc / 4
    return (
        f"- Other work during the run: {others:.2f} of the {nproc} CPUs busy on average "
        "(the machine's CPU time, from /proc/stat, less this run's own)"
        + (" — **the machine had other work running**: absolute times are inflated and noisier."
           if busy else ".")
    )


def report_lines(env: dict[str, Any], start: dict[str, Any], end: dict[str, Any]) -> list[str]:
    """The lines a report opens with: when and where it ran, at which commit, the load
    averages, and how much other work the machine did meanwhile."""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v != "not installed")
    return [
        f"- Date: {env['date']}",
        f"- Machine: {env['nproc']} CPUs ({env['cpu']}), {env['memory_gib']} GiB RAM, {env['platform']}",
        f"- skvault at commit {env['commit']}; Python {env['python']}; {versions}",
        load_line(start, end),
        other_work_line(env["nproc"], start, end),
    ]
