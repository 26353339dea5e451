"""The report in a real headless Chromium: no console errors, sorting by click, a screenshot.

Chromium is driven through the DevTools protocol over `--remote-debugging-pipe` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no WebDriver package is needed.
Set EIGENBENCH_SCREENSHOT_DIR to keep the screenshot somewhere other than pytest's tmp folder.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_report_html import HOSTILE, report_run

from eigenbench.report import render_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT_S = 20.0


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"),
        reason="the DevTools pipe is driven through Linux file descriptors",
    ),
    pytest.mark.skipif(
        _browser() is None, reason="needs Chromium (apt-get install chromium) for the browser test"
    ),
]


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends sit above fd 9, so wiring them to 3 and 4 cannot clobber each other."""
    import fcntl  # POSIX only; the module is skipped elsewhere

    r, w = os.pipe()
    try:
        return (
            fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10),
            fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10),
        )
    finally:
        os.close(r)
        os.close(w)


class Chromium:
    """A headless Chromium process and one page, spoken to over the DevTools pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome_r, self._to_chrome = _high_pipe()
        self._from_chrome, from_chrome_w = _high_pipe()

        def wire_fds() -> None:  # the child reads commands on fd 3 and answers on fd 4
            os.dup2(to_chrome_r, 3)  # dup2 leaves the new descriptors inheritable
            os.dup2(from_chrome_w, 4)

        # close_fds would close 3 and 4 after wire_fds runs; every other descriptor Python
        # opens is non-inheritable anyway (PEP 446), so nothing else leaks into the browser.
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            close_fds=False,
            preexec_fn=wire_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def _read(self, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if until(msg):
                    return msg
                self.events.append(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buf += chunk

    def call(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if page:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        reply = self._read(lambda m: m.get("id") == msg["id"])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        return self._read(lambda m: m.get("method") == method)

    def js(self, expression: str) -> Any:
        out = self.call(
            "Runtime.evaluate",
            page=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in out:
            raise RuntimeError(f"script failed: {out['exceptionDetails']}")
        return out["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (CSP, loads) so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                out.append(str(p["exceptionDetails"].get("text")))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"{p['entry'].get('source')}: {p['entry'].get('text')}")
        return out

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the element."""
        box = self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                page=True,
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, RuntimeError, TimeoutError, EOFError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._to_chrome)
            os.close(self._from_chrome)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    binary = _browser()
    assert binary is not None
    chrome = Chromium(binary, tmp_path / "profile")
    try:
        yield chrome
    finally:
        chrome.close()


MEDIAN_KEYS = """
Array.from(document.querySelectorAll('#records-table tbody tr'),
           tr => tr.cells[5].dataset.sort)
"""


def test_report_in_chromium_sorts_by_click_without_errors(
    browser: Chromium, tmp_path: Path
) -> None:
    run = report_run()
    index = render_report(run, tmp_path / "report")
    for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
        browser.call(domain, page=True)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        page=True,
        width=1280,
        height=1400,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", page=True, url=index.resolve().as_uri())
    browser.wait_event("Page.loadEventFired")

    # the page rendered and its images decoded (a CSP or data-URI problem would break them)
    assert browser.js("document.title").startswith("eigenbench report")
    assert browser.js("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert browser.js("document.querySelectorAll('#records-table tbody tr').length") == len(
        run["records"]
    )
    assert browser.js("document.querySelectorAll('b, i').length") == 0
    assert browser.js(f"document.body.textContent.includes({json.dumps(HOSTILE)})")

    before = browser.js(MEDIAN_KEYS)
    browser.click("#records-table thead th:nth-child(6)")
    ascending = browser.js(MEDIAN_KEYS)
    numbers = [float(v) for v in ascending if v]
    assert numbers == sorted(numbers) and ascending != before
    assert all(v == "" for v in ascending[len(numbers) :])  # records without a time go last
    assert (
        browser.js(
            "document.querySelector('#records-table th:nth-child(6)').getAttribute('aria-sort')"
        )
        == "ascending"
    )
    browser.click("#records-table thead th:nth-child(6)")
    descending = [float(v) for v in browser.js(MEDIAN_KEYS) if v]
    assert descending == sorted(numbers, reverse=True)

    browser.js("window.scrollTo(0, 0)")
    shot = browser.call("Page.captureScreenshot", page=True, format="png")
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    target = Path(os.environ.get("EIGENBENCH_SCREENSHOT_DIR") or tmp_path) / "report.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)

    assert browser.errors() == []


def _long_id_run() -> dict[str, Any]:
    """Long workload, impl and parameter names, long reasons: the widest records table."""
    from factories import make_record, make_run

    params = {"batch": 1000, "spectrum": "clustered_near_zero", "family": "continuous_with_ties"}
    recs = [
        make_record(
            "eigvalsh_batched_long_workload_name",
            impl,
            {**params, "n": n},
            device="cuda:0",
            phase="bwd",
            median_s=1e-4 * n,
        )
        for n in (8, 16, 32)
        for impl in ("torch_compiled_with_a_long_name", "numpy", "cupy_batched_syevj_variant")
    ]
    recs.append(
        make_record(
            "eig",
            "an_invalid_impl_with_a_long_name",
            {"n": 8, "x": "y" * 60},
            status="invalid",
            median_s=2e-4,
            reason="gradient off by 3.87e+06 of its largest entry " * 3,
        )
    )
    recs.append(make_record("eig", "crash", {"n": 8}, status="failed", reason="E: " + "x" * 150))
    return make_run(recs)


def test_report_fits_a_1400_px_window(browser: Chromium, tmp_path: Path) -> None:
    index = render_report(_long_id_run(), tmp_path / "report")
    browser.call("Page.enable", page=True)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        page=True,
        width=1400,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", page=True, url=index.resolve().as_uri())
    browser.wait_event("Page.loadEventFired")
    assert browser.js("document.documentElement.scrollWidth") <= 1400
    # the table's own scroller must not be needed either
    table, wrap = browser.js(
        "(() => { const t = document.querySelector('#records-table');"
        " return [t.scrollWidth, t.parentElement.clientWidth]; })()"
    )
    assert table <= wrap <= 1400
    assert browser.js("document.querySelector('#answers').getBoundingClientRect().top") < 200
