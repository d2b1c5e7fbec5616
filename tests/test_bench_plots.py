"""bench/plots.py: every results table's chart renders from a JSON of the shape its benchmark
writes, including engines and exporters that were not available, and the committed tables link
their charts.

matplotlib is a benchmark requirement (requirements/bench.txt), not a test one: without it these
tests are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import pytest

import matplotlib  # noqa: F401 - requirements/dev.txt installs it: this test must not skip

BENCH = Path(__file__).resolve().parent.parent / "bench"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_plots():
    spec = importlib.util.spec_from_file_location("bench_plots", BENCH / "plots.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_plots"] = module
    spec.loader.exec_module(module)
    return module


plots = load_plots()
ENV = {"date": "2026-12-05 12:00 UTC", "nproc": 2}
NOT_AVAILABLE = "not available: ValueError: Unable to create node 'TreeEnsembleClassifier' " + "x" * 200


def engine(rows_per_s: float, one_row_us: float | None, base: float = 10_000.0) -> dict:
    return {"batch_rows_per_s": rows_per_s, "batch_ms": 1e7 / rows_per_s, "one_row_us": one_row_us,
            "max_abs_diff": 0.0, "throughput_vs_sklearn": rows_per_s / base}


def native_doc() -> dict:
    return {"threads": 2, "quick": True, "environment": ENV, "models": {
        "forest (50 trees)": {"scikit-learn": engine(10_000, 20_000), "skvault.native": engine(35_000, 90),
                              "onnxruntime": engine(8_000, 80), "treelite (gtil)": engine(1_000, 1_000)},
        "hgb (200 iterations)": {"scikit-learn": engine(10_000, 1_500), "skvault.native": engine(20_000, 7),
                                 "onnxruntime": {"note": NOT_AVAILABLE}, "treelite (gtil)": engine(4_000, 170)},
        "pipeline (scaler + logistic)": {"scikit-learn": engine(10_000, 800), "skvault.native": engine(17_000, 6),
                                         "onnxruntime": engine(18_000, 28),
                                         "treelite (gtil)": {"note": "not available: TreeliteError: Pipeline"}},
    }}


def native_mixed_doc() -> dict:
    rows = {"scikit-learn (DataFrame)": engine(10_000, 3_000),
            "skvault.native (DataFrame)": engine(40_000, 60),
            "skvault.native (pyarrow Table from Parquet)": engine(60_000, 30),
            "onnxruntime (skl2onnx)": {"note": NOT_AVAILABLE},
            "skvault predict (Parquet file, whole process)": engine(5_000, None)}
    return {"threads": 2, "quick": True, "environment": ENV,
            "models": {"onehot + hgb": rows, "onehot + forest": dict(rows)}}


def export_doc() -> dict:
    def ex(s: float, n: int, ms: float, diff: float) -> dict:
        return {"export_s": s, "bytes": n, "max_abs_diff": diff, "labels_differ": 0, "predict_ms": ms}

    return {"threads": 2, "quick": True, "environment": ENV, "models": {
        "forest (50 trees)": {"skvault": ex(0.1, 5_000_000, 140.0, 1e-15),
                              "skvault float32": ex(0.1, 3_000_000, 60.0, 0.0),
                              "skl2onnx": ex(4.0, 8_000_000, 70.0, 1e-6)},
        "hgb (200 iterations)": {"skvault": ex(0.006, 52_000, 14.0, 4e-16),
                                 "skvault float32": {"note": "failed: ValueError: no float32 here"},
                                 "skl2onnx": {"note": "failed: " + NOT_AVAILABLE}},
    }}


def registry_doc() -> dict:
    store = {"register": 0.6, "dump+register": 1.2, "load": 1.4, "second_register_added_bytes": 0,
             "stored_bytes": 16_100_000}
    return {"model": "RandomForestClassifier(n_estimators=50, max_depth=20)", "cpus": 2,
            "file": {"dump": 1.0, "load": 0.5, "size": 16_000_000},
            "folder": store, "s3": dict(store, register=1.1), "mlflow": None,
            "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [1.2, 1.1, 1.0]}


def scan_doc() -> dict:
    def r(verdict_jl: str, s_jl: float, verdict_pk: str, s_pk: float, corpus: float) -> dict:
        return {"forest.joblib verdict": verdict_jl, "forest.joblib s": s_jl,
                "forest.pkl verdict": verdict_pk, "forest.pkl s": s_pk, "corpus s": corpus}

    return {"results": {"skvault": r("safe", 0.07, "safe", 0.06, 0.3),
                        "picklescan": r("error", 0.0006, "unknown", 1.5, 0.31),
                        "fickling": r("unsafe", 0.5, "unsafe", 17.8, 2.5)},
            "verdicts": {"skvault": {"false negatives": 0, "false positives": 0, "agree": 183},
                         "picklescan": {"false negatives": 11, "false positives": 17, "agree": 93},
                         "fickling": {"false negatives": 0, "false positives": 55, "agree": 105}},
            "sizes": {"forest.joblib": 158_988_185, "forest.pkl": 158_948_543}}


def scale_doc() -> dict:
    def dask(rps: float, graph: int, growth: float) -> dict:
        return {"seconds": 200_000 / rps, "graph_bytes": graph, "partitions": 2, "rows_per_s": rps,
                "all_rows_per_s": [rps], "peak_rss_mib": [growth + 160] * 2, "idle_rss_mib": [160.0] * 2,
                "rss_growth_mib": [growth, growth - 3], "loadavg_after": [1.0, 1.0, 1.0]}

    return {"rows": 200_000, "row_group_rows": 100_000, "quick": True, "repeat": 1, "model_file_mib": 15.0,
            "row_group_mib": 15.3, "environment": ENV,
            "engines": {"skvault predict": {"note": "failed (exit 2): no such file", "loadavg_after": [1, 1, 1]},
                        "skvault.dask": dask(40_000, 6_670, 30.0),
                        "dask + joblib (baseline)": dask(17_000, 16_000_000, 120.0),
                        "floor: dask partitions": dask(900_000, 7_459, 14.0)},
            "single_thread": {"native_rows_per_s": 30_000.0, "sklearn_rows_per_s": 14_000.0}}


SAMPLES = {"native": native_doc, "native_mixed": native_mixed_doc, "export": export_doc,
           "registry": registry_doc, "scan": scan_doc, "scale": scale_doc}


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) < 150_000, f"{path.name} is {len(data)} bytes: keep the charts small"


# What each sample's chart must say where a bar is missing: the engine's (or exporter's,
# or store's) reason, or why the scanner is not compared.
NOTES = {"native": "not available: ValueError", "native_mixed": "not available: ValueError",
         "export": "skl2onnx failed: not available", "registry": "not installed",
         "scan": "picklescan: 'error' on a benign model, not compared", "scale": "failed (exit 2)"}


@pytest.fixture
def drawn_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text written on the panels of the charts drawn during the test."""
    texts: list[str] = []
    finish = plots.finish

    def recording(fig, path, title):
        texts.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        finish(fig, path, title)

    monkeypatch.setattr(plots, "finish", recording)
    return texts


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_chart_renders_from_its_json_with_an_engine_not_available(
    tmp_path: Path, stem: str, drawn_texts: list[str]
) -> None:
    (tmp_path / f"{stem}.json").write_text(json.dumps(SAMPLES[stem]()))
    out = plots.render(stem, tmp_path)
    assert out == tmp_path / f"{stem}.png"
    assert_png(out)
    assert any(NOTES[stem] in t for t in drawn_texts), drawn_texts
    assert any(t.endswith("x") and t[0].isdigit() for t in drawn_texts), "no ratio drawn"


def test_every_table_the_scripts_write_has_a_chart_and_a_sample() -> None:
    # foundation and serve are drawn by bench/report.py and bench/serve.py themselves.
    assert set(plots.PLOTS) - {"foundation", "serve"} == set(SAMPLES) == set(NOTES)


def test_native_chart_when_no_engine_but_the_baseline_ran(tmp_path: Path) -> None:
    doc = native_doc()
    for rows in doc["models"].values():
        for name in rows:
            if name != "scikit-learn":
                rows[name] = {"note": NOT_AVAILABLE}
    (tmp_path / "native.json").write_text(json.dumps(doc))
    assert_png(plots.render("native", tmp_path))


def test_a_value_not_available_is_a_note_and_no_bar() -> None:
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    plots.hbars(ax, ["a", "b", "c"], [("engine", plots.BLUE, [2.0, "not available: because", None])], "x")
    bars = [p for p in ax.patches if p.get_visible()]
    notes = [t.get_text() for t in ax.texts]
    plt.close(fig)
    assert len(bars) == 1 and bars[0].get_width() == 2.0
    assert "not available: because" in notes and "2.00x" in notes


def test_main_renders_every_json_in_a_folder_and_refuses_unknown_stems(tmp_path: Path) -> None:
    for stem in ("native", "scan"):
        (tmp_path / f"{stem}.json").write_text(json.dumps(SAMPLES[stem]()))
    assert plots.main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["native.png", "scan.png"]
    with pytest.raises(SystemExit):
        plots.main(["--dir", str(tmp_path), "no-such-table"])


@pytest.mark.parametrize("stem", sorted(plots.PLOTS))
def test_committed_table_links_its_chart(stem: str) -> None:
    results = BENCH / "results"
    if not (results / f"{stem}.json").exists():
        pytest.skip(f"no committed {stem}.json")
    assert f"Chart: [{stem}.png]({stem}.png)" in (results / f"{stem}.md").read_text()
    assert_png(results / f"{stem}.png")



def bench_timing(monkeypatch, tmp_path: Path):
    """bench/timing.py as the scripts import it (bench/ on the path), writing under tmp_path."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delitem(sys.modules, "timing", raising=False)
    import timing

    monkeypatch.setattr(timing, "HERE", tmp_path)
    return timing


def snap(load: float, wall: float, machine: float, own: float) -> dict:
    return {"loadavg": [load] * 3, "cpu": {"wall": wall, "machine": machine, "own": own}}


# Busy or not by what other processes used: the CPU time the machine spent less the run's own,
# over the run's wall time (the load averages count the benchmark's own threads too).
@pytest.mark.parametrize(
    "end, others, busy",
    [(snap(1.9, 110.0, 1020.0, 119.0), "0.10", False), (snap(1.9, 110.0, 1030.0, 119.0), "1.10", True)],
)
def test_reports_open_with_machine_commit_load_and_other_work(tmp_path: Path, monkeypatch, end, others, busy) -> None:
    """issue 24: the results tables keep the load averages. A run that records its start gets,
    after its title, the date, machine, commit, load averages and the other processes' CPU use,
    marked busy over a quarter of the CPUs."""
    timing = bench_timing(monkeypatch, tmp_path)
    import environment

    monkeypatch.setattr(environment, "snapshot", lambda: end)
    start = snap(0.4, 100.0, 1000.0, 100.0)
    md = timing.write_results("native", dict(native_doc(), run_start=start), ["# Native", "", "| t |"], quick=True)
    lines = md.read_text().splitlines()
    assert lines[:2] == ["# Native", ""]
    assert lines[2].startswith("- Date: ") and lines[3].startswith("- Machine: ")
    assert lines[4].startswith("- skvault at commit ")
    assert lines[5].startswith("- Load average (1/5/15 min) at the start [0.4, 0.4, 0.4], at the end [1.9, 1.9, 1.9]")
    assert lines[6].startswith(f"- Other work during the run: {others} of the ")
    assert ("other work running" in lines[6]) == busy
    assert lines[7:] == ["", "| t |"]
    assert json.loads(md.with_suffix(".json").read_text())["run_end"] == end


def test_a_report_written_again_from_its_json_keeps_the_runs_facts(tmp_path: Path, monkeypatch) -> None:
    """`bench/native.py --render`: the results read back from a run's JSON are written as that
    run's report (its date, commit, load averages and other work), not as of now."""
    timing = bench_timing(monkeypatch, tmp_path)
    import environment

    end = snap(1.9, 110.0, 1010.0, 101.0)
    monkeypatch.setattr(environment, "snapshot", lambda: end)
    start = snap(0.4, 100.0, 1000.0, 100.0)
    first = timing.write_results("native", dict(native_doc(), run_start=start), ["# Native", "", "| t |"], quick=True)
    written = first.read_text()
    saved = json.loads(first.with_suffix(".json").read_text())

    later = snap(0.1, 500.0, 5000.0, 400.0)
    monkeypatch.setattr(environment, "snapshot", lambda: later)
    monkeypatch.setattr(environment, "describe", lambda _: {"commit": "other", "cpu": "other"})
    again = timing.write_results("native", saved, ["# Native", "", "| t |"], quick=True)
    assert again.read_text() == written
    assert json.loads(again.with_suffix(".json").read_text())["run_end"] == end


def test_other_work_is_measured_from_proc_stat() -> None:
    """Two real snapshots a moment apart: a number of CPUs between 0 and the machine's."""
    sys.path.insert(0, str(BENCH))
    try:
        import environment
    finally:
        sys.path.remove(str(BENCH))
    a = environment.snapshot()
    sum(i * i for i in range(300_000))  # this process's own work is not other work
    b = environment.snapshot()
    others = environment.other_cpus(a, b)
    assert others is not None and 0.0 <= others <= (os.cpu_count() or 1)


def test_reports_without_a_start_load_average_are_unchanged(tmp_path: Path, monkeypatch) -> None:
    timing = bench_timing(monkeypatch, tmp_path)
    md = timing.write_results("native", native_doc(), ["# Native inference", "", "| table |"], quick=True)
    assert md.read_text().splitlines() == ["# Native inference", "", "| table |"]


def test_commit_is_dirty_for_changed_code_not_for_fresh_results(tmp_path: Path) -> None:
    """A report names the commit it measured; results the same `make bench` run has just
    rewritten do not make it '+dirty', a changed source file does."""
    import subprocess

    sys.path.insert(0, str(BENCH))
    try:
        import environment
    finally:
        sys.path.remove(str(BENCH))
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "native.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "bench" / "results" / "native.md").write_text("new\n")
    assert environment._git(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert environment._git(tmp_path) == head + "+dirty"


def import_report(monkeypatch):
    """bench/report.py, with bench/ on the path. bench/methods.py, which it imports, imports
    every library the benchmark compares (skops among them), which `make test` does not
    install; the headers checked here do not need them (no method rows are drawn)."""
    monkeypatch.syspath_prepend(str(BENCH))
    methods = types.ModuleType("methods")
    methods.METHODS = []
    methods.REFERENCE = "joblib"
    monkeypatch.setitem(sys.modules, "methods", methods)
    monkeypatch.delitem(sys.modules, "report", raising=False)
    import report

    return report


def test_the_foundation_report_measures_other_work_not_its_own_threads(monkeypatch) -> None:
    """bench/run.py's report says how busy the machine was from /proc/stat (other processes'
    CPU time), not from load averages, which count the benchmark's own threads: its committed
    JSON, with a quiet and a busy run's snapshots, and a run from before the snapshots."""
    report = import_report(monkeypatch)

    doc = json.loads((BENCH / "results" / "foundation.json").read_text())
    env = doc["environment"]
    env["loadavg_start"], env["loadavg_end"] = [1.9, 1.9, 1.9], [1.8, 1.8, 1.8]
    env["run_start"] = snap(1.9, 100.0, 1000.0, 100.0)

    def other_line() -> str:
        return next(line for line in report.markdown(doc).splitlines() if line.startswith("- Other work"))

    env["run_end"] = snap(1.8, 300.0, 1360.0, 460.0)  # 360 CPU s, all the run's own
    assert other_line().startswith("- Other work during the run: 0.00 of the ")
    assert "other work running" not in other_line()
    env["run_end"] = snap(1.8, 300.0, 1560.0, 460.0)  # 200 s more over 200 s: one CPU
    assert "1.00 of the" in other_line() and "other work running" in other_line()
    del env["run_start"], env["run_end"]
    assert "not measured" in other_line()
    assert "counts the benchmark's own threads" in report.markdown(doc)


def test_the_serve_report_opens_like_the_others(monkeypatch) -> None:
    """bench/serve.py's report opens with the same lines as the other reports (environment.
    report_lines): other work from /proc/stat, not a verdict on load averages that count the
    server's and oha's own threads. Its committed JSON (from before the snapshots), then with
    a quiet and a busy run's."""
    import_report(monkeypatch)
    monkeypatch.delitem(sys.modules, "serve", raising=False)
    import serve

    doc = json.loads((BENCH / "results" / "serve.json").read_text())
    doc.pop("start", None), doc.pop("end", None)

    def head() -> list[str]:
        lines = serve.render(doc).splitlines()
        return lines[: lines.index("## Targets (issue 25)")]

    assert any(line.startswith("- Load average") and "own threads" in line for line in head())
    assert "- Other work during the run: not measured" in "\n".join(head())
    assert not any("other builds shared" in line for line in head())
    assert any(line.startswith("- Whole run (fits included): ") and "MLflow" in line for line in head())
    doc["start"], doc["end"] = snap(1.9, 100.0, 1000.0, 100.0), snap(1.9, 200.0, 1190.0, 280.0)
    others = next(line for line in head() if line.startswith("- Other work"))
    assert "0.10 of the" in others and "other work running" not in others
    doc["end"] = snap(1.9, 200.0, 1290.0, 280.0)
    others = next(line for line in head() if line.startswith("- Other work"))
    assert "1.10 of the" in others and "other work running" in others
