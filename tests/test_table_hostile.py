"""Hostile inputs to `skvault predict`'s readers (skvault-table), each run in a limited child
(`hostile.run_limited`: no core dump, 4 GiB address space, a timeout), so that a crash, a hang
or an allocation bomb fails the test instead of taking the test process down."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skvault
from hostile import run_limited

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "corpus" / "table"


def _npy(descr: str, shape: str) -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


CASES = [
    # An element size of 0 made any shape match an empty body, then rows x columns were reserved.
    ("zero-size dtype.npy", _npy("<f0", "(1073741824, 1048576)"), "not numeric"),
    ("huge shape.npy", _npy("<f8", "(4294967296, 4294967296)"), "too large"),
    # Eight bytes in a page header declared 2^31 booleans that the parquet crate skips one by one.
    ("bool list page header.parquet", (SEEDS / "regress-bool-list-page-header.bin").read_bytes(), "Parquet"),
    ("walk differential.parquet", (SEEDS / "regress-bool-list-differential.bin").read_bytes(), "Parquet"),
]


@pytest.mark.parametrize("name, data, fragment", CASES, ids=[c[0] for c in CASES])
def test_hostile_inputs_are_refused_quickly_and_write_nothing(tmp_path, name, data, fragment):
    X = np.random.default_rng(0).random((20, 3))
    model = tmp_path / "m.skv"
    skvault.dump(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), model)
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.npy"
    result = run_limited([sys.executable, "-m", "skvault", "predict", str(model), str(src), "-o", str(out)], timeout=30)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2, (result.returncode, stderr[-2000:])
    assert fragment in stderr, stderr
    assert not out.exists()
