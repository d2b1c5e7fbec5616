"""Native inference on a mixed-type DataFrame pipeline, against scikit-learn and onnxruntime.

    .venv/bin/python bench/native_mixed.py          # writes bench/results/native_mixed.{md,json}
    .venv/bin/python bench/native_mixed.py --quick  # fewer rows and repetitions, bench/work/quick/

Data: 10 text columns with 5 to 500 categories (some missing) and 10 numeric columns with
missing values. Models: ColumnTransformer(SimpleImputer + StandardScaler on the numbers,
SimpleImputer + OneHotEncoder on the text) in front of HistGradientBoostingClassifier, and the
same in front of RandomForestClassifier. Measured: predict_proba on 10000 rows (throughput,
best of several runs) and on one row (latency, median of many calls) for scikit-learn and
skvault.native on the DataFrame, skvault.native on the pyarrow Table read from Parquet, and
onnxruntime on skl2onnx's graph where it converts (one input per column). Outputs are checked
against scikit-learn first: native must be bit-identical (trees, forests and encoders are).
`skvault predict` on the Parquet file is timed end to end (process start included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer training rows and repetitions")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return p.parse_args()


ARGS = parse_args()
os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import skvault  # noqa: E402
import skvault.native  # noqa: E402
import environment  # noqa: E402
from timing import best_time, median_time, write_results  # noqa: E402

N_TEXT, N_NUM = 10, 10


def make_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    score = np.zeros(n)
    for j in range(N_TEXT):
        k = int(np.geomspace(5, 500, N_TEXT)[j])
        codes = rng.zipf(1.5, n) % k
        values = np.array([f"t{j}_{c}" for c in range(k)], dtype=object)[codes]
        values[rng.random(n) < 0.05] = np.nan
        cols[f"text{j}"] = pd.Series(values, dtype="str")
        score += (codes % 3 == 0) * 0.3
    for j in range(N_NUM):
        x = rng.normal(size=n)
        score += x * (0.5 if j % 2 else -0.2)
        x[rng.random(n) < 0.05] = np.nan
        cols[f"num{j}"] = x
    return pd.DataFrame(cols), (score + rng.normal(scale=0.5, size=n) > score.mean()).astype(int)


def build_models(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def pre() -> ColumnTransformer:
        return ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), [f"num{j}" for j in range(N_NUM)]),
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="missing"),
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    ),
                    [f"text{j}" for j in range(N_TEXT)],
                ),
            ]
        )

    models = {
        "onehot + hgb": make_pipeline(pre(), HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        "onehot + forest": make_pipeline(
            pre(), RandomForestClassifier(n_estimators=100, max_depth=12, random_state=0)
        ),
    }
    for name, m in models.items():
        m.fit(X, y)
        print(f"fitted {name}", flush=True)
    return models


def onnx_engine(model: Any, X: pd.DataFrame) -> Callable[[pd.DataFrame], np.ndarray] | str:
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        types = [
            (c, StringTensorType([None, 1]) if X[c].dtype.kind not in "fiub" else FloatTensorType([None, 1]))
            for c in X.columns
        ]
        onx = to_onnx(model, initial_types=types, options={id(model.steps[-1][1]): {"zipmap": False}})
        so = ort.SessionOptions()
        so.intra_op_num_threads = ARGS.threads
        sess = ort.InferenceSession(onx.SerializeToString(), so, providers=["CPUExecutionProvider"])

        def run(D: pd.DataFrame) -> np.ndarray:
            feeds = {
                c: (D[c].astype(object).fillna("missing").to_numpy(dtype=object).reshape(-1, 1)
                    if D[c].dtype.kind not in "fiub" else D[c].to_numpy(np.float32).reshape(-1, 1))
                for c in D.columns
            }
            return sess.run(["probabilities"], feeds)[0]

        return run
    except Exception as e:  # noqa: BLE001 - a conversion failure is reported, not fatal
        return f"not available: {type(e).__name__}: {str(e).splitlines()[0][:120]}"


def main() -> None:
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    reps_batch = 3 if ARGS.quick else 5
    reps_one = 100 if ARGS.quick else 500
    results: dict[str, Any] = {"threads": ARGS.threads, "quick": ARGS.quick, "models": {}, "run_start": environment.snapshot()}
    with threadpool_limits(limits=ARGS.threads), tempfile.TemporaryDirectory() as d:
        work = Path(d)
        X, y = make_frame(20000 if ARGS.quick else 50000, 0)
        batch, _ = make_frame(10000, 1)
        one = batch.iloc[:1]
        batch.to_parquet(work / "batch.parquet", index=False)
        table = pq.read_table(work / "batch.parquet")
        for name, model in build_models(X, y).items():
            print(f"== {name}", flush=True)
            want = model.predict_proba(batch)
            skvault.dump(model, work / "m.skv")
            native = skvault.native.load(work / "m.skv")
            engines: dict[str, Any] = {
                "scikit-learn (DataFrame)": (model.predict_proba, batch, one),
                "skvault.native (DataFrame)": (native.predict_proba, batch, one),
                "skvault.native (pyarrow Table from Parquet)": (native.predict_proba, table, table.slice(0, 1)),
                "onnxruntime (skl2onnx)": (onnx_engine(model, X), batch, one),
            }
            rows: dict[str, Any] = {}
            for engine, (fn, B, O) in engines.items():
                if isinstance(fn, str):
                    rows[engine] = {"note": fn}
                    print(f"  {engine}: {fn}")
                    continue
                got = np.asarray(fn(B), dtype=np.float64)
                diff = float(np.max(np.abs(got - want)))
                if engine.startswith("skvault") and not np.array_equal(got, want):
                    raise SystemExit(f"native output differs from scikit-learn on {name}: {diff}")
                t_batch = best_time(lambda: fn(B), reps_batch)
                t_one = median_time(lambda: fn(O), reps_one)
                rows[engine] = {"batch_ms": t_batch * 1e3, "batch_rows_per_s": 10000 / t_batch,
                                "one_row_us": t_one * 1e6, "max_abs_diff": diff}
                print(f"  {engine}: 10000 rows {t_batch * 1e3:.1f} ms, 1 row {t_one * 1e6:.1f} us, "
                      f"max |diff| {diff:.2g}", flush=True)
            cli = [sys.executable, "-m", "skvault", "predict", str(work / "m.skv"), str(work / "batch.parquet"),
                   "-o", str(work / "out.npy"), "--proba"]
            t_cli = best_time(lambda: subprocess.run(cli, check=True, capture_output=True), reps_batch)
            rows["skvault predict (Parquet file, whole process)"] = {
                "batch_ms": t_cli * 1e3, "batch_rows_per_s": 10000 / t_cli, "one_row_us": None,
                "max_abs_diff": float(np.max(np.abs(np.load(work / "out.npy") - want))),
            }
            base = rows["scikit-learn (DataFrame)"]["batch_rows_per_s"]
            for r in rows.values():
                if "batch_rows_per_s" in r:
                    r["throughput_vs_sklearn"] = r["batch_rows_per_s"] / base
            results["models"][name] = rows
    write(results)


def write(results: dict[str, Any]) -> None:
    lines = [
        "# Native inference on a mixed-type DataFrame pipeline",
        "",
        f"{N_TEXT} text columns (5 to 500 categories, 5% missing), {N_NUM} numeric columns (5% missing);"
        f" threads: {results['threads']} for every engine. Batch: 10000 rows (best of several runs);"
        " one row: median latency through each engine's Python API. Ratio: batch throughput /"
        " scikit-learn's. Targets (issue 19): at least 3x scikit-learn on 10000 rows, under 50 µs"
        " for one row.",
        "",
        "Chart: [native_mixed.png](native_mixed.png)",
        "",
    ]
    for name, rows in results["models"].items():
        lines += [f"## {name}", "", "| engine | 10000 rows (ms) | ratio | 1 row (µs) | max abs diff |",
                  "|---|---:|---:|---:|---:|"]
        for engine, r in rows.items():
            if "note" in r:
                lines.append(f"| {engine} | {r['note']} | | | |")
                continue
            one = "-" if r["one_row_us"] is None else f"{r['one_row_us']:.1f}"
            lines.append(f"| {engine} | {r['batch_ms']:.1f} | {r['throughput_vs_sklearn']:.2f}x | {one} | "
                         f"{r['max_abs_diff']:.2g} |")
        lines.append("")
    write_results("native_mixed", results, lines, ARGS.quick)


if __name__ == "__main__":
    main()
