"""Native inference (skvault.native) against scikit-learn, onnxruntime (skl2onnx) and treelite.

    .venv/bin/python bench/native.py            # writes bench/results/native.{md,json}
    .venv/bin/python bench/native.py --quick    # 50-tree forest, writes bench/work/quick/

Models: the 500-tree RandomForestClassifier(max_depth=20), HistGradientBoostingClassifier
(max_iter=200) and StandardScaler + LogisticRegression of `bench/run.py`, fitted on
make_classification(50000, 20). Measured: predict_proba on 10000 rows (throughput, best of
several runs) and on one row (latency, median of many calls), every engine limited to the
same number of threads (--threads, default: all cores). Outputs are checked against
scikit-learn before timing: native must be bit-identical for the trees, within 1e-12 for the
pipeline; the others are reported with their largest difference. An engine that cannot
convert or run a model is reported as such, with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50-tree forest, fewer repetitions")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return p.parse_args()


ARGS = parse_args()
# Thread pools read these when they start: set them before numpy, sklearn and skvault load.
os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

import skvault  # noqa: E402
import skvault.native  # noqa: E402
from timing import best_time, median_time, write_results  # noqa: E402


def build_models(quick: bool) -> dict[str, Any]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=50000, n_features=20, random_state=0)
    n = 50 if quick else 500
    models = {
        f"forest ({n} trees)": RandomForestClassifier(
            n_estimators=n, max_depth=20, random_state=0, n_jobs=ARGS.threads
        ),
        "hgb (200 iterations)": HistGradientBoostingClassifier(max_iter=200, random_state=0),
        "pipeline (scaler + logistic)": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    }
    for name, m in models.items():
        t = time.perf_counter()
        m.fit(X, y)
        print(f"fitted {name} in {time.perf_counter() - t:.1f}s", flush=True)
    return models, X


def engines(model: Any, X: np.ndarray, workdir: Path) -> dict[str, Callable[[np.ndarray], np.ndarray] | str]:
    """name -> predict_proba function, or the reason the engine is not available."""
    out: dict[str, Callable | str] = {"scikit-learn": model.predict_proba}
    path = workdir / "model.skv"
    skvault.dump(model, path)
    native = skvault.native.load(path)
    out["skvault.native"] = native.predict_proba
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx

        options = {id(model): {"zipmap": False}}
        if hasattr(model, "steps"):
            options = {id(model.steps[-1][1]): {"zipmap": False}}
        onx = to_onnx(model, X[:1].astype(np.float32), options=options)
        so = ort.SessionOptions()
        so.intra_op_num_threads = ARGS.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(onx.SerializeToString(), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        out["onnxruntime"] = lambda A: sess.run(["probabilities"], {name: A.astype(np.float32)})[0]
    except Exception as e:  # noqa: BLE001 - any conversion failure is reported, not fatal
        out["onnxruntime"] = f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    try:
        import treelite

        tl = treelite.sklearn.import_model(model)

        def tl_proba(A: np.ndarray) -> np.ndarray:
            p = treelite.gtil.predict(tl, A.astype(np.float32), nthread=ARGS.threads)
            p = p.reshape(len(A), -1)
            return np.column_stack([1 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p

        out["treelite (gtil)"] = tl_proba
    except Exception as e:  # noqa: BLE001
        out["treelite (gtil)"] = f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    return out


def main() -> None:
    from threadpoolctl import threadpool_limits

    reps_batch = 3 if ARGS.quick else 5
    reps_one = 200 if ARGS.quick else 1000
    results: dict[str, Any] = {"threads": ARGS.threads, "quick": ARGS.quick, "models": {}}
    with threadpool_limits(limits=ARGS.threads):
        models, X = build_models(ARGS.quick)
        rng = np.random.RandomState(1)
        batch = X[rng.choice(len(X), 10000, replace=False)]
        one = batch[:1].copy()
        for name, model in models.items():
            print(f"== {name}", flush=True)
            # The reference runs single-threaded: a forest's predict_proba with n_jobs > 1 sums
            # tree outputs in whichever order threads finish, so its last bits vary run to run.
            n_jobs = getattr(model, "n_jobs", None)
            if n_jobs is not None:
                model.set_params(n_jobs=None)
            want = model.predict_proba(batch)
            if n_jobs is not None:
                model.set_params(n_jobs=n_jobs)
            rows = {}
            with tempfile.TemporaryDirectory() as d:
                for engine, fn in engines(model, X, Path(d)).items():
                    if isinstance(fn, str):
                        rows[engine] = {"note": fn}
                        print(f"  {engine}: {fn}")
                        continue
                    got = np.asarray(fn(batch), dtype=np.float64)
                    diff = float(np.max(np.abs(got - want)))
                    if engine == "skvault.native":
                        exact = "pipeline" not in name
                        ok = np.array_equal(got, want) if exact else diff <= 1e-12
                        if not ok:
                            raise SystemExit(f"native output differs from scikit-learn on {name}: {diff}")
                    t_batch = best_time(lambda: fn(batch), reps_batch)
                    t_one = median_time(lambda: fn(one), reps_one if engine != "scikit-learn" else reps_one // 10)
                    rows[engine] = {
                        "batch_rows_per_s": 10000 / t_batch,
                        "batch_ms": t_batch * 1e3,
                        "one_row_us": t_one * 1e6,
                        "max_abs_diff": diff,
                    }
                    print(f"  {engine}: 10000 rows {t_batch * 1e3:.1f} ms, 1 row {t_one * 1e6:.1f} us, "
                          f"max |diff| {diff:.2g}", flush=True)
            base = rows["scikit-learn"]["batch_rows_per_s"]
            for r in rows.values():
                if "batch_rows_per_s" in r:
                    r["throughput_vs_sklearn"] = r["batch_rows_per_s"] / base
            results["models"][name] = rows
    write(results)


def write(results: dict[str, Any]) -> None:
    lines = [
        "# Native inference: predict_proba throughput and latency",
        "",
        f"Threads: {results['threads']} for every engine. Batch: 10000 rows (best of several runs);"
        " one row: median latency. Ratio: batch throughput / scikit-learn's.",
        "",
        "Chart: [native.png](native.png)",
        "",
    ]
    for name, rows in results["models"].items():
        lines += [f"## {name}", "", "| engine | 10000 rows (ms) | ratio | 1 row (µs) | max abs diff |",
                  "|---|---:|---:|---:|---:|"]
        for engine, r in rows.items():
            if "note" in r:
                lines.append(f"| {engine} | {r['note']} | | | |")
            else:
                lines.append(
                    f"| {engine} | {r['batch_ms']:.1f} | {r['throughput_vs_sklearn']:.2f}x | "
                    f"{r['one_row_us']:.1f} | {r['max_abs_diff']:.2g} |"
                )
        lines.append("")
    write_results("native", results, lines, ARGS.quick)


if __name__ == "__main__":
    main()
