"""Timing and result files shared by the benchmark scripts."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def durations(fn: Callable[[], object], reps: int) -> list[float]:
    """Seconds taken by each of `reps` calls of `fn`."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def best_time(fn: Callable[[], object], reps: int) -> float:
    """The fastest of `reps` calls: throughput, least disturbed by other work."""
    return min(durations(fn, reps))


def median_time(fn: Callable[[], object], reps: int) -> float:
    """The median of `reps` calls: a typical latency."""
    return statistics.median(durations(fn, reps))


def write_results(stem: str, results: dict[str, Any], markdown: list[str], quick: bool) -> Path:
    """Writes `<stem>.json` (with the environment), `<stem>.md` and the chart `<stem>.png`
    (bench/plots.py) under bench/results, or bench/work/quick for quick runs; returns the
    markdown file. `results` read back from such a JSON keep their environment and end of
    run: the report is written again as that run's."""
    import environment
    import plots

    # A report written again from a finished run's JSON (`--render`: it has the run's end)
    # keeps that run's facts.
    if "run_end" not in results:
        results["environment"] = environment.describe(HERE)
        if "run_start" in results:
            results["run_end"] = environment.snapshot()
    if "run_start" in results:
        # After the title: when, where, at which commit, and how busy the machine was.
        head = environment.report_lines(results["environment"], results["run_start"], results["run_end"])
        markdown = markdown[:1] + [""] + head + markdown[1:]
    out_dir = HERE / ("work/quick" if quick else "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = out_dir / f"{stem}.md"
    md.write_text("\n".join(markdown))
    print(f"wrote {md}")
    plots.render(stem, out_dir)
    return md
