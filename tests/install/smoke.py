"""Install the built wheel the way a user does and check that it works on its own.

    python tests/install/smoke.py dist/skvault-....whl

Creates a clean venv in a temporary folder, installs only the wheel with its declared
dependencies (``WHEEL[sklearn]``, no dev requirements), and from outside the repository (so
that its python/ folder cannot be imported) runs the command line and a dump/load/predict of a
small real model inside that venv. Then `pip install -r` of `skvault requirements` in a second,
throw-away venv must reproduce the saving venv's scikit-learn, numpy and scipy. A missing
dependency, a file left out of the wheel or a help text pointing nowhere fails it (exit 1).

`make test-install` runs it; pip's cache makes the installs fast after the first run.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import venv

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = ("scikit-learn", "numpy", "scipy")


def run(cmd: list[str], cwd: pathlib.Path, **kwargs) -> subprocess.CompletedProcess[str]:
    """`cmd`, which must succeed; its output is shown when it does not."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"FAILED ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_venv(path: pathlib.Path) -> pathlib.Path:
    venv.create(path, with_pip=True, clear=True)
    return path / "bin" / "python"


def inside(work: pathlib.Path) -> None:
    """The checks that run in the installed venv, with `work` as the current folder."""
    import numpy as np
    import skvault
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    site = pathlib.Path(skvault.__file__).resolve().parent
    assert site.is_relative_to(pathlib.Path(sys.prefix).resolve()), f"skvault imported from {site}"

    command = str(pathlib.Path(sys.executable).parent / "skvault")

    def cli(*args: str) -> str:
        proc = subprocess.run([command, *args], capture_output=True, text=True)
        assert proc.returncode == 0, f"skvault {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        return proc.stdout

    assert "skvault docs" in cli("--help")
    assert cli("--version").split() == ["skvault", skvault.__version__]

    X, y = make_classification(200, 6, random_state=0)
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    skvault.dump(model, "model.skv")
    loaded = skvault.load("model.skv")
    assert (loaded.predict(X) == model.predict(X)).all()
    assert (skvault.native.load("model.skv").predict(X) == model.predict(X)).all()

    assert "environment: " in cli("inspect", "model.skv")
    assert ": OK (" in cli("verify", "model.skv")
    np.save("X.npy", X)
    cli("predict", "model.skv", "X.npy", "-o", "pred.npy")
    assert (np.load("pred.npy") == model.predict(X)).all()

    (work / "requirements.txt").write_text(cli("requirements", "model.skv"))
    assert skvault.requirements("model.skv") == (work / "requirements.txt").read_text()
    from importlib import metadata

    print(json.dumps({d: metadata.version(d) for d in CORE}))


def check_docs(python: pathlib.Path, work: pathlib.Path) -> None:
    """Every page `skvault docs` lists is the repository's page, and every help text that
    points to a page points to one that the installed command has."""
    skvault = str(python.parent / "skvault")
    listing = run([skvault, "docs"], work).stdout
    topics = [line.split()[0] for line in listing.splitlines() if line.startswith("  ")]
    assert topics, listing
    for topic in topics:
        text = run([skvault, "docs", topic], work).stdout
        assert text == (ROOT / "docs" / f"{topic.upper()}.md").read_text(), topic
    for sub in ("registry", "registry gc"):
        help_text = run([skvault, *sub.split(), "--help"], work).stdout
        assert "docs/" not in help_text and ".md" not in help_text, help_text
        assert "skvault docs registry" in help_text and "registry" in topics


def check_packaged_files(python: pathlib.Path, work: pathlib.Path) -> None:
    """Each file of the package in the repository is in the installed package."""
    where = run([str(python), "-c", "import skvault, os; print(os.path.dirname(skvault.__file__))"], work)
    installed = pathlib.Path(where.stdout.strip())
    source = ROOT / "python" / "skvault"
    missing = [
        str(p.relative_to(source))
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not (installed / p.relative_to(source)).exists()
    ]
    assert not missing, f"not in the wheel: {missing}"


def main() -> None:
    if sys.argv[1:2] == ["--inside"]:
        inside(pathlib.Path.cwd())
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    wheel = pathlib.Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="skvault-install-") as tmp:
        tmp = pathlib.Path(tmp)
        work = tmp / "work"
        work.mkdir()
        python = make_venv(tmp / "venv")
        run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[sklearn]"], work)
        check_packaged_files(python, work)
        saved = json.loads(run([str(python), str(ROOT / "tests/install/smoke.py"), "--inside"], work).stdout)
        check_docs(python, work)

        # A throw-away venv from the printed requirements has the saving venv's versions.
        other = make_venv(tmp / "from-requirements")
        run([str(other), "-m", "pip", "install", "--quiet", "-r", "requirements.txt"], work)
        code = f"import json; from importlib import metadata; print(json.dumps({{d: metadata.version(d) for d in {CORE!r}}}))"
        rebuilt = json.loads(run([str(other), "-c", code], work).stdout)
        assert rebuilt == saved, f"pip install -r gave {rebuilt}, the model was saved with {saved}"
        print(f"install smoke test passed: {wheel.name} ({', '.join(f'{k} {v}' for k, v in saved.items())})")


if __name__ == "__main__":
    main()
