"""Ctrl-C and closed pipes in the command line.

SIGINT during a long command stops it: exit status 130, one line on stderr, no traceback, no
output file and no temporary file left, the source untouched. The jobs are made large enough
(by the tests) to run for a while, and the signal is sent while the work is under way: once
the atomic writer's temporary file exists, or once the bar shows on the terminal. A reader
that closes stdout early (``| head -c 10``) ends the command quietly with its usual status.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import time

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import skvault
from on_tty import CLI, drain, env, open_tty

TIMEOUT = 300


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporaries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".skvault-"))


def assert_interrupted(code: int, err: str) -> None:
    assert code == 130, err
    assert "interrupted" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "panicked" not in err, err


def test_ctrl_c_while_convert_writes_removes_the_temporary_file(tmp_path):
    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    src = src_dir / "big.pkl"
    # 480 MB of floats: the write alone takes a good fraction of a second.
    array = np.random.default_rng(0).random(60_000_000)
    src.write_bytes(pickle.dumps({"w": array}, protocol=5))
    del array
    before = (digest(src), src.stat().st_mtime_ns)
    dst = out_dir / "big.skv"
    proc = subprocess.Popen([*CLI, "convert", str(src), str(dst)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not temporaries(out_dir):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the temporary file never appeared"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert_interrupted(proc.returncode, err)
    assert out == ""
    assert sorted(p.name for p in out_dir.iterdir()) == []
    assert (digest(src), src.stat().st_mtime_ns) == before


@pytest.fixture(scope="module")
def deep_tree(tmp_path_factory):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 8))
    y = rng.integers(0, 2, size=20_000)  # noise: a deep tree, slow to walk
    path = tmp_path_factory.mktemp("m") / "tree.skv"
    skvault.dump(DecisionTreeClassifier(random_state=0).fit(X, y), path)
    return path


def interrupt_once_drawn(label: str, *args: object) -> tuple[int, str, str]:
    """Runs `skvault ARGS` with stderr on a terminal, sends SIGINT once the bar `label` is
    drawn (it is drawn after a first unit of work: the command is under way); returns the
    exit status, stdout and what the terminal showed after the signal."""
    master, slave = open_tty()
    try:
        proc = subprocess.Popen([*CLI, *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=slave, text=True, env=env(SKVAULT_PROGRESS_MIN_BYTES="0"))
        os.close(slave)
        slave = -1
        drain(master, proc, time.monotonic() + TIMEOUT, until=f"{label} [")
        proc.send_signal(signal.SIGINT)
        rest = drain(master, proc, time.monotonic() + TIMEOUT).decode(errors="replace")
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return proc.returncode, out, rest


def test_ctrl_c_while_predict_runs_writes_nothing(tmp_path, deep_tree):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.random.default_rng(2).normal(size=(4_000_000, 8)))
    before = (digest(rows), digest(deep_tree))
    out = tmp_path / "out" / "pred.npy"
    out.parent.mkdir()
    code, _, err = interrupt_once_drawn("predicting", "predict", deep_tree, rows, "-o", out)
    assert_interrupted(code, err)
    assert list(out.parent.iterdir()) == []
    assert (digest(rows), digest(deep_tree)) == before


@pytest.fixture(scope="module")
def many_arrays(tmp_path_factory):
    """A .skv file of 300 arrays of 1 MB: as many blobs and JSON conversions, each a unit of
    work after which a stop is noticed."""
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("a") / "many.skv"
    skvault.dump({f"a{i}": rng.random(125_000) for i in range(300)}, path)
    return path


def test_ctrl_c_while_export_converts_arrays_writes_nothing(tmp_path, many_arrays):
    before = digest(many_arrays)
    out = tmp_path / "out" / "doc.json"
    out.parent.mkdir()
    code, _, err = interrupt_once_drawn("converting", "export", many_arrays, out)
    assert_interrupted(code, err)
    assert list(out.parent.iterdir()) == []
    assert digest(many_arrays) == before


def test_ctrl_c_in_registry_register_and_get_creates_nothing(tmp_path, many_arrays):
    uri = tmp_path / "registry"
    code, out, err = interrupt_once_drawn("upload", "registry", "--uri", uri, "register", many_arrays, "m")
    assert_interrupted(code, err)
    assert out == ""
    # No half-written object (the folder store stages uploads as NAME#N before renaming).
    assert [p.name for p in uri.rglob("*") if "#" in p.name or p.name.startswith(".skvault-")] == []
    # The interrupted register created no version: registering again makes version 1. Then a
    # download stopped half way leaves no file.
    done = subprocess.run([*CLI, "registry", "--uri", str(uri), "register", str(many_arrays), "m"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0 and done.stdout.strip() == "1", done
    got = tmp_path / "got"
    got.mkdir()
    code, _, err = interrupt_once_drawn("download", "registry", "--uri", uri, "get", "m", "-o", got / "m.skv")
    assert_interrupted(code, err)
    assert list(got.iterdir()) == []


def closed_early(*args: str) -> tuple[bytes, str, int]:
    """Runs the command, reads 10 bytes of its stdout, then closes it (`| head -c 10`)."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return head, err, proc.wait(timeout=TIMEOUT)


def test_scan_json_into_a_closed_pipe_ends_quietly(tmp_path):
    # Far more JSON than a pipe holds, so that writing it meets the closed pipe.
    for i in range(400):
        (tmp_path / f"m{i}.pkl").write_bytes(pickle.dumps({"i": i, "name": f"model {i}"}))
    head, err, code = closed_early("scan", "--json", str(tmp_path))
    assert len(head) == 10
    assert err == "", err
    assert code == 0


def test_predict_to_stdout_into_a_closed_pipe_ends_quietly(tmp_path, deep_tree):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.random.default_rng(5).normal(size=(200_000, 8)))  # ~1.2 MB of CSV lines
    head, err, code = closed_early("predict", str(deep_tree), str(rows), "-o", "-")
    assert len(head) == 10
    assert err == "", err
    assert code == 0
