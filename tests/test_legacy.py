"""`skvault.scan` / `skvault.convert` and `skvault scan` / `skvault convert` on the corpus that
`crates/skvault-pickle/tests/fixtures/make_fixtures.py` builds: real fitted estimators pickled
with protocols 0-5 and joblib (compressed or not), and malicious pickles by every route the
corpus knows. Nothing here unpickles a malicious file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

import skvault

ROOT = Path(__file__).resolve().parent.parent
MAKE_FIXTURES = ROOT / "crates" / "skvault-pickle" / "tests" / "fixtures" / "make_fixtures.py"
ESTIMATORS = {"logreg", "rf", "pipeline", "hgb", "knn", "gridsearch"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(MAKE_FIXTURES), str(out)], check=True, capture_output=True)
    index = json.loads((out / "index.json").read_text())["files"]
    return out, index


def cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skvault", *map(str, args)], capture_output=True, text=True
    )


def test_every_corpus_file_gets_its_expected_verdict(corpus):
    folder, index = corpus
    wrong = []
    for entry in index:
        report = skvault.scan(folder / entry["file"])
        if report.verdict != entry["expect"]:
            wrong.append(f"{entry['file']}: {report.verdict}, expected {entry['expect']}")
    assert not wrong, "\n".join(wrong)
    malicious = [e for e in index if e["expect"] == "unsafe"]
    assert len(malicious) >= 80, "the corpus lost its malicious files"
    for p in range(6):
        assert any(f".p{p}." in e["file"] for e in malicious), f"no malicious protocol-{p} pickle"


def test_malicious_reports_name_the_dangerous_callable(corpus):
    folder, _ = corpus
    report = skvault.scan(folder / "malicious" / "os_system.p0.pkl")
    assert report.verdict == "unsafe" and not report.is_safe
    assert report.dangerous == ["posix.system"] or report.dangerous == ["os.system"]
    carrier = skvault.scan(folder / "malicious" / "sklearn_estimator_with_payload.p4.pkl")
    assert carrier.verdict == "unsafe"
    assert any(g.kind == "safe" and g.name == "LogisticRegression" for g in carrier.globals)


def test_scanning_a_folder_returns_one_report_per_file(corpus):
    folder, index = corpus
    reports = skvault.scan(folder / "malicious")
    assert isinstance(reports, list)
    assert len(reports) == sum(1 for e in index if e["file"].startswith("malicious/"))
    assert all(r.verdict == "unsafe" for r in reports)


def test_scan_rates_skv_files_by_the_names_they_need(corpus, tmp_path):
    folder, _ = corpus
    assert skvault.scan(folder / "skv" / "rf.skv").verdict == "safe"
    skvault.dump(types.SimpleNamespace(a=1), tmp_path / "od.skv")
    report = skvault.scan(tmp_path / "od.skv")
    assert report.verdict == "unknown" and report.unknown == ["types.SimpleNamespace"]
    assert skvault.scan(tmp_path / "od.skv", trusted=["types.SimpleNamespace"]).verdict == "safe"
    damaged = (tmp_path / "od.skv").read_bytes()[:-3]
    (tmp_path / "bad.skv").write_bytes(damaged)
    bad = skvault.scan(tmp_path / "bad.skv")
    assert bad.verdict == "unsafe" and "skv" in bad.error


def test_scan_of_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        skvault.scan(tmp_path / "nope.pkl")


def test_cli_scan_exit_codes_and_json(corpus, tmp_path):
    folder, index = corpus
    benign = cli("scan", folder / "benign" / "rf.p4.pkl", folder / "benign" / "hgb.joblib")
    assert benign.returncode == 0, benign.stdout + benign.stderr
    assert "SAFE" in benign.stdout
    bad = cli("scan", "--json", folder / "malicious")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["summary"]["unsafe"] == len(doc["files"]) > 0
    assert all(f["verdict"] == "unsafe" for f in doc["files"])
    missing = cli("scan", tmp_path / "missing.pkl")
    assert missing.returncode == 2 and "ERROR" in missing.stdout
    # Unsafe wins over errors: a security gate must see the dangerous file.
    both = cli("scan", tmp_path / "missing.pkl", folder / "malicious" / "os_system.p2.pkl")
    assert both.returncode == 1
    unknown = cli("scan", folder / "benign" / "namespace.p4.pkl")
    assert unknown.returncode == 1 and "unknown" in unknown.stdout
    trusted = cli("scan", "--trust", "types.SimpleNamespace", folder / "benign" / "namespace.p4.pkl")
    assert trusted.returncode == 0, trusted.stdout


def test_cli_scan_skips_text_files_in_folders_but_not_when_named(tmp_path, corpus):
    folder, _ = corpus
    (tmp_path / "notes.py").write_text("import numpy as np\nprint(np.pi)\n")
    (tmp_path / "model.pkl").write_bytes((folder / "benign" / "rf.p2.pkl").read_bytes())
    walked = cli("scan", tmp_path)
    assert walked.returncode == 0, walked.stdout
    assert "1 skipped" in walked.stdout
    named = cli("scan", tmp_path / "notes.py")
    assert named.returncode == 1  # named explicitly: judged as the pickle it is not


def _compare(a, b, X):
    assert type(a) is type(b)
    for method in ("predict", "predict_proba", "decision_function", "transform"):
        if hasattr(a, method):
            np.testing.assert_array_equal(getattr(a, method)(X), getattr(b, method)(X))


def test_benign_files_convert_and_predict_identically(corpus, tmp_path):
    from sklearn.datasets import make_classification

    folder, index = corpus
    X, _ = make_classification(n_samples=80, n_features=6, n_informative=4, random_state=0)
    converted = 0
    for entry in index:
        name = Path(entry["file"]).name.split(".")[0]
        if entry["expect"] != "safe" or name not in ESTIMATORS:
            continue
        src = folder / entry["file"]
        dst = tmp_path / (src.name + ".skv")
        done = skvault.convert(src, dst, compress="zstd" if converted % 2 else None)
        assert done.path == dst and done.report.verdict == "safe"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            original = joblib.load(src)  # the test's own benign file
        _compare(original, skvault.load(dst), X)
        converted += 1
    assert converted >= 40


def test_convert_refuses_malicious_files_and_writes_nothing(corpus, tmp_path):
    folder, index = corpus
    for entry in index:
        if entry["expect"] != "unsafe":
            continue
        dst = tmp_path / "out.skv"
        with pytest.raises(skvault.UnsafeFileError) as info:
            skvault.convert(folder / entry["file"], dst)
        assert info.value.report.verdict == "unsafe", entry["file"]
        assert not dst.exists(), entry["file"]
    assert list(tmp_path.iterdir()) == []


def test_convert_of_untrusted_names_needs_trust(corpus, tmp_path):
    folder, _ = corpus
    src, dst = folder / "benign" / "namespace.p3.pkl", tmp_path / "ns.skv"
    with pytest.raises(skvault.UntrustedTypesError) as info:
        skvault.convert(src, dst)
    assert info.value.names == ["types.SimpleNamespace"]
    assert not dst.exists()
    skvault.convert(src, dst, trusted=["types.SimpleNamespace"])
    loaded = skvault.load(dst, trusted=["types.SimpleNamespace"])
    assert loaded == types.SimpleNamespace(a=1, b=[2])
    with pytest.raises(skvault.SkvaultError):
        skvault.convert(src, dst, trusted=["os.system"])  # dangerous names cannot be trusted


def test_convert_bad_inputs(corpus, tmp_path):
    folder, _ = corpus
    with pytest.raises(FileNotFoundError):
        skvault.convert(tmp_path / "missing.pkl", tmp_path / "x.skv")
    with pytest.raises(skvault.FormatError, match="already a .skv"):
        skvault.convert(folder / "skv" / "rf.skv", tmp_path / "x.skv")
    with pytest.raises(FileNotFoundError):
        skvault.convert(folder / "benign" / "rf.p4.pkl", tmp_path / "no" / "such" / "dir.skv")
    truncated = tmp_path / "t.pkl"
    truncated.write_bytes((folder / "benign" / "rf.p4.pkl").read_bytes()[:-40])
    with pytest.raises(skvault.UnsafeFileError, match="cannot be read"):
        skvault.convert(truncated, tmp_path / "t.skv")
    with pytest.raises(ValueError):
        skvault.convert(folder / "benign" / "rf.p4.pkl", tmp_path / "x.skv", compress="gzip")
    assert not (tmp_path / "x.skv").exists() and not (tmp_path / "t.skv").exists()


def test_cli_convert_level_archive(tmp_path):
    # `--level archive` is dump(level="archive") on the command line: zstd's archival level,
    # a smaller file that loads to the same model; with another codec it is refused.
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.default_rng(0).normal(size=(2000, 6))
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, X[:, 0] > 0)
    joblib.dump(model, tmp_path / "m.joblib")
    default = cli("convert", tmp_path / "m.joblib", tmp_path / "d.skv", "--compress", "zstd")
    archive = cli(
        "convert", tmp_path / "m.joblib", tmp_path / "a.skv", "--compress", "zstd", "--level", "archive"
    )
    assert default.returncode == 0 and archive.returncode == 0, (default.stderr, archive.stderr)
    assert (tmp_path / "a.skv").stat().st_size < (tmp_path / "d.skv").stat().st_size
    back = skvault.load(tmp_path / "a.skv")
    assert np.array_equal(back.predict_proba(X), model.predict_proba(X))
    refused = cli("convert", tmp_path / "m.joblib", tmp_path / "l.skv", "--compress", "lz4", "--level", "archive")
    assert refused.returncode == 2 and "--level archive is a zstd level" in refused.stderr
    assert not (tmp_path / "l.skv").exists()
    bad = cli("convert", tmp_path / "m.joblib", tmp_path / "b.skv", "--compress", "zstd", "--level", "max")
    assert bad.returncode == 2 and "neither a number nor" in bad.stderr
    # The Python API takes the same word.
    skvault.convert(tmp_path / "m.joblib", tmp_path / "p.skv", level="archive")
    assert (tmp_path / "p.skv").stat().st_size < (tmp_path / "d.skv").stat().st_size
    with pytest.raises(skvault.InvalidOptionError, match="zstd setting"):
        skvault.convert(tmp_path / "m.joblib", tmp_path / "q.skv", compress="lz4", level="archive")


def test_cli_convert(corpus, tmp_path):
    folder, _ = corpus
    ok = cli("convert", folder / "benign" / "pipeline.joblib", tmp_path / "p.skv", "--compress", "zstd")
    assert ok.returncode == 0, ok.stderr
    assert "converted" in ok.stdout
    assert skvault.inspect(tmp_path / "p.skv")["arrays"]
    refused = cli("convert", folder / "malicious" / "os_system.p2.pkl", tmp_path / "e.skv")
    assert refused.returncode == 1 and "refused" in refused.stderr and "system" in refused.stderr
    assert not (tmp_path / "e.skv").exists()
    error = cli("convert", tmp_path / "missing.pkl", tmp_path / "m.skv")
    assert error.returncode == 2
