"""Charts of the benchmark tables: `<stem>.png` beside each `<stem>.md`, drawn from `<stem>.json`.

    .venv/bin/python bench/plots.py                     # every stem with a JSON in bench/results
    .venv/bin/python bench/plots.py native scan         # some of them
    .venv/bin/python bench/plots.py --dir bench/work/quick

Each chart draws the point of its table as ratios against the baseline that table names
(scikit-learn, skl2onnx, the file alone, skvault, Dask + joblib), on a log scale, with the
table's targets and floors as lines. An engine the table marks as not available (or failed)
gets a note where its bar would be. The benchmark scripts call `render` after writing their
JSON (`timing.write_results`, bench/registry.py, bench/scan.py), so `make bench` redraws them.
foundation.png and serve.png are drawn by bench/report.py and bench/serve.py; `render`
delegates to them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

DPI = 100
BLUE, ORANGE, GREEN, RED, GREY = "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8c8c8c"
# A bar value: a number to draw, or the reason there is none (drawn as a note).
Value = float | str | None


def fmt_ratio(x: float) -> str:
    """A ratio as the tables print it, with thousands separators for the wide log axes here.
    (Not bench/report.py's: importing that imports every benchmarked tool, skops included,
    which `make test` does not install.)"""
    if x >= 10:
        return f"{x:,.0f}x"
    if x >= 0.1:
        return f"{x:.2f}x"
    return f"{x:.2g}x"


def short(note: str, width: int = 48) -> str:
    """A table's 'not available: Error: long message' cut to fit beside a bar."""
    return textwrap.shorten(note.replace("\n", " "), width=width, placeholder="...")


def wrap(label: str, width: int = 24) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def _pyplot():  # noqa: ANN202 - matplotlib.pyplot, imported after choosing the Agg backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drawable(v: Value) -> bool:
    """A ratio a log axis can show."""
    return isinstance(v, (int, float)) and v > 0 and math.isfinite(v)


def hbars(ax, labels: list[str], series: list[tuple[str, str, list[Value]]], xlabel: str,
          extra: tuple[float, ...] = (1.0,), wrap_at: int = 24) -> None:
    """Grouped horizontal bars on a log axis: one group per label, one bar per series
    (name, colour, values). A str value is written where its bar would be; None leaves a gap.
    `extra` are x values the axis must show (the reference line, targets)."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import NullFormatter

    n = len(series)
    h = 0.8 / n
    finite = [v for _, _, vals in series for v in vals if drawable(v)]
    for i, (name, color, vals) in enumerate(series):
        ys = [j + (i - (n - 1) / 2) * h for j in range(len(labels))]
        for y, v in zip(ys, vals):
            if isinstance(v, str):
                ax.text(0.01, y, v, transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                        color="#555555", style="italic")
            elif drawable(v):
                ax.barh(y, v, h, color=color)
                ax.text(v * 1.08, y, fmt_ratio(v), va="center", fontsize=7,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3, "alpha": 0.8})
        # One legend entry per series, even when none of its bars could be drawn.
        ax.add_artist(Rectangle((0, 0), 0, 0, color=color, label=name, visible=False))
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    # At least 0.25 to 20, so that a narrow range still shows a decade tick either side of 1
    # (and no crowded minor tick labels), with room on the right for the bar labels.
    span = finite + list(extra)
    ax.set_xlim(min(min(span) / 2.5, 0.25), max(max(span) * 6, 20))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(labels)), [wrap(x, wrap_at) for x in labels], fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", which="both", alpha=0.25)


def target_line(ax, x: float, label: str, color: str = RED, rows: tuple[float, float] | None = None) -> None:
    """A dashed line at a target; over the rows (y from, y to) it applies to, else the whole axis."""
    if rows is None:
        ax.axvline(x, color=color, ls="--", lw=1.1, label=label)
    else:
        ax.vlines(x, rows[0], rows[1], color=color, ls="--", lw=1.1, label=label)


def finish(fig, path: Path, title: str) -> None:
    """Title, one legend under the panels (no bar hidden behind it), and the file."""
    from matplotlib.patches import Rectangle

    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if isinstance(handle, Rectangle):
                handle = Rectangle((0, 0), 1, 1, color=handle.get_facecolor())
            handles.setdefault(label, handle)
    fig.suptitle(title, fontsize=10)
    rows = math.ceil(len(handles) / 3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(3, len(handles)),
                   fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.01 if handles else 0, 1, 1))
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)


def run_date(doc: dict[str, Any]) -> str:
    env = doc.get("environment") or {}
    return f" ({env['date']})" if isinstance(env, dict) and env.get("date") else ""


# ------------------------------------------------------------------------- one chart per table


def _engines(doc: dict[str, Any], path: Path, title: str, base: str, batch_target: float | None,
             one_row_target_us: float | None) -> None:
    """native and native_mixed: per model, each engine's batch throughput and one-row speed as
    ratios to scikit-learn's (the table's baseline)."""
    plt = _pyplot()
    models = doc["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(5.0 * len(models), 4.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], models.items()):
        ref = rows.get(base, {})
        engines = list(rows)
        batch: list[Value] = []
        one: list[Value] = []
        for e in engines:
            r = rows[e]
            if "note" in r:
                batch.append(short(r["note"]))
                one.append(None)
                continue
            batch.append(r.get("throughput_vs_sklearn"))
            if r.get("one_row_us") and ref.get("one_row_us"):
                one.append(ref["one_row_us"] / r["one_row_us"])
            else:
                one.append(None)
        extra = [1.0]
        if batch_target:
            extra.append(batch_target)
        if one_row_target_us and ref.get("one_row_us"):
            extra.append(ref["one_row_us"] / one_row_target_us)
        hbars(ax, engines, [("10,000 rows: throughput / scikit-learn's", BLUE, batch),
                            ("one row: scikit-learn's latency / engine's", ORANGE, one)],
              "ratio to scikit-learn (log; > 1 is faster)", tuple(extra))
        if batch_target:
            target_line(ax, batch_target, f"target, 10,000 rows: {batch_target:g}x", BLUE)
        if one_row_target_us and ref.get("one_row_us"):
            target_line(ax, ref["one_row_us"] / one_row_target_us, f"target, one row: {one_row_target_us:g} µs", ORANGE)
        ax.set_title(name, fontsize=9)
    finish(fig, path, title + run_date(doc))


def native(doc: dict[str, Any], path: Path) -> None:
    _engines(doc, path, f"predict_proba against scikit-learn, {doc.get('threads', '?')} threads each",
             "scikit-learn", None, None)


def native_mixed(doc: dict[str, Any], path: Path) -> None:
    # bench/native_mixed.py's table states issue 19's targets: 3x at 10,000 rows, under 50 µs for one row.
    _engines(doc, path, f"mixed-type DataFrame pipelines against scikit-learn, {doc.get('threads', '?')} threads each",
             "scikit-learn (DataFrame)", 3.0, 50.0)


def export(doc: dict[str, Any], path: Path) -> None:
    """Each skvault exporter against skl2onnx, per model: skl2onnx's number / skvault's for
    export time, file size and onnxruntime's predict_proba time; the differences from
    scikit-learn (ratios of up to 1e9 that would squash the rest) written beside them."""
    plt = _pyplot()
    labels: list[str] = []
    cells: list[dict[str, Value]] = []  # one row of the chart: exporter -> value
    exporters: list[str] = []
    for name, rows in doc["models"].items():
        base = rows.get("skl2onnx", {"note": "not measured"})
        ours = [e for e in rows if e != "skl2onnx"]
        exporters += [e for e in ours if e not in exporters]
        if "note" in base:
            labels.append(f"{name}")
            cells.append({ours[0]: f"skl2onnx {short(base['note'], 60)}: no ratio"} if ours else {})
            continue
        for key, what in [("export_s", "export time"), ("bytes", "file size"), ("predict_ms", "predict_proba")]:
            labels.append(f"{name}: {what}")
            cells.append({e: short(rows[e]["note"]) if "note" in rows[e] else base[key] / rows[e][key] for e in ours})
        labels.append(f"{name}: max |diff| from scikit-learn")
        cells.append({e: None if "note" in rows[e] else f"{e} {rows[e]['max_abs_diff']:.2g}, skl2onnx "
                      f"{base['max_abs_diff']:.2g}" for e in ours})
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(labels) * max(1, len(exporters)) ** 0.5 + 1.6))
    series = [(e, c, [row.get(e) for row in cells]) for e, c in zip(exporters, [BLUE, GREEN, ORANGE, GREY])]
    hbars(ax, labels, series, "skl2onnx's / skvault's (log; > 1: skvault faster or smaller)", wrap_at=36)
    if any(e.endswith("float32") for e in exporters):
        ax.plot([], [], color="black", lw=0.8,
                label="float32 target (issue 24): >= 1 on predict_proba, max |diff| no larger")
    finish(fig, path, "ONNX export: skvault against skl2onnx" + run_date(doc))


def registry(doc: dict[str, Any], path: Path) -> None:
    """Each store against the file alone (skvault.dump / skvault.load / the file's size)."""
    plt = _pyplot()
    f = doc["file"]
    stores = [("folder", "skvault, folder", BLUE), ("s3", "skvault, S3 (loopback)", GREEN)]
    m = doc.get("mlflow")
    label = f"MLflow {m['version']}, file store" if m else "MLflow"
    stores.append(("mlflow", label, ORANGE))
    times = [("register", "register (from the file) / dump"), ("dump+register", "dump + register / dump"),
             ("load", "load / load of the file")]
    sizes = [("stored_bytes", "stored bytes / file size"),
             ("second_register_added_bytes", "2nd register: new bytes / file size")]
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(10.5, 3.9))

    def values(key: str, ref: float, store: str) -> list[Value]:
        x = doc.get(store)
        if not x:
            return ["not installed" if store == "mlflow" else "not measured"]
        if key not in x:
            return ["n/a"]
        if x[key] == 0:
            return [f"{label_of(store)}: 0"]
        return [x[key] / ref]

    def label_of(store: str) -> str:
        return next(lbl for k, lbl, _ in stores if k == store)

    time_series = [(lbl, c, [values(k, f["dump" if k != "load" else "load"], s)[0] for k, _ in times])
                   for s, lbl, c in stores]
    hbars(ax_t, [lbl for _, lbl in times], time_series, "ratio to the file alone (log; < 1 is faster)")
    ax_t.set_title("time", fontsize=9)
    size_series = [(lbl, c, [values(k, f["size"], s)[0] for k, _ in sizes]) for s, lbl, c in stores]
    hbars(ax_s, [lbl for _, lbl in sizes], size_series, "ratio to the .skv file's size (log)")
    ax_s.set_title("bytes (target: a second register adds 0)", fontsize=9)
    model = doc.get("model", "")
    finish(fig, path, f"Registry: each store against the file alone, {model}" + run_date(doc))


def scan(doc: dict[str, Any], path: Path) -> None:
    """Each other scanner's time / skvault's per workload, and the verdicts on the corpus."""
    plt = _pyplot()
    results, verdicts, sizes = doc["results"], doc["verdicts"], doc["sizes"]
    workloads = [*sizes, "corpus"]
    others = [n for n in results if n != "skvault"]
    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(11, 3.9), gridspec_kw={"width_ratios": [3, 2]})
    series = []
    for n, color in zip(others, [ORANGE, GREEN, GREY, BLUE]):
        vals: list[Value] = []
        for w in workloads:
            verdict = results[n].get(f"{w} verdict")
            ratio = results[n][f"{w} s"] / results["skvault"][f"{w} s"]
            # A scanner that gives up (error) or calls the benign model malicious is not compared
            # (the table's Target section compares the complete ones only): its time is no speed.
            if verdict is not None and verdict not in ("safe", "unknown"):
                vals.append(f"{n}: '{verdict}' on a benign model, not compared ({fmt_ratio(ratio)})")
            else:
                vals.append(ratio)
        series.append((n, color, vals))
    hbars(ax_t, workloads, series, "other scanner's time / skvault's (log; > 1: skvault faster)", (1.0, 10.0))
    if "forest.pkl" in workloads:
        j = workloads.index("forest.pkl")
        target_line(ax_t, 10.0, "target on forest.pkl: 10x", RED, (j - 0.45, j + 0.45))
    ax_t.set_title("speed, skvault = 1", fontsize=9)
    names = list(verdicts)
    kinds = [("false negatives", RED), ("false positives", "#8172b3")]
    h = 0.38
    for i, (k, color) in enumerate(kinds):
        ys = [j + (i - 0.5) * h for j in range(len(names))]
        vals = [verdicts[n][k] for n in names]
        ax_v.barh(ys, vals, h, color=color, label=k)
        for y, v in zip(ys, vals):
            ax_v.text(v + 0.5, y, str(v), va="center", fontsize=7)
    ax_v.set_yticks(range(len(names)), names, fontsize=8)
    ax_v.set_ylim(len(names) - 0.5, -0.5)
    ax_v.set_xlim(0, max([1] + [verdicts[n][k] for n in names for k, _ in kinds]) * 1.25)
    ax_v.set_xlabel("files of the test corpus (target: 0 false negatives)", fontsize=8)
    ax_v.tick_params(axis="x", labelsize=8)
    ax_v.set_title("wrong verdicts on the corpus", fontsize=9)
    finish(fig, path, "skvault scan against picklescan and fickling" + run_date(doc))


def scale(doc: dict[str, Any], path: Path) -> None:
    """rows/s against Dask + joblib, and memory and task graph against issue 22's bounds."""
    plt = _pyplot()
    eng = doc["engines"]
    base_name = "dask + joblib (baseline)"
    base = eng.get(base_name, {}).get("rows_per_s")
    names = list(eng)
    fig, (ax_r, ax_m) = plt.subplots(1, 2, figsize=(11, 3.9))
    speed: list[Value] = []
    for n in names:
        r = eng[n]
        if "note" in r:
            speed.append(short(r["note"]))
        elif not base:
            speed.append("baseline failed: no ratio")
        else:
            speed.append(r["rows_per_s"] / base)
    hbars(ax_r, names, [("rows/s / baseline's (fastest runs)", BLUE, speed)],
          "rows/s against Dask + joblib (log; > 1 is faster)", (1.0, 3.0))
    if "skvault.dask" in names:
        j = names.index("skvault.dask")
        target_line(ax_r, 3.0, "target for skvault.dask: 3x", RED, (j - 0.45, j + 0.45))
    one = doc.get("single_thread")
    if one:
        target_line(ax_r, one["native_rows_per_s"] / one["sklearn_rows_per_s"],
                    "native / scikit-learn, one thread, no Dask", GREY)
    ax_r.set_title(f"speed, {doc['rows']:,} rows", fontsize=9)
    bound = doc["model_file_mib"] + doc["row_group_mib"]
    rss: list[Value] = []
    graph: list[Value] = []
    for n in names:
        r = eng[n]
        growth = r.get("rss_growth_mib")
        if "note" in r:
            rss.append("no run (see its speed)")
        elif not growth:
            rss.append("one process: no idle worker, no task graph")
        else:
            rss.append(max(growth) / bound)
        graph.append(r["graph_bytes"] / 10_000 if r.get("graph_bytes") else None)
    hbars(ax_m, names, [("RSS growth per worker / (model + one row group)", GREEN, rss),
                        ("task graph / 10 kB", ORANGE, graph)],
          "ratio to issue 22's bound (log; target <= 1)")
    ax_m.set_title("memory and task graph against issue 22's bounds", fontsize=9)
    finish(fig, path, "Batch scoring at scale against Dask + joblib" + run_date(doc))


def _bench_on_path() -> None:
    """report.py and serve.py import their neighbours by name, as the benchmark scripts do
    (bench/ is on the path when a script runs; not when a test loads this file)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))


def _foundation(doc: dict[str, Any], path: Path) -> None:
    _bench_on_path()
    import report

    report.plot(doc, path)


def _serve(doc: dict[str, Any], path: Path) -> None:
    _bench_on_path()
    import serve

    serve.plot(doc, path)


PLOTS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    "foundation": _foundation,
    "serve": _serve,
    "native": native,
    "native_mixed": native_mixed,
    "export": export,
    "registry": registry,
    "scan": scan,
    "scale": scale,
}


def render(stem: str, folder: Path) -> Path | None:
    """Draws `<folder>/<stem>.png` from `<folder>/<stem>.json`; returns the PNG, or None when
    matplotlib is missing (the JSON and the table are written already: only the chart is lost)."""
    doc = json.loads((folder / f"{stem}.json").read_text())
    out = folder / f"{stem}.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"matplotlib is not installed: no {out.name} (pip install -r requirements/bench.txt)")
        return None
    PLOTS[stem](doc, out)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stems", nargs="*", metavar="stem", help=f"any of {', '.join(PLOTS)} (default: every one with a JSON)")
    p.add_argument("--dir", type=Path, default=HERE / "results", help="folder of the JSON files")
    args = p.parse_args(argv)
    unknown = [s for s in args.stems if s not in PLOTS]
    if unknown:
        p.error(f"no chart for {', '.join(unknown)}: the stems are {', '.join(PLOTS)}")
    stems = args.stems or [s for s in PLOTS if (args.dir / f"{s}.json").exists()]
    for stem in stems:
        render(stem, args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
