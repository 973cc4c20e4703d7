"""index.html in a real browser: headless Chromium driven over the DevTools protocol on a pipe.

The test loads the rendered page from a file, reads what the page shows (the rows of the
tables, the plot image as decoded by the browser), clicks column headers with real mouse
events and checks that the order changes, and that nothing was fetched from the network and
no script failed. No extra Python package is needed: `--remote-debugging-pipe` speaks JSON
messages separated by NUL bytes on file descriptors 3 (to the browser) and 4 (from it).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.board import ranking, render
from tests.test_leaderboard import RULES, generate, make, write_all

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y "
                                                          "chromium; .ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--remote-debugging-pipe"]


class Browser:
    """A minimal DevTools client: one page, commands with replies, events kept in a list."""

    def __init__(self, profile: Path, log: Path, timeout: float = 60.0):
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def fds():  # in the child: the pipe ends become fds 3 and 4 (inheritable after dup2)
            a, b = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(log, "wb")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     close_fds=False, preexec_fn=fds)
        os.close(to_r)
        os.close(from_w)
        self.timeout, self._buf, self._id, self.events, self.session = timeout, b"", 0, [], None
        target = self.send("Target.createTarget", url="about:blank", _browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True, _browser=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1600, height=1000, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, _browser: bool = False, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not _browser:
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str):
        while True:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(self._next())

    def js(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click (mouse events at the element's centre), not element.click()."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
                      f" const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.send("Browser.close", _browser=True)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._to_w)
        os.close(self._from_r)
        self._log.close()

    def _next(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited (status {self.proc.poll()})")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    yield b
    b.close()


def _rows(b: Browser, table: str) -> list[list[str]]:
    return b.js(f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
                f".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")


def _column(b: Browser, table: str, header: str) -> int:
    return b.js(f"Array.from(document.querySelectorAll('#{table} thead th')).map(h => h.innerText.trim())"
                f".indexOf({json.dumps(header)})")


def _open(b: Browser, page: Path | str) -> None:
    b.events = [e for e in b.events if e.get("method") != "Page.loadEventFired"]
    b.send("Page.navigate", url=page.resolve().as_uri() if isinstance(page, Path) else page)
    b.wait_event("Page.loadEventFired")


def test_page_shows_the_ranking_and_plot_and_sorts_on_click(tmp_path, browser):
    results = generate(tmp_path / "results", teams=12, submissions=60)
    board = ranking.build(results, RULES)
    written = render.render(board, tmp_path / "out")
    _open(browser, written["index.html"])

    assert "leaderboard" in browser.js("document.title").lower()
    rows = _rows(browser, "ranking")
    team, score, acc = (_column(browser, "ranking", h) for h in ("team", "score", "accuracy"))
    assert [r[team] for r in rows] == [r.team for r in board.ranked]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(board.ranked) + 1)]
    assert rows[0][score] == f"{board.ranked[0].best.record.score.total:.4f}"
    assert [r[0] for r in _rows(browser, "others")] == [r.team for r in board.unranked]

    image = browser.js("(() => { const i = document.getElementById('plot'); const r = i.getBoundingClientRect();"
                       " return {links: i.querySelectorAll('a').length, shown: r.width, height: r.height}; })()")
    assert image["shown"] >= 800 and image["height"] >= 400  # drawn and on screen
    assert image["links"] == sum(e.plottable for e in board.collection.entries)  # every point links to its page

    def accuracies():
        return [float(r[acc].rstrip("%")) for r in _rows(browser, "ranking")]

    before = accuracies()
    browser.click("#ranking thead th:nth-child(4)")  # accuracy: best first
    assert accuracies() == sorted(before, reverse=True) != before
    assert browser.js("document.querySelector('#ranking thead th:nth-child(4)').getAttribute('aria-sort')") == \
        "descending"
    browser.click("#ranking thead th:nth-child(4)")  # again: reversed
    assert accuracies() == sorted(accuracies())
    browser.click("#ranking thead th:nth-child(2)")  # team names, A to Z
    names = [r[team] for r in _rows(browser, "ranking")]
    assert names == sorted(names, key=str.lower)
    browser.click("#ranking thead th:nth-child(1)")  # back to the ranking
    assert [r[team] for r in _rows(browser, "ranking")] == [r.team for r in board.ranked]

    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "page.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"

    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")]
    assert errors == []
    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls  # works offline


def test_page_with_no_eligible_submission_and_a_skipped_record(tmp_path, browser):
    results = write_all(tmp_path / "results", [make("alpha", accuracy=0.5), make("beta", accuracy=0.6)])
    (results / "broken.json").write_text("{")
    written = render.render(ranking.build(results, RULES), tmp_path / "out")
    _open(browser, written["index.html"])
    assert _rows(browser, "ranking") == [["No eligible submission yet."]]
    assert [r[0] for r in _rows(browser, "others")] == ["alpha", "beta"]
    assert "broken.json" in browser.js("document.querySelector('ul.skipped').innerText")
    browser.click("#ranking thead th:nth-child(11)")  # sorting an empty table changes nothing, fails nothing
    assert _rows(browser, "ranking") == [["No eligible submission yet."]]
    assert not [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]


def test_from_the_table_to_a_submissions_page_and_its_team_and_back(tmp_path, browser):
    """Click the best submission's name: its page (receipt, claims, provenance); then its team's page;
    then back to the leaderboard. A point of the plot leads to the same kind of page."""
    results = generate(tmp_path / "results", teams=5, submissions=15)
    board = ranking.build(results, RULES)
    written = render.render(board, tmp_path / "out")
    _open(browser, written["index.html"])
    best = board.ranked[0].best.record
    sub = _column(browser, "ranking", "submission") + 1
    _follow(browser, f"#ranking tbody tr:nth-child(1) td:nth-child({sub}) a")
    assert browser.js("location.pathname").endswith(f"/runs/{board.ranked[0].best.path.stem}.html")
    assert browser.js("document.querySelector('h1').innerText") == f"{best.team} / {best.name}"
    text = browser.js("document.body.innerText")
    assert "ELIGIBLE" in text and f"{best.score.total:.4f}" in text and "Provenance" in text
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "run.png").write_bytes(shot)

    _follow(browser, "nav a:nth-child(2)")  # all of the team
    assert browser.js("document.querySelector('h1').innerText") == f"Team {best.team}"
    assert len(_team_rows(browser)) == len(board.team_entries(best.team))

    _follow(browser, "nav a:nth-child(1)")  # back to the leaderboard
    assert browser.js("location.pathname").endswith("/index.html")
    point = browser.js("document.querySelector('#plot a').getAttribute('xlink:href') || "
                       "document.querySelector('#plot a').getAttribute('href')")
    assert point.startswith("runs/") and (tmp_path / "out" / point).is_file()


def _follow(b: Browser, selector: str) -> None:
    """Click a link with the mouse and wait for the page it leads to."""
    b.events = [e for e in b.events if e.get("method") != "Page.loadEventFired"]
    b.click(selector)
    b.wait_event("Page.loadEventFired")


def _team_rows(b: Browser) -> list:
    return b.js("Array.from(document.querySelectorAll('table tr')).slice(1).map(r => r.innerText)")


def test_the_ranked_table_fits_a_1280_px_window(tmp_path, browser):
    """A class's board (long names, long reasons) in a projector's 1280 px window: no horizontal
    scrolling of the page or of a table; the score terms are left out there, shown at 1920 px. A team's
    page shows its slide."""
    from tests.test_board_class import class_board

    board = ranking.build(class_board.write_class(tmp_path / "results"), RULES)
    written = render.render(board, tmp_path / "out")
    fits = ("(() => { const d = document.documentElement; const t = Array.from(document.querySelectorAll("
            "'div.scroll')).map(s => [s.scrollWidth, s.clientWidth, s.firstElementChild.scrollWidth]);"
            " return {page: d.scrollWidth, window: window.innerWidth, tables: t}; })()")
    hidden = ("Array.from(document.querySelectorAll('#ranking thead th')).filter(h => getComputedStyle(h).display"
              " === 'none').map(h => h.innerText.trim())")
    for width, gone in ((1280, ["params term", "ops term"]), (1920, [])):
        browser.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        _open(browser, written["index.html"])
        seen = browser.js(fits)
        assert seen["page"] <= seen["window"] == width, seen
        assert len(seen["tables"]) == 2 and all(outer <= inner and table <= inner
                                                for outer, inner, table in seen["tables"]), seen
        assert browser.js(hidden) == gone
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "index-1920.png").write_bytes(shot)
    rows = _rows(browser, "ranking")
    assert len(rows) == len(board.ranked) and "the-lottery-ticket-hypothesis-reading-group" in " ".join(rows[13])

    from harness.board.pages import team_href

    _open(browser, tmp_path / "out" / team_href("the-very-long-team-name-of-group-seven"))
    image = browser.js("(() => { const i = document.querySelector('figure.slide img'); "
                       "return [i.complete, i.naturalWidth, i.naturalHeight]; })()")
    assert image == [True, 1280, 720]
    assert class_board.ROOT not in browser.js("document.body.innerText")
