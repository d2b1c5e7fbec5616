"""Streaming `skvault predict`: a folder or an `s3://` prefix of Parquet files (or one large
file) predicted batch by batch into CSV or Parquet, with memory bounded by a row group rather
than by the input (peak RSS measured here), the input's columns kept on request, the files'
schemas checked against each other, and nothing left behind by a failed or stopped run.

Datasets are written by pyarrow; expected outputs come from scikit-learn on the same rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import skvault
from native_helpers import assert_same

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

CLI = [sys.executable, "-m", "skvault", "predict"]
N_FEATURES = 16
COLS = [f"f{i}" for i in range(N_FEATURES)]
#: The big dataset: files x row groups x rows per group.
FILES, GROUPS, GROUP_ROWS = 8, 16, 10_000


def run(*args, env=None, ok=True):
    full_env = None if env is None else {**os.environ, **env}
    r = subprocess.run([*CLI, *map(str, args)], check=False, capture_output=True, text=True,
                       env=full_env)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def failure(*args, env=None):
    r = run(*args, env=env, ok=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith("skvault: error:"), r.stderr
    assert "panicked" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    return r.stderr


#: Runs argv[2:] in a grandchild and writes its peak RSS (kilobytes) to argv[1]. The
#: grandchild is forked from this small launcher, not from pytest: Linux carries the high
#: water mark of the memory a process replaces at exec into its ru_maxrss, and a child
#: spawned by pytest would report pytest's own (hundreds of MB of test data).
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(tmp_path, *args, env=None) -> int:
    """Runs the command and returns its peak RSS in bytes."""
    report = tmp_path / f"rss-{uuid.uuid4().hex[:8]}"
    r = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *CLI, *map(str, args)],
                       check=False, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr
    return int(report.read_text()) * 1024  # Linux reports kilobytes


def features(rng, n):
    # Few distinct values: pyarrow dictionary-encodes them, so the files stay small on disk
    # while every value still decodes into 8 bytes.
    return rng.integers(0, 32, size=(n, N_FEATURES)).astype(np.float64) / 4


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(features(rng, 3000), columns=COLS)
    y = (X["f0"] + X["f3"] - X["f7"] > 4).astype(int) + (X["f1"] > 6)
    model = RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("m") / "forest.skv"
    skvault.dump(model, path)
    return model, path


@pytest.fixture(scope="module")
def s3(s3_server):
    return s3_server


@pytest.fixture(scope="module")
def big(s3):
    """FILES Parquet files of GROUPS row groups each, in a prefix of the S3 test server's
    bucket; s3s-fs keeps objects as plain files, so the same files are the local folder."""
    prefix = f"big-{uuid.uuid4().hex[:8]}"
    folder = s3.data / "skvault-test" / prefix
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(FILES):
        A = features(rng, GROUPS * GROUP_ROWS)
        pq.write_table(pa.table({c: A[:, j] for j, c in enumerate(COLS)}), folder / f"part-{i}.parquet",
                       row_group_size=GROUP_ROWS)
    return folder, f"s3://skvault-test/{prefix}"


def read_dataset(folder):
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_dataset_many_row_groups_large_streams_in_bounded_memory(tmp_path, forest, big, s3, where):
    model, path = forest
    folder, uri = big
    source, env = (folder, None) if where == "local" else (uri, s3.env)
    # The memory bound: one row group decoded (8 bytes a value), held in a few copies (stored
    # values, table, model input, predictions, the output's row group), over what the same
    # command needs for a dataset of one row group.
    group_bytes = GROUP_ROWS * N_FEATURES * 8
    small = tmp_path / "small"
    small.mkdir()
    pq.write_table(pq.read_table(folder / "part-0.parquet").slice(0, GROUP_ROWS), small / "one.parquet")
    baseline = peak_rss(tmp_path, path, small, "-o", tmp_path / "small.parquet", "--proba",
                           "--batch-rows", GROUP_ROWS)
    bound = baseline + 12 * group_bytes
    dataset_bytes = FILES * GROUPS * group_bytes
    assert dataset_bytes > 3 * bound, "the dataset must be several times the memory bound"

    out = tmp_path / "proba.parquet"
    peak = peak_rss(tmp_path, path, source, "-o", out, "--proba", "--batch-rows", GROUP_ROWS, env=env)
    assert peak < bound, (peak, baseline, group_bytes)

    X = read_dataset(folder)
    got = pq.read_table(out)
    assert got.column_names == [str(c) for c in model.classes_]
    assert_same(np.column_stack([got.column(i).to_numpy() for i in range(got.num_columns)]),
                model.predict_proba(X), "proba, every row")


def test_labels_to_csv_from_a_single_large_file_and_a_single_object(tmp_path, forest, big, s3):
    model, path = forest
    folder, uri = big
    want = model.predict(pd.read_parquet(folder / "part-3.parquet"))
    for source, env in [(folder / "part-3.parquet", None), (f"{uri}/part-3.parquet", s3.env)]:
        out = tmp_path / "labels.csv"
        run(path, source, "-o", out, "--batch-rows", 7_000, env=env)
        got = pd.read_csv(out)
        assert list(got.columns) == ["prediction"]
        np.testing.assert_array_equal(got["prediction"].to_numpy(), want)


@pytest.fixture(scope="module")
def text_pipeline(tmp_path_factory):
    rng = np.random.default_rng(2)

    def frame(n):
        return pd.DataFrame({
            "city": rng.choice(["paris", "lyon", "nice", "brest"], size=n),
            "age": rng.integers(18, 90, size=n).astype(np.int64),
            "income": rng.normal(3000, 800, size=n),
        })

    X = frame(2000)
    y = np.where((X["city"] == "paris") | (X["income"] > 3500), "yes", "no")
    model = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), ["city"])], remainder="passthrough"),
        RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0),
    ).fit(X, y)
    path = tmp_path_factory.mktemp("p") / "pipeline.skv"
    skvault.dump(model, path)
    folder = tmp_path_factory.mktemp("rows")
    parts = [frame(n) for n in (3000, 1, 2500)]
    parts[2].loc[5, "city"] = "rome"   # a category never seen in fit
    for i, part in enumerate(parts):
        # An index column (pandas' __index_level_0__) is not an input column.
        part.index = part.index + 10_000 * i
        pq.write_table(pa.Table.from_pandas(part), folder / f"p{i}.parquet", row_group_size=1000)
    (folder / "_SUCCESS").write_bytes(b"")     # as Spark writes: skipped, as names starting with _ or .
    (folder / ".part.crc").write_bytes(b"junk")
    return model, path, folder, pd.concat(parts, ignore_index=True)


def test_pipeline_with_a_text_column_keeps_columns_in_parquet(tmp_path, text_pipeline):
    model, path, folder, X = text_pipeline
    out = tmp_path / "out.parquet"
    run(path, folder, "-o", out, "--keep-columns", "--batch-rows", 700)
    got = pq.read_table(out)
    assert got.column_names == ["city", "age", "income", "prediction"]
    # Kept columns are stored as they were read: same Parquet types, same values.
    want_schema = pq.ParquetFile(folder / "p0.parquet").schema
    got_schema = pq.ParquetFile(out).schema
    for i, name in enumerate(["city", "age", "income"]):
        w, g = want_schema.column(i), got_schema.column(i)
        assert (g.name, g.physical_type, str(g.logical_type), g.max_definition_level) == \
            (w.name, w.physical_type, str(w.logical_type), w.max_definition_level), name
        np.testing.assert_array_equal(got.column(name).to_numpy(), X[name].to_numpy())
    np.testing.assert_array_equal(got.column("prediction").to_numpy().astype(str), model.predict(X))

    proba = tmp_path / "proba.parquet"
    run(path, folder, "-o", proba, "--proba")
    p = pq.read_table(proba)
    assert p.column_names == ["no", "yes"]
    assert_same(np.column_stack([p.column(c).to_numpy() for c in p.column_names]), model.predict_proba(X), "proba")


def test_keep_columns_in_csv_with_nulls_integers_and_booleans(tmp_path, forest):
    model, path = forest
    rng = np.random.default_rng(4)
    A = features(rng, 500)
    cols = {c: A[:, j] for j, c in enumerate(COLS)}
    cols["f2"] = pa.array(A[:, 2].astype(np.float32))
    cols["f5"] = pa.array((A[:, 5] * 4).astype(np.int32))
    cols["f9"] = pa.array(A[:, 9] > 4)
    nulls = A[:, 11].copy()
    cols["f11"] = pa.array(np.where(np.arange(500) % 7 == 0, None, nulls).tolist(), pa.float64())
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table(cols), folder / "a.parquet", row_group_size=128)
    # Forests accept NaN: a null is NaN to both.
    X = pd.read_parquet(folder / "a.parquet").astype(float)
    out = tmp_path / "out.csv"
    run(path, folder, "-o", out, "--keep-columns", "--proba")
    got = pd.read_csv(out)
    assert list(got.columns) == [*COLS, *[str(c) for c in model.classes_]]
    assert got["f5"].dtype == np.int64 and got["f9"].dtype == bool
    assert got["f11"].isna().sum() == len(range(0, 500, 7))
    np.testing.assert_array_equal(got[COLS].astype(float).to_numpy(), X[COLS].to_numpy())
    assert_same(got[[str(c) for c in model.classes_]].to_numpy(), model.predict_proba(X[COLS]), "proba")


def test_parquet_output_of_npy_input(tmp_path, forest):
    """Parquet output is not only for streamed input: a whole-input run writes it too."""
    model, path = forest
    X = features(np.random.default_rng(5), 300)
    np.save(tmp_path / "x.npy", X)
    run(path, tmp_path / "x.npy", "-o", tmp_path / "y.parquet")
    got = pq.read_table(tmp_path / "y.parquet")
    assert got.column_names == ["prediction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fitted with names, given an array
        want = model.predict(X)
    np.testing.assert_array_equal(got.column("prediction").to_numpy(), want)
    assert "--keep-columns needs Parquet input" in failure(path, tmp_path / "x.npy", "-o", tmp_path / "k.csv",
                                                           "--keep-columns")
    pq.write_table(pa.table({c: X[:, j] for j, c in enumerate(COLS)}), tmp_path / "x.parquet")
    assert "--keep-columns needs CSV or Parquet output" in failure(path, tmp_path / "x.parquet", "-o",
                                                                   tmp_path / "k.npy", "--keep-columns")
    assert not (tmp_path / "k.npy").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_run_leaves_nothing(tmp_path, forest, big, sig):
    _, path = forest
    folder, _ = big
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([*CLI, str(path), str(folder), "-o", str(out_dir / "p.parquet"), "--proba",
                             "--batch-rows", "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # The temporary file exists once the files' schemas are checked and the first batch is
    # under way; give it a few batches more so that the run is well inside its input.
    while not any(p.name.startswith(".skvault-") for p in out_dir.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the temporary file never appeared"
        time.sleep(0.002)
    time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "panicked" not in err, err
    assert list(out_dir.iterdir()) == []


def test_files_with_different_schemas_are_refused_naming_the_file(tmp_path, forest):
    _, path = forest
    folder = tmp_path / "in"
    folder.mkdir()
    A = features(np.random.default_rng(6), 100)
    pq.write_table(pa.table({c: A[:, j] for j, c in enumerate(COLS)}), folder / "a.parquet")
    other = {c: A[:, j] for j, c in enumerate(COLS)}
    other["f4"] = (A[:, 4] * 4).astype(np.int64)
    pq.write_table(pa.table(other), folder / "b.parquet")
    err = failure(path, folder, "-o", tmp_path / "o.csv")
    assert "b.parquet" in err and '"f4"' in err and "INT64" in err and "share one schema" in err, err
    renamed = {("g0" if c == "f0" else c): A[:, j] for j, c in enumerate(COLS)}
    pq.write_table(pa.table(renamed), folder / "b.parquet")
    err = failure(path, folder, "-o", tmp_path / "o.csv")
    assert "b.parquet" in err and "g0" in err, err
    assert not (tmp_path / "o.csv").exists()


def test_missing_column_names_the_column_and_the_file(tmp_path, forest):
    _, path = forest
    folder = tmp_path / "in"
    folder.mkdir()
    A = features(np.random.default_rng(7), 50)
    pq.write_table(pa.table({c: A[:, j] for j, c in enumerate(COLS[:-1])}), folder / "a.parquet")
    err = failure(path, folder, "-o", tmp_path / "o.parquet")
    assert "a.parquet" in err and 'missing ["f15"]' in err, err
    pq.write_table(pa.table({**{c: A[:, j] for j, c in enumerate(COLS)}, "f3": pa.array(["x"] * 50)}),
                   folder / "a.parquet")
    assert 'column "f3" is not numeric' in failure(path, folder, "-o", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_empty_folder_and_empty_prefix(tmp_path, forest, s3):
    _, path = forest
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_bytes(b"")
    assert "no Parquet files" in failure(path, tmp_path / "empty", "-o", tmp_path / "o.csv")
    uri = f"s3://skvault-test/nothing-{uuid.uuid4().hex[:8]}"
    assert "no Parquet files" in failure(path, uri, "-o", tmp_path / "o.csv", env=s3.env)
    assert not (tmp_path / "o.csv").exists()


def test_a_file_that_is_not_parquet_is_named(tmp_path, forest, s3):
    _, path = forest
    prefix = f"junk-{uuid.uuid4().hex[:8]}"
    folder = s3.data / "skvault-test" / prefix
    folder.mkdir()
    A = features(np.random.default_rng(8), 50)
    pq.write_table(pa.table({c: A[:, j] for j, c in enumerate(COLS)}), folder / "a.parquet")
    (folder / "notes.txt").write_text("not rows\n")
    for source, env in [(folder, None), (f"s3://skvault-test/{prefix}", s3.env)]:
        err = failure(path, source, "-o", tmp_path / "o.parquet", env=env)
        assert "notes.txt" in err and "Parquet" in err, err
    assert not (tmp_path / "o.parquet").exists()


def test_output_inside_the_input_folder_is_refused(tmp_path, forest):
    _, path = forest
    folder = tmp_path / "in"
    folder.mkdir()
    A = features(np.random.default_rng(9), 20)
    pq.write_table(pa.table({c: A[:, j] for j, c in enumerate(COLS)}), folder / "a.parquet")
    assert "inside the input folder" in failure(path, folder, "-o", folder / "out.parquet")
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"]


def test_help_states_the_memory_bound():
    r = subprocess.run([sys.executable, "-m", "skvault", "predict", "--help"], check=False,
                       capture_output=True, text=True)
    assert "--batch-rows" in r.stdout and "row group" in r.stdout and "--keep-columns" in r.stdout, r.stdout


def test_bar_counts_the_rows_of_every_file_on_a_terminal_only(tmp_path, text_pipeline):
    from on_tty import env, run_tty

    _, path, folder, X = text_pipeline
    force = {"SKVAULT_PROGRESS_MIN_BYTES": "0"}
    run = run_tty("predict", path, folder, "-o", tmp_path / "y.csv", "--batch-rows", 500, **force)
    assert run.code == 0, run.tty
    last = run.last_bar("predicting")
    assert f"{len(X):,}/{len(X):,} rows" in last and "/s" in last, last
    piped = subprocess.run([*CLI, str(path), str(folder), "-o", str(tmp_path / "z.csv")],
                           check=False, capture_output=True, text=True, env=env(**force))
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


def test_a_bad_row_is_named_by_its_file_and_its_row_in_that_file(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(10)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    path = tmp_path / "lr.skv"
    skvault.dump(LogisticRegression().fit(X, (X["a"] > 0).astype(int)), path)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        rows = rng.normal(size=(3000, 3))
        if i == 1:
            rows[2345, 2] = np.inf  # a linear model refuses it, as scikit-learn does
        pq.write_table(pa.table({"a": rows[:, 0], "b": rows[:, 1], "c": rows[:, 2]}), folder / f"{i}.parquet",
                       row_group_size=1000)
    err = failure(path, folder, "-o", tmp_path / "y.parquet", "--batch-rows", 400)
    assert "1.parquet" in err and "row 2345, column 2" in err, err
    assert not (tmp_path / "y.parquet").exists()
