"""The registry page (`skvault serve --ui --registry URI`): models, versions with metrics and
tags, aliases and their history, a metric chart, each version's card and a diff, read from
a folder and from the S3 test server; the token login; the pages in a real browser.

Pages are parsed with html5lib in strict mode: a parse error fails the test.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import xml.etree.ElementTree as ET

import html5lib
import numpy as np
import pytest
from serve_helpers import Server, ServerFailed
from sklearn.linear_model import LogisticRegression

from browser import browser  # noqa: F401  (the session fixture)

EVIL = "<script>alert(1)</script>"


def parse(html: bytes):
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html.decode())


def text(el) -> str:
    return "".join(el.itertext()).strip()


def rows(doc, table_id: str) -> list[list[str]]:
    table = doc.find(f".//table[@id='{table_id}']")
    assert table is not None, table_id
    return [[text(td) for td in tr.findall("td")] for tr in table.findall("./tbody/tr")]


def populate(reg) -> list[LogisticRegression]:
    """Three versions of `churn` with metrics and tags, and an alias moved twice."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    models = []
    for i, (c, auc) in enumerate([(1.0, 0.81), (0.5, 0.86), (0.1, 0.84)]):
        m = LogisticRegression(C=c).fit(X, y)
        reg.register(m, "churn", metrics={"auc": auc}, tags={"run": f"run-{i}", "note": EVIL}, metadata={"owner": EVIL})
        models.append(m)
    reg.set_alias("churn", "champion", 1)
    reg.set_alias("churn", "champion", 2)
    reg.set_alias("churn", "staging", 3)
    reg.delete_alias("churn", "staging")
    return models


def serve_ui(backend, *extra: str) -> Server:
    return Server("--ui", "--registry", backend.uri, "--log-format", "off", *extra, env=backend.child_env())


def get(server: Server, path: str, **headers: str):
    status, h, body = server.request("GET", path, headers=headers)
    return status, h, body


def test_pages_show_the_registry(backend):
    reg = backend.open()
    populate(reg)
    server = serve_ui(backend)
    try:
        status, headers, body = get(server, "/ui")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "script-src" not in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]
        doc = parse(body)
        assert rows(doc, "models") == [["churn", "3", rows(doc, "models")[0][2], "champion → v2"]]

        status, _, body = get(server, "/ui/models/churn")
        assert status == 200
        doc = parse(body)
        versions = rows(doc, "versions-table")
        infos = {v["version"]: v for v in reg.versions("churn")}
        assert [r[0] for r in versions] == ["v3", "v2", "v1"]
        for r in versions:
            info = infos[int(r[0][1:])]
            assert r[1] == info["created_at"]
            assert r[2] == f"auc = {info['metrics']['auc']}"
            assert EVIL in r[3]  # a tag value, shown as text
        assert doc.findall(".//script") == []
        aliases = {r[0]: r for r in rows(doc, "aliases-table")}
        assert aliases["champion"][1] == "v2" and re.findall(r"v\d", aliases["champion"][2]) == ["v2", "v1"]
        assert aliases["staging"][1] == "deleted" and aliases["staging"][2].startswith("deleted")
        svg = re.search(rb"<svg\b.*?</svg>", body, flags=re.S).group(0)
        points = [c.get("cx") for c in ET.fromstring(svg).iter("circle")]
        assert len(points) == 3  # one per version with the metric

        status, _, body = get(server, "/ui/models/churn/versions/2")
        assert status == 200
        doc = parse(body)
        assert doc.find(".//section[@id='provenance']") is not None
        assert "run-1" in text(doc.find(".//section[@id='registry-version']"))
        lineage = text(doc.find(".//pre[@id='lineage']"))
        assert infos[2]["lineage"]["source_blake3"] in lineage
        assert doc.find(".//figure[@id='chart-coefficients']") is not None
        assert doc.findall(".//script") == []

        status, _, body = get(server, "/ui/models/churn/diff?a=1&b=2")
        assert status == 200
        doc = parse(body)
        section = doc.find(".//section[@id='diff-params']")
        changed = [[text(td) for td in tr.findall("td")] for tr in section.findall(".//tbody/tr")]
        assert ["C", "1.0", "0.5"] in changed
        arrays = doc.find(".//section[@id='diff-arrays']")
        assert any("coef_" in text(tr) for tr in arrays.findall(".//tbody/tr"))

        for path, want in [("/ui/models/nope", 404), ("/ui/models/churn/versions/9", 404), ("/ui/models/churn/versions/x", 404), ("/ui/models/churn/diff?a=1", 400)]:
            status, headers, body = get(server, path)
            assert status == want, path
            assert headers["content-type"].startswith("text/html")
            parse(body)
    finally:
        server.stop()


def test_a_token_is_asked_once_and_kept_in_a_strict_httponly_cookie(tmp_path):
    from registry_backends import Backend

    backend = Backend("folder", tmp_path, None)
    populate(backend.open())
    tokens = tmp_path / "tokens"
    tokens.write_text("a-long-enough-token-0123456789\n")
    os.chmod(tokens, 0o600)
    server = serve_ui(backend, "--token-file", str(tokens))
    try:
        status, headers, _ = get(server, "/ui/models/churn")
        assert status == 303 and headers["location"] == "/ui/login"
        status, _, body = get(server, "/ui/login")
        assert status == 200 and parse(body).find(".//input[@name='token']") is not None
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = server.request("POST", "/ui/login", urllib.parse.urlencode({"token": "wrong-token-0123456789"}), form)
        assert status == 401 and parse(body).find(".//*[@id='login-failed']") is not None
        status, headers, _ = server.request("POST", "/ui/login", urllib.parse.urlencode({"token": "a-long-enough-token-0123456789"}), form)
        assert status == 303 and headers["location"] == "/ui"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
        assert "a-long-enough-token" not in cookie  # the token's digest, not the token
        value = cookie.split(";")[0]
        assert get(server, "/ui/models/churn", Cookie=value)[0] == 200
        assert get(server, "/ui/models/churn", Authorization="Bearer a-long-enough-token-0123456789")[0] == 200
        for forged in ("0" * 64, "zz" * 32, value.split("=")[1][:-2], "é" * 32):
            assert get(server, "/ui/models/churn", Cookie="skvault_ui=" + forged)[0] == 303, forged
        # The cookie opens the registry page only, never the API.
        assert get(server, "/v1/models", Cookie=value)[0] == 401
    finally:
        server.stop()


def test_ui_needs_a_registry():
    with pytest.raises(ServerFailed) as failed:
        Server("--ui")
    assert failed.value.code == 2 and "--registry" in failed.value.stderr


@pytest.mark.parametrize("width", [375, 1280])
def test_registry_page_in_a_real_browser(tmp_path, browser, width):  # noqa: F811
    from registry_backends import Backend

    backend = Backend("folder", tmp_path, None)
    populate(backend.open())
    server = serve_ui(backend)
    try:
        base = f"http://{server.host}:{server.port}"
        for path, keys, shot in [
            ("/ui/models/churn", ["#page-title", "#versions-table", "#chart-metric svg", "#aliases-table", "#compare select"], "registry-model"),
            ("/ui/models/churn/versions/2", ["#card-title", "#chart-coefficients svg", "#provenance"], "registry-version"),
        ]:
            report = browser.open_page(base + path, width, keys, shot=shot)
            assert report.errors == [], report.errors
            assert all(u.startswith(base) for u in report.requests), report.requests
            assert all(report.visible.values()), report.visible
            # A page wider than the window makes a phone zoom out (or scroll sideways).
            assert report.viewport_width == width and report.scroll_width <= width, report.too_wide
    finally:
        server.stop()


def test_a_versions_card_says_whether_the_registry_holds_its_signature(tmp_path):
    import skvault
    from registry_backends import Backend

    backend = Backend("folder", tmp_path, None)
    reg = backend.open()
    X = np.random.default_rng(1).normal(size=(30, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    key = tmp_path / "key"
    skvault.keygen(key)
    reg.register(model, "m")
    reg.register(model, "m", sign_with=key)
    server = serve_ui(backend)
    try:
        shown = {}
        for n in (1, 2):
            status, _, body = get(server, f"/ui/models/m/versions/{n}")
            assert status == 200
            shown[n] = text(parse(body).find(".//span[@id='signature-status']"))
        assert shown == {1: "unsigned", 2: "unverified"}
    finally:
        server.stop()
    # With the server's trusted keys the page checks the recorded signature: the signer's
    # key verifies it, another key refuses it.
    other = tmp_path / "other"
    skvault.keygen(other)
    for pub, want in [(f"{key}.pub", "verified"), (f"{other}.pub", "refused")]:
        server = serve_ui(backend, "--trusted-key", pub)
        try:
            status, _, body = get(server, "/ui/models/m/versions/2")
            assert status == 200
            doc = parse(body)
            assert text(doc.find(".//span[@id='signature-status']")) == want
            status, _, body = get(server, "/ui/models/m/versions/1")
            assert text(parse(body).find(".//span[@id='signature-status']")) == "unsigned"
        finally:
            server.stop()
