"""ONNX export: `skvault.export_onnx` (Rust, from the .skv file) against skl2onnx.

    .venv/bin/python bench/export.py            # writes bench/results/export.{md,json}
    .venv/bin/python bench/export.py --quick    # 50-tree forest, writes bench/work/quick/

Models: those of bench/native.py (the 500-tree RandomForestClassifier(max_depth=20) and the
HistGradientBoostingClassifier(max_iter=200), fitted on make_classification(50000, 20)),
built by its own helper. Measured for each exporter: conversion time (best of a few runs;
skvault's includes reading the .skv file, skl2onnx's starts from the fitted estimator), file
size, onnxruntime predict_proba time on 10000 rows (best of several runs, same thread
count) and the largest absolute difference from scikit-learn's predict_proba on those rows.
An exporter that fails is reported with its error. Ratios, not absolute claims: the
machine is shared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import native  # noqa: E402  (parses --quick / --threads and sets the thread pools)
import numpy as np  # noqa: E402

import skvault  # noqa: E402
import environment  # noqa: E402
from timing import best_time, write_results  # noqa: E402

ARGS = native.ARGS


def session(data: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = ARGS.threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def run_skvault(model: Any, X: np.ndarray, workdir: Path) -> dict[str, Any]:
    skv = workdir / "model.skv"
    skvault.dump(model, skv)
    out = workdir / "skvault.onnx"
    t = best_time(lambda: skvault.export_onnx(skv, out), 3)
    data = out.read_bytes()
    sess = session(data)
    fn = lambda A: sess.run(["probabilities"], {"X": A})[0]  # noqa: E731
    return {"export_s": t, "bytes": len(data), "fn": fn, "dtype": np.float64}


def run_skvault_float32(model: Any, X: np.ndarray, workdir: Path) -> dict[str, Any]:
    skv = workdir / "model.skv"
    skvault.dump(model, skv)
    out = workdir / "skvault32.onnx"
    t = best_time(lambda: skvault.export_onnx(skv, out, dtype="float32"), 3)
    data = out.read_bytes()
    sess = session(data)
    fn = lambda A: sess.run(["probabilities"], {"X": A})[0]  # noqa: E731
    return {"export_s": t, "bytes": len(data), "fn": fn, "dtype": np.float64}


def run_skl2onnx(model: Any, X: np.ndarray, workdir: Path) -> dict[str, Any]:
    from skl2onnx import to_onnx

    options = {id(model): {"zipmap": False}}
    t0 = time.perf_counter()
    onx = to_onnx(model, X[:1].astype(np.float32), options=options)
    t = time.perf_counter() - t0
    data = onx.SerializeToString()
    sess = session(data)
    name = sess.get_inputs()[0].name
    fn = lambda A: sess.run(["probabilities"], {name: A.astype(np.float32)})[0]  # noqa: E731
    return {"export_s": t, "bytes": len(data), "fn": fn, "dtype": np.float32}


def main() -> None:
    models, X = native.build_models(ARGS.quick)
    batch = np.ascontiguousarray(X[:10000], dtype=np.float64)
    reps = 3 if ARGS.quick else 5
    results: dict[str, Any] = {"threads": ARGS.threads, "quick": ARGS.quick, "models": {}, "run_start": environment.snapshot()}
    for name, model in models.items():
        if name.startswith("pipeline"):
            continue
        print(name, flush=True)
        expected = model.predict_proba(batch)
        rows: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            exporters = (("skvault", run_skvault), ("skvault float32", run_skvault_float32), ("skl2onnx", run_skl2onnx))
            for exporter, run in exporters:
                try:
                    r = run(model, batch, Path(tmp))
                except Exception as e:  # noqa: BLE001 - a failed conversion is a result
                    rows[exporter] = {"note": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"}
                    print(f"  {exporter}: {rows[exporter]['note']}", flush=True)
                    continue
                fn = r.pop("fn")
                r.pop("dtype")
                got = fn(batch)
                r["max_abs_diff"] = float(np.max(np.abs(got - expected)))
                r["labels_differ"] = int(np.sum(model.classes_[np.argmax(got, axis=1)] != model.predict(batch)))
                r["predict_ms"] = best_time(lambda: fn(batch), reps) * 1e3
                rows[exporter] = r
                print(f"  {exporter}: export {r['export_s']:.3f}s, {r['bytes']} bytes, predict "
                      f"{r['predict_ms']:.1f} ms, max |diff| {r['max_abs_diff']:.2g}", flush=True)
        results["models"][name] = rows
    write(results)


def write(results: dict[str, Any]) -> None:
    lines = [
        "# ONNX export: skvault vs skl2onnx",
        "",
        f"Threads: {results['threads']}. Export time: best of 3 (skvault from the .skv file, "
        "skl2onnx from the fitted estimator). predict_proba in onnxruntime on 10000 rows, best of "
        "several runs. Max abs diff: against scikit-learn's predict_proba on the same rows. "
        "Ratios are skl2onnx / skvault." + (" Quick mode (50-tree forest)." if results["quick"] else ""),
        "",
        "Chart: [export.png](export.png)",
        "",
    ]
    for name, rows in results["models"].items():
        lines += [f"## {name}", "", "| exporter | export (s) | file (bytes) | predict_proba 10000 rows (ms) | max abs diff | labels differing |",
                  "|---|---:|---:|---:|---:|---:|"]
        for exporter, r in rows.items():
            if "note" in r:
                lines.append(f"| {exporter} | {r['note']} | | | | |")
            else:
                lines.append(f"| {exporter} | {r['export_s']:.3f} | {r['bytes']} | {r['predict_ms']:.1f} | "
                             f"{r['max_abs_diff']:.2g} | {r['labels_differ']} |")
        a, b = rows.get("skvault", {}), rows.get("skl2onnx", {})
        if "export_s" in a and "export_s" in b:
            lines += ["", f"Ratios: export {b['export_s'] / a['export_s']:.1f}x faster, file "
                      f"{a['bytes'] / b['bytes']:.2f}x skl2onnx's size, predict_proba "
                      f"{b['predict_ms'] / a['predict_ms']:.2f}x (above 1: skvault's file runs faster)."]
        f32 = rows.get("skvault float32", {})
        if "export_s" in f32 and "export_s" in b:
            ok = f32["predict_ms"] <= b["predict_ms"] and f32["max_abs_diff"] <= b["max_abs_diff"]
            lines += ["", f"Target (issue 24): onnxruntime on skvault's float32 graph at least as fast as on "
                      f"skl2onnx's, with differences no larger: predict_proba {b['predict_ms'] / f32['predict_ms']:.2f}x, "
                      f"max |diff| {f32['max_abs_diff']:.2g} vs {b['max_abs_diff']:.2g}: {'PASS' if ok else 'FAIL'}."]
        lines.append("")
    write_results("export", results, lines, ARGS.quick)


if __name__ == "__main__":
    main()
