"""A real browser for tests: headless Chromium (Debian's ``chromium``), driven over the Chrome DevTools Protocol.

``require_browser()`` skips a test outside CI when Chromium is missing (fails under CI=true: the Makefile's test
set-up installs it). ``open_page(...)`` opens a file or URL without network, collects the console errors, checks
elements by CSS selector, checks every ``<img>``, optionally waits for a JavaScript condition, and saves a
screenshot of the whole page.

Chromium is driven over its DevTools WebSocket with the ``websockets`` package the project already depends on,
instead of selenium + chromedriver: no new dependency, and the protocol gives the console's errors (console
calls, uncaught exceptions, failed loads) directly, where WebDriver's logging of them is browser-specific.
Without network: host names resolve to nothing except localhost (``--host-resolver-rules``), and every
non-loopback request goes to a dead proxy, so a page that reaches outside shows it as a console error.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import require_part

__all__ = ["PageCheck", "chromium_path", "open_page", "require_browser"]

#: Flags of every launch: headless, no sandbox (tests may run as root in a container), no network.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    """The Chromium binary: ``$CHROMIUM`` or ``chromium`` / ``chromium-browser`` on PATH (None: not found)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and (p := shutil.which(name)):
            return p
    return None


def require_browser() -> str:
    """The Chromium binary; skip (outside CI) or fail (CI=true) when it is not installed."""
    path = chromium_path()
    require_part(path is not None, "headless Chromium not found (Debian: apt-get install chromium)")
    assert path is not None
    return path


@dataclass
class PageCheck:
    """What a page showed in the browser.

    Attributes
    ----------
    console_errors : console.error calls, uncaught exceptions, and error log entries (e.g. failed loads).
    elements : per CSS selector, ``{"count": matches, "visible": matches with a non-empty box that are not
        hidden by CSS}``.
    images : per ``<img>``, ``{"src": first 60 characters, "complete", "natural_width", "natural_height",
        "visible"}``.
    value : the value of ``expression`` (None without one).
    screenshot : the saved PNG of the whole page (None when not asked).
    title : the document's title.
    """

    console_errors: list[str] = field(default_factory=list)
    elements: dict[str, dict[str, int]] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)
    value: Any = None
    screenshot: Path | None = None
    title: str = ""


_CHECK_JS = """
(() => {
  const vis = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const sel = %s;
  const elements = {};
  for (const q of sel) { const m = Array.from(document.querySelectorAll(q));
    elements[q] = {count: m.length, visible: m.filter(vis).length}; }
  const images = Array.from(document.images).map((i) => ({src: (i.getAttribute('src') || '').slice(0, 60),
    complete: i.complete, natural_width: i.naturalWidth, natural_height: i.naturalHeight, visible: vis(i)}));
  return JSON.stringify({elements, images, title: document.title});
})()
"""


class _Cdp:
    """A minimal DevTools client on one WebSocket: commands with ids, events kept in arrival order."""

    def __init__(self, ws: Any, timeout_s: float) -> None:
        self.ws = ws
        self.timeout_s = timeout_s
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _recv(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the browser did not answer in time")
        msg: dict[str, Any] = json.loads(self.ws.recv(timeout=left))
        return msg

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout_s
        while True:
            m = self._recv(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                out: dict[str, Any] = m.get("result", {})
                return out
            self.events.append(m)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._recv(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def drain(self, quiet_s: float = 0.2) -> None:
        """Take in the events that arrive until the socket is quiet for ``quiet_s``."""
        while True:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=quiet_s)))
            except TimeoutError:
                return


@contextlib.contextmanager
def _chromium(binary: str, timeout_s: float) -> Iterator[str]:
    """Start headless Chromium in a fresh profile; yield its browser DevTools WebSocket URL; stop it."""
    with tempfile.TemporaryDirectory(prefix="v2gtwin-chromium-") as profile:
        proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout_s
            while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace")[-500:] if proc.stderr else ""
                    raise RuntimeError(f"chromium exited with {proc.returncode}: {err}")
                if time.monotonic() > deadline:
                    raise TimeoutError("chromium did not open its DevTools port")
                time.sleep(0.05)
            port, path = port_file.read_text().splitlines()[:2]
            yield f"ws://127.0.0.1:{port}{path}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _errors_of(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for m in events:
        p, method = m.get("params", {}), m.get("method")
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(
                "console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            )
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".rstrip())
    return out


def open_page(
    target: str | Path,
    *,
    selectors: Sequence[str] = (),
    screenshot: str | Path | None = None,
    expression: str | None = None,
    wait_for: str | None = None,
    timeout_s: float = 60.0,
    binary: str | None = None,
) -> PageCheck:
    """Open ``target`` (a file path or a URL) in headless Chromium without network and check it.

    Parameters
    ----------
    target : an HTML file (opened as file://) or a URL (http://127.0.0.1:PORT/... for a local server).
    selectors : CSS selectors to count and check for visibility.
    screenshot : where to save a PNG of the whole page (None: no screenshot).
    expression : JavaScript evaluated after the load (and after ``wait_for``); its JSON value goes in ``value``.
    wait_for : JavaScript condition polled (every 0.1 s, up to ``timeout_s``) after the load, e.g. until a live
        page has drawn its first data.
    timeout_s : longest wait for the browser at each stage [s].
    binary : the Chromium binary (default: :func:`chromium_path`).
    """
    binary = binary or chromium_path()
    if binary is None:
        raise RuntimeError("headless Chromium not found")
    url = target if isinstance(target, str) and "://" in target else Path(target).resolve().as_uri()
    from websockets.sync.client import connect

    with _chromium(binary, timeout_s) as ws_url, connect(ws_url, max_size=None, open_timeout=timeout_s) as ws:
        cdp = _Cdp(ws, timeout_s)
        tid = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = cdp.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable", session=sid)
        cdp.send("Page.navigate", {"url": url}, session=sid)
        cdp.wait_event("Page.loadEventFired")
        if wait_for is not None:
            deadline = time.monotonic() + timeout_s
            while not _eval(cdp, sid, f"Boolean({wait_for})"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"wait_for never held: {wait_for}")
                time.sleep(0.1)
        checks = json.loads(_eval(cdp, sid, _CHECK_JS % json.dumps(list(selectors))))
        value = None if expression is None else _eval(cdp, sid, expression)
        shot = None
        if screenshot is not None:
            size = cdp.send("Page.getLayoutMetrics", session=sid)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            png = cdp.send(
                "Page.captureScreenshot",
                {"format": "png", "clip": clip, "captureBeyondViewport": True},
                session=sid,
            )["data"]
            shot = Path(screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(png))
        cdp.drain()
    return PageCheck(
        console_errors=_errors_of(cdp.events),
        elements=checks["elements"],
        images=checks["images"],
        value=value,
        screenshot=shot,
        title=checks["title"],
    )


def _eval(cdp: _Cdp, sid: str, expression: str) -> Any:
    r = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=sid)
    if "exceptionDetails" in r:
        raise RuntimeError(f"JavaScript failed: {r['exceptionDetails'].get('text')}")
    return r["result"].get("value")
