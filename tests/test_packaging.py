"""What a pip user gets besides the code: the license the metadata declares, no stray files."""

from __future__ import annotations

import pathlib
import re
import subprocess
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_license_file_is_the_license_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_no_build_logs_or_artefacts_are_tracked():
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    stray = [p for p in tracked if p.endswith((".log", ".so", ".whl", ".pyc")) or p.startswith("dist/")]
    assert stray == []


def test_no_c_crypto_library_is_built():
    """A source install compiles every dependency: aws-lc (object_store's default TLS crypto)
    alone was the largest C build of it. ring replaces it (docs/ARCHITECTURE.md, "Build
    profile")."""
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    names = {package["name"] for package in lock["package"]}
    assert {"aws-lc-sys", "aws-lc-rs"} & names == set()
    assert "ring" in names


def test_the_sdist_carries_the_pages_that_skvault_docs_compiles_in(tmp_path):
    """crates/skvault-cli/src/docs.rs includes docs/*.md: a build from the sdist needs them."""
    import sys
    import tarfile

    maturin = pathlib.Path(sys.executable).parent / "maturin"
    subprocess.run([str(maturin), "sdist", "--out", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    (sdist,) = tmp_path.glob("skvault-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    source = (ROOT / "crates/skvault-cli/src/docs.rs").read_text()
    pages = set(re.findall(r'include_str!\("\.\./\.\./\.\./(docs/[^"]+)"\)', source))
    assert len(pages) >= 7 and pages <= names, sorted(pages - names)


def test_import_skvault_and_the_command_line_do_not_import_numpy():
    """`skvault ...` starts in tens of milliseconds: `import skvault` imports the extension
    and the exceptions only; the API modules (and numpy) load on first use."""
    import subprocess
    import sys

    code = (
        "import sys, skvault\n"
        "from skvault.__main__ import main\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
        "skvault.dump\n"
        "assert 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_is_imported_by_skvault_dask_only():
    """Dask is an optional extra (`skvault[dask]`): neither `import skvault` nor native
    inference, nor pickling a native model, imports it."""
    import subprocess
    import sys

    code = (
        "import sys, skvault, skvault.native\n"
        "assert not [m for m in sys.modules if m == 'dask' or m.startswith(('dask.', 'distributed'))]\n"
        "import skvault.dask\n"
        "assert 'dask' not in sys.modules, 'skvault.dask imports dask only when predict runs'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
