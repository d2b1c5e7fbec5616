"""Model cards (`skvault card`, `skvault.card`): every section present with the record's
values, pictures that are well-formed SVG with scikit-learn's numbers, nothing fetched,
text from the file shown as text, and the page in a real browser at 375 and 1280 px.

Pages are parsed with html5lib in strict mode: a parse error fails the test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import html5lib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._pprint import _changed_params

import skvault
from browser import browser  # noqa: F401  (the session fixture)

CLI = [sys.executable, "-m", "skvault"]
EVIL = "<script>alert(1)</script>"
SECTIONS = ("summary", "model", "input", "outputs", "metrics", "pictures", "validation", "environment", "provenance")


def parse(html: str):
    """The page as an element tree; any HTML parse error fails."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parse(html)


def text(el) -> str:
    return "".join(el.itertext()).strip()


def table_rows(doc, table_id: str) -> list[list[str]]:
    table = doc.find(f".//table[@id='{table_id}']")
    assert table is not None, table_id
    return [[text(td) for td in tr.findall("td")] for tr in table.findall("./tbody/tr")]


def svgs(html: str) -> list[ET.Element]:
    """Every inline <svg>, parsed as XML (well-formed or the test fails)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            EVIL: rng.normal(0, 1, n),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
        }
    )
    y = np.where(X["age"] + 5 * X[EVIL] > 40, "yes", "no")
    return X, y


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory, frame):
    X, y = frame
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), ["age", EVIL]), ("cat", OneHotEncoder(), ["colour"])]
                ),
            ),
            ("forest", RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0)),
        ]
    ).fit(X, y)
    path = tmp_path_factory.mktemp("card") / "pipe.skv"
    skvault.dump(
        model,
        path,
        metrics={"accuracy": 0.91, EVIL: 1},
        metadata={
            "owner": EVIL,
            "card": {"title": f"Churn {EVIL}", "intended_use": f"Scoring *customers*. {EVIL}", "limitations": "- small data"},
        },
        validation=X.iloc[:20],
    )
    return path, model


def test_every_section_is_there_with_the_records_values(pipeline_file):
    path, model = pipeline_file
    html = skvault.card(path)
    doc = parse(html)
    md = skvault.inspect(path)["metadata"]
    for section in SECTIONS:
        assert doc.find(f".//section[@id='{section}']") is not None, section
    assert text(doc.find(".//h1")) == md["user"]["card"]["title"]
    assert md["estimator"]["class"] in text(doc.find(".//section[@id='summary']"))
    steps = table_rows(doc, "steps")
    assert [r[0] for r in steps] == [s["name"] for s in md["estimator"]["steps"]]
    # Each step's parameters that differ from the defaults, as scikit-learn's repr finds them,
    # but a ColumnTransformer's members: they are listed with their step, with their columns.
    assert doc.find(".//table[@id='params']") is None  # the Pipeline's own are all defaults
    for i, (_, step) in enumerate(model.steps, 1):
        changed = set(_changed_params(step)) - {"transformers", "transformer_list"}
        table = doc.find(f".//table[@id='params-{i}']")
        assert (set() if table is None else {r[0] for r in table_rows(doc, f"params-{i}")}) == changed
    prep = model.steps[0][1]
    for name, transformer, columns in prep.transformers:
        cls = f"{type(transformer).__module__}.{type(transformer).__qualname__}"
        listed = json.dumps(columns, separators=(",", ":"))
        assert f"{name}: {cls} (columns {listed})" in steps[0][1], steps[0][1]
    schema = md["input_schema"]["columns"]
    rows = table_rows(doc, "schema")
    assert [r[0] for r in rows] == [c["name"] for c in schema]
    assert [r[2] for r in rows] == [c["kind"] for c in schema]
    assert rows[2][3] == ", ".join(schema[2]["categories"])
    assert [text(li) for li in doc.findall(".//ul[@id='classes']/li")] == [str(c) for c in model.classes_]
    assert dict(map(tuple, table_rows(doc, "metrics-table"))) == {k: str(v) for k, v in md["metrics"].items()}
    shown = text(doc.find(".//pre[@id='requirements']")).splitlines()
    pinned = skvault.requirements(path).strip().splitlines()
    assert shown[1:] == pinned[1:] and shown[0] == pinned[0].replace(str(path), path.name)
    raw = path.read_bytes()
    assert text(doc.find(".//dd[@id='manifest-digest']")) == raw[24:56].hex()
    assert text(doc.find(".//span[@id='validation-status']")) == "pass"
    assert text(doc.find(".//span[@id='signature-status']")) == "unsigned"
    assert "Intended use" in [text(h) for h in doc.findall(".//h2")]


def test_pictures_are_well_formed_svg_and_the_pipeline_has_its_steps(pipeline_file):
    path, _ = pipeline_file
    html = skvault.card(path)
    pictures = svgs(html)
    assert {p.get("class").split()[-1] for p in pictures} >= {"pipeline", "bars", "histogram"}
    diagram = next(p for p in pictures if "pipeline" in p.get("class"))
    labels = [t.text for t in diagram.iter("text")]
    assert "prep" in labels and "forest" in labels and "num" in labels and "cat" in labels


def test_nothing_is_fetched_and_no_script_runs(pipeline_file):
    html = skvault.card(pipeline_file[0])
    doc = parse(html)
    assert doc.findall(".//script") == [] and doc.findall(".//link") == [] and doc.findall(".//img") == []
    assert not re.search(r"\b(src|href)\s*=", html.replace('href="#', "")), "a card references no resource"
    assert "url(http" not in html and "@import" not in html and "//" not in re.sub(r"<style>.*?</style>", "", html, flags=re.S).replace("://", "")


def test_text_from_the_file_is_shown_as_text(pipeline_file, tmp_path):
    path, _ = pipeline_file
    sections = tmp_path / "notes.md"
    sections.write_text(f"# Caveats\n\n{EVIL} and <img src=x onerror=alert(2)>\n")
    html = skvault.card(path, sections=sections.read_text(), name=EVIL)
    doc = parse(html)
    assert doc.findall(".//script") == [] and doc.findall(".//img") == []
    page = text(doc.find(".//body"))
    # The feature name (schema, picture labels), the metric name, the user metadata, the
    # title and the name, the card section and the sections file: all text.
    assert page.count(EVIL) >= 6
    assert "<img src=x onerror=alert(2)>" in page
    assert "Caveats" in [text(h) for h in doc.findall(".//h2")]


def _importances(html: str, chart: str) -> dict[str, float]:
    svg = next(p for p in svgs(html) if p.get("aria-label") == chart)
    return {r.get("data-label"): float(r.get("data-value")) for r in svg.iter("rect")}


@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeRegressor(max_depth=5, random_state=0),
        lambda: ExtraTreesRegressor(n_estimators=6, max_depth=4, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0),
    ],
    ids=["tree", "extra-trees", "gradient-boosting"],
)
def test_feature_importances_are_scikit_learns(make, tmp_path):
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(150, 6)), columns=[f"f{i}" for i in range(6)])
    y = X["f0"] * 3 + X["f3"] + rng.normal(size=150)
    model = make()
    model.fit(X, (y > 0).astype(int) if isinstance(model, GradientBoostingClassifier) else y)
    path = tmp_path / "m.skv"
    skvault.dump(model, path)
    shown = _importances(skvault.card(path), "Feature importances")
    expected = dict(zip(X.columns, model.feature_importances_))
    top = sorted(expected, key=lambda k: -expected[k])[: len(shown)]
    assert set(shown) == set(top)
    for name, value in shown.items():
        assert value == pytest.approx(expected[name], rel=1e-12, abs=1e-15)


def test_forest_shapes_and_linear_coefficients(pipeline_file, tmp_path):
    _, model = pipeline_file
    html = skvault.card(pipeline_file[0])
    forest = model.named_steps["forest"]
    depths = svgs(html)
    hist = next(p for p in depths if p.get("aria-label") == "Tree depths")
    counted = {r.get("data-label"): int(r.get("data-value")) for r in hist.iter("rect")}
    expected = {}
    for est in forest.estimators_:
        expected[str(est.tree_.max_depth)] = expected.get(str(est.tree_.max_depth), 0) + 1
    assert {k: v for k, v in counted.items() if v} == expected

    X = np.random.default_rng(2).normal(size=(90, 4))
    y = np.repeat([0, 1, 2], 30)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path / "lr.skv"
    skvault.dump(lr, path)
    coefs = _importances(skvault.card(path), "Coefficient magnitudes")
    want = np.abs(lr.coef_).mean(axis=0)
    assert coefs == pytest.approx({f"x{i}": want[i] for i in range(4)}, rel=1e-12)


def test_markdown_card_has_every_section_and_escapes_html(pipeline_file):
    md_text = skvault.card(pipeline_file[0], format="md")
    for heading in ("## What it is", "## Input", "## Outputs", "## Metrics", "## Validation rows", "## Environment", "## Provenance", "## Intended use"):
        assert heading in md_text, heading
    assert "<script" not in md_text and "&lt;script&gt;" in md_text
    assert "Scoring *customers*." in md_text  # the user's Markdown stays Markdown


def test_cli_writes_the_same_card_and_refuses_bad_options(pipeline_file, tmp_path):
    path, _ = pipeline_file
    out = tmp_path / "card.html"
    done = subprocess.run([*CLI, "card", str(path), "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == skvault.card(path)
    md_out = tmp_path / "card.md"
    assert subprocess.run([*CLI, "card", str(path), "-o", str(md_out)]).returncode == 0
    assert md_out.read_text() == skvault.card(path, format="md")
    bad = subprocess.run([*CLI, "card", str(path), "--format", "pdf"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown card format" in bad.stderr
    missing = subprocess.run([*CLI, "card", str(tmp_path / "nope.skv")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.skv" in missing.stderr
    with pytest.raises(skvault.InvalidOptionError):
        skvault.card(path, format="pdf")


def test_signature_status_is_honest(pipeline_file, tmp_path):
    path, _ = pipeline_file
    signed = tmp_path / "signed.skv"
    signed.write_bytes(path.read_bytes())
    key = tmp_path / "key"
    assert subprocess.run([*CLI, "keygen", "--out", str(key)], capture_output=True).returncode == 0
    priv, pub = key, tmp_path / "key.pub"
    done = subprocess.run([*CLI, "sign", str(signed), "--key", str(priv)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def status(**kw):
        return text(parse(skvault.card(signed, **kw)).find(".//span[@id='signature-status']"))

    assert status() == "unverified"
    assert status(pubkeys=[pub]) == "verified"
    signed.write_bytes(signed.read_bytes()[:-1] + b"\0")  # the signature no longer matches
    assert status(pubkeys=[pub]) == "refused"

    # A signature embedded in the file is found where load finds it.
    embedded = tmp_path / "embedded.skv"
    embedded.write_bytes(path.read_bytes())
    done = subprocess.run([*CLI, "sign", str(embedded), "--key", str(priv), "--embed"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "embedded.skv.sig").exists()
    doc = parse(skvault.card(embedded, pubkeys=[pub]))
    assert text(doc.find(".//span[@id='signature-status']")) == "verified"
    assert "embedded in the file" in text(doc.find(".//section[@id='summary']"))


@pytest.mark.parametrize("width", [375, 1280])
def test_card_in_a_real_browser(pipeline_file, tmp_path, browser, width):  # noqa: F811
    out = tmp_path / "card.html"
    out.write_text(skvault.card(pipeline_file[0]))
    url = out.as_uri()
    keys = ["#card-title", "#signature-status", "#chart-pipeline svg", "#chart-importances svg", "#params-2", "#schema", "#requirements"]
    report = browser.open_page(url, width, keys, shot="card")
    assert report.errors == []
    assert report.requests == [url]
    assert all(report.visible.values()), report.visible
    # A page wider than the window makes a phone zoom out (or scroll sideways).
    assert report.viewport_width == width and report.scroll_width <= width, report.too_wide
    assert report.screenshot.stat().st_size > 10_000


def test_card_prints(pipeline_file, tmp_path, browser):  # noqa: F811
    """Printed, every section is there and no table hides its columns in a scroll box."""
    out = tmp_path / "card.html"
    out.write_text(skvault.card(pipeline_file[0]))
    printed = browser.print_page(out.as_uri(), "card-print")
    assert printed["sections"] == [] and printed["scrolling"] == 0
    assert printed["pdf"].startswith(b"%PDF") and printed["pdf"].count(b"/Type /Page") >= 2


def test_converted_files_and_models_native_inference_does_not_run(tmp_path):
    """A converted pickle's card shows what convert recorded; a model that native inference
    does not run says its validation rows were not re-checked instead of claiming a pass."""
    import pickle

    from sklearn.svm import SVC

    X = np.random.default_rng(3).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    svc = SVC().fit(X, y)
    src = tmp_path / "svc.pkl"
    src.write_bytes(pickle.dumps(svc))
    converted = tmp_path / "svc.skv"
    skvault.convert(src, converted)
    doc = parse(skvault.card(converted))
    record = skvault.inspect(converted)["metadata"]["converted_from"]
    shown = text(doc.find(".//pre[@id='converted-from']"))
    assert json.loads(shown) == record
    # convert reads a pickle without running it: no get_params, so no parameter list.
    assert text(doc.find(".//p[@id='params-note']")) == "The file records no parameters."

    saved = tmp_path / "svc-saved.skv"
    skvault.dump(svc, saved, validation=X[:5])
    status = text(parse(skvault.card(saved)).find(".//span[@id='validation-status']"))
    assert status == "unchecked"
