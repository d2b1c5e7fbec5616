"""Headless Chromium (Debian's package, `make chromium`) driven over the DevTools protocol.

`open_page(url, width)` loads a page at a viewport width, and reports what a person would
meet: console errors and uncaught exceptions, every request the page made, whether given
elements are visible, whether the page scrolls sideways, and a full-page screenshot (kept
under build/artefacts/, git-ignored). No Node and no browser download: the protocol's
websocket is spoken with websocket-client.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ARTEFACTS = Path(__file__).resolve().parent.parent / "build" / "artefacts"


def chromium_path() -> str:
    """The Chromium binary, or a skip saying why the browser tests did not run."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("SKVAULT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (make chromium installs Debian's package)")
        pytest.skip("BROWSER TESTS SKIPPED: chromium is not installed and `make chromium` could not install it")
    return path


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    visible: dict[str, bool] = field(default_factory=dict)
    scroll_width: int = 0
    viewport_width: int = 0
    #: Elements that reach past the window's right edge (what makes a page scroll sideways).
    too_wide: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class Browser:
    """One headless Chromium process with a page to drive."""

    def __init__(self) -> None:
        import websocket  # websocket-client, a test requirement

        self._profile = tempfile.mkdtemp(prefix="skvault-chromium-")
        self.proc = subprocess.Popen(
            [
                chromium_path(),
                "--headless",
                "--no-sandbox",  # tests run as root in CI
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        deadline = time.monotonic() + 30
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            self.close()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self._id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == event for e in self.events):
            return
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == event:
                return
        raise TimeoutError(event)

    def open_page(self, url: str, width: int, selectors: list[str], shot: str) -> PageReport:
        self.events.clear()
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        report = PageReport()
        check = self.call(
            "Runtime.evaluate",
            expression="JSON.stringify({sw: document.documentElement.scrollWidth, vw: window.innerWidth, vis: "
            + json.dumps(selectors)
            + ".map(s => { const e = document.querySelector(s); if (!e) return false;"
            " const r = e.getBoundingClientRect(); const st = getComputedStyle(e);"
            " return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none'; }),"
            " wide: [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > " + str(width) + " + 1 && !e.closest('.scroll'))"
            ".slice(0, 10).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ': '"
            " + (e.textContent || '').trim().slice(0, 60))})",
            returnByValue=True,
        )
        facts = json.loads(check["result"]["value"])
        report.scroll_width, report.viewport_width = facts["sw"], facts["vw"]
        report.visible = dict(zip(selectors, facts["vis"]))
        report.too_wide = facts["wide"]
        shot_data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        report.screenshot = ARTEFACTS / f"{shot}-{width}.png"
        report.screenshot.write_bytes(base64.b64decode(shot_data["data"]))
        # What a person sees first (one window's height), for the README.
        top = self.call("Page.captureScreenshot", format="png")
        (ARTEFACTS / f"{shot}-{width}-top.png").write_bytes(base64.b64decode(top["data"]))
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.errors.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                report.errors.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                report.errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                report.requests.append(params["request"]["url"])
        return report

    def print_page(self, url: str, name: str) -> dict:
        """The page as printed: the facts of its print styles, and the PDF Chromium makes
        of it (kept in build/artefacts/)."""
        self.call("Emulation.setEmulatedMedia", media="print")
        try:
            self.events.clear()
            self.call("Page.navigate", url=url)
            self.wait_for("Page.loadEventFired")
            facts = self.call(
                "Runtime.evaluate",
                expression="JSON.stringify({sections: [...document.querySelectorAll('section')]"
                ".filter(s => s.getBoundingClientRect().height === 0).map(s => s.id),"
                " scrolling: [...document.querySelectorAll('.scroll')]"
                ".filter(e => getComputedStyle(e).overflowX !== 'visible').length})",
                returnByValue=True,
            )
            pdf = base64.b64decode(self.call("Page.printToPDF", printBackground=False)["data"])
        finally:
            self.call("Emulation.setEmulatedMedia", media="")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / f"{name}.pdf").write_bytes(pdf)
        return {**json.loads(facts["result"]["value"]), "pdf": pdf}

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self._profile, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    b = Browser()
    try:
        yield b
    finally:
        b.close()
