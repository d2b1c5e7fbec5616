"""Progress bars of the command line, seen on a real terminal (a pseudo-terminal as stderr).

Each bar's last frame must show the real total (the output file's size, the rows predicted,
the bytes a registry transfer moves), reached by the work itself; nothing is drawn when stderr
is a pipe, and nothing for --json runs. ``SKVAULT_PROGRESS_MIN_BYTES=0`` shows the bar of a
small job; the sizes here are still a few megabytes so that writes report several chunks.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import skvault
from conftest import split_skv
from on_tty import CLI, env, human_bytes, run_tty

FORCE = {"SKVAULT_PROGRESS_MIN_BYTES": "0"}

#: The 30 cells of a bar as the styles here draw them.
BAR_BODY = re.compile(r"\[[=> ]{30}\]")

#: A frame of a spinner (a step of unknown size, and its time so far).
SPINNER = re.compile(r"(reading|scanning|converting)( the input)? \(\d+s\)")

#: A frame of a bar drawn with indicatif's default style (no label, `pos/len` at the end).
UNSTYLED = re.compile(r"^[^A-Za-z]*\d+/\d+$")


def both(text: str) -> str:
    """`X/X` for a bar of `X` bytes that reached its end."""
    return f"{text}/{text}"


@pytest.fixture(scope="module")
def arrays_pickle(tmp_path_factory):
    """A benign pickle of 9 MiB of random floats (several write chunks, no dedup)."""
    path = tmp_path_factory.mktemp("p") / "arrays.pkl"
    rng = np.random.default_rng(0)
    path.write_bytes(pickle.dumps({"a": rng.random(600_000), "b": rng.random(580_000)}, protocol=5))
    return path


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("m") / "forest.skv"
    skvault.dump(model, path)
    return model, path


def test_convert_bar_ends_at_the_output_size(tmp_path, arrays_pickle):
    dst = tmp_path / "out.skv"
    run = run_tty("convert", arrays_pickle, dst, **FORCE)
    assert run.code == 0, run.tty
    size = dst.stat().st_size
    assert size > 9_000_000
    last = run.last_bar("writing")
    assert both(human_bytes(size)) in last, last
    assert "converted" in run.stdout


def test_convert_shows_nothing_on_a_pipe(tmp_path, arrays_pickle):
    result = subprocess.run([*CLI, "convert", str(arrays_pickle), str(tmp_path / "o.skv")],
                            capture_output=True, text=True, env=env(**FORCE), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "writing" not in result.stdout and "[" not in result.stdout


@pytest.mark.parametrize("fmt", ["onnx", "json"])
def test_export_bar_ends_at_the_output_size(tmp_path, forest, fmt):
    _, model = forest
    out = tmp_path / f"model.{fmt}"
    run = run_tty("export", model, out, "--format", fmt, **FORCE)
    assert run.code == 0, run.tty
    size = out.stat().st_size
    last = run.last_bar("writing")
    assert both(human_bytes(size)) in last, last
    result = subprocess.run([*CLI, "export", str(model), str(tmp_path / f"again.{fmt}"), "--format", fmt],
                            capture_output=True, text=True, env=env(**FORCE), timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_predict_bar_counts_rows(tmp_path, forest):
    model, path = forest
    n = 150_000  # three batches of rows
    X = np.random.default_rng(2).normal(size=(n, 6))
    np.save(tmp_path / "x.npy", X)
    run = run_tty("predict", path, tmp_path / "x.npy", "-o", tmp_path / "y.npy", **FORCE)
    assert run.code == 0, run.tty
    assert any(line.endswith(")") and "reading the input (" in line for line in run.lines()), run.tty
    last = run.last_bar("predicting")
    assert f"{n:,}/{n:,} rows" in last, last
    assert "/s" in last
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(X))
    piped = subprocess.run([*CLI, "predict", str(path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "z.npy")],
                           capture_output=True, text=True, env=env(**FORCE), timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


def test_registry_bars_are_styled_from_their_first_frame_and_end_at_their_totals(tmp_path):
    rng = np.random.default_rng(3)
    skv = tmp_path / "w.skv"
    skvault.dump({"w": rng.random(700_000)}, skv)
    header, manifest, _ = split_skv(skv.read_bytes())
    uploaded = 64 + header["manifest_len"] + sum(a["length"] for a in manifest["arrays"])
    uri = tmp_path / "registry"
    reg = run_tty("registry", "--uri", uri, "register", skv, "w", **FORCE)
    assert reg.code == 0, reg.tty
    assert reg.stdout.strip() == "1"
    assert both(human_bytes(uploaded)) in reg.last_bar("upload")
    got = tmp_path / "got.skv"
    get = run_tty("registry", "--uri", uri, "get", "w", "-o", got, **FORCE)
    assert get.code == 0, get.tty
    assert got.read_bytes() == skv.read_bytes()
    assert both(human_bytes(skv.stat().st_size)) in get.last_bar("download")
    for run in (reg, get):
        unstyled = [line for line in run.lines() if UNSTYLED.match(line)]
        assert not unstyled, unstyled


def test_scan_bar_and_no_bar_for_json(tmp_path, arrays_pickle):
    size = arrays_pickle.stat().st_size
    plain = run_tty("scan", arrays_pickle, **FORCE)
    assert plain.code == 0, plain.tty
    assert both(human_bytes(size)) in plain.last_bar("scanning")
    as_json = run_tty("scan", "--json", arrays_pickle, **FORCE)
    assert as_json.code == 0, as_json.tty
    assert "scanning" not in as_json.tty and "[" not in as_json.tty
    assert json.loads(as_json.stdout)["summary"]["safe"] == 1


def test_predict_in_batches_names_the_bad_row_of_the_whole_input(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    path = tmp_path / "lr.skv"
    skvault.dump(model, path)
    rows = rng.normal(size=(150_000, 3))
    rows[140_000, 2] = np.inf  # in the third batch of rows
    np.save(tmp_path / "x.npy", rows)
    result = subprocess.run([*CLI, "predict", str(path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "input row 140000, column 2" in result.stderr, result.stderr
    assert not (tmp_path / "y.npy").exists()


def test_no_bar_for_json_reports(tmp_path, arrays_pickle, forest):
    """Convert, export and the registry print their --json report on stdout and draw nothing."""
    _, model = forest
    skv = tmp_path / "a.skv"
    runs = {
        "convert": run_tty("convert", "--json", arrays_pickle, skv, **FORCE),
        "export": run_tty("export", "--json", model, tmp_path / "m.onnx", **FORCE),
    }
    uri = tmp_path / "registry"
    runs["register"] = run_tty("registry", "--uri", uri, "--json", "register", skv, "a", **FORCE)
    runs["get"] = run_tty("registry", "--uri", uri, "--json", "get", "a", "-o", tmp_path / "got.skv", **FORCE)
    for name, run in runs.items():
        assert run.code == 0, (name, run.tty)
        assert not BAR_BODY.search(run.tty) and not SPINNER.search(run.tty), (name, run.tty)
        assert isinstance(json.loads(run.stdout), dict), (name, run.stdout)
    assert (tmp_path / "got.skv").read_bytes() == skv.read_bytes()
