"""A small driver of headless Chromium for the page tests, standard library only.

Chromium started with --remote-debugging-pipe reads DevTools protocol commands from file
descriptor 3 and writes replies and events to descriptor 4, each message JSON ending in a NUL
byte. `Browser` opens one tab and offers what the tests need: open a page, evaluate JavaScript,
click an element with real mouse events at its centre, take a screenshot. It also makes the
README's screenshots:

    .venv/bin/python tests/headless_chromium.py PAGE.html SHOT.png [--click SELECTOR]... [--clip SELECTOR]
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> Optional[str]:
    """The path of an installed Chromium (Debian: apt-get install chromium), or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def _pipe_above_4() -> tuple[int, int]:
    """A pipe whose two ends are numbered 10 or more, so that moving them to 3 and 4 in the
    child cannot overwrite one with the other; both close in the child once moved (CLOEXEC)."""
    low_read, low_write = os.pipe()
    ends = tuple(fcntl.fcntl(end, fcntl.F_DUPFD_CLOEXEC, 10) for end in (low_read, low_write))
    os.close(low_read)
    os.close(low_write)
    return ends


class Browser:
    """One headless Chromium with one tab of `width` x `height` CSS pixels."""

    def __init__(self, executable: str, width: int = 1100, height: int = 900, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="attncli-chromium-")
        commands_read, self._commands = _pipe_above_4()      # we write commands, Chromium reads fd 3
        self._replies, replies_write = _pipe_above_4()       # Chromium writes fd 4, we read
        arguments = [executable, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}",
                     "--no-sandbox",        # it opens only our own file; the sandbox fails as root and in containers
                     "--no-first-run", "--disable-gpu", "--hide-scrollbars", "--mute-audio", "about:blank"]
        self.pid = os.posix_spawn(executable, arguments, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, commands_read, 3), (os.POSIX_SPAWN_DUP2, replies_write, 4),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
        os.close(commands_read)
        os.close(replies_write)
        self._received, self._events, self._last_id, self._session = b"", [], 0, None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command (to the tab once attached); its result. Events that come first are kept."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._events.append(reply)

    def _receive(self) -> dict[str, Any]:
        """The next message from Chromium, waiting at most `timeout` seconds."""
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._received:
            ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._replies, 1 << 16) if ready else b""
            if not chunk:
                raise RuntimeError("Chromium did not answer" if not ready else "Chromium closed the pipe")
            self._received += chunk
        message, self._received = self._received.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        """The parameters of the first `event` received (now or already)."""
        while True:
            for index, message in enumerate(self._events):
                if message.get("method") == event:
                    return self._events.pop(index)["params"]
            self._events.append(self._receive())

    def open(self, page: Path) -> None:
        """Load a local file and wait for its load event (its scripts have run)."""
        self._events.clear()
        self.send("Page.navigate", url=page.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-like values)."""
        reply = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def box(self, selector: str) -> dict[str, float]:
        """The element's box in the page (CSS pixels from the page's top left), scrolled into view."""
        return self.evaluate(f"""(() => {{
            const node = document.querySelector({json.dumps(selector)});
            node.scrollIntoView({{block: "center"}});
            const r = node.getBoundingClientRect();
            return {{x: r.x, y: r.y, width: r.width, height: r.height, scrollX, scrollY}};
        }})()""")

    def click(self, selector: str, at: float = 0.5) -> None:
        """A real left click (mouse pressed, then released) on the element, `at` of its width from
        its left edge and halfway down."""
        box = self.box(selector)
        x, y = box["x"] + at * box["width"], box["y"] + box["height"] / 2
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path, clip: Optional[str] = None, margin: float = 8) -> None:
        """A PNG of the viewport, or of the element `clip` (a CSS selector) whole and `margin` around it."""
        params: dict[str, Any] = {"format": "png"}
        if clip:
            box = self.box(clip)
            params["clip"] = {"x": box["x"] + box["scrollX"] - margin, "y": box["y"] + box["scrollY"] - margin,
                              "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin, "scale": 1}
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        """Ask Chromium to quit; kill it if it has not within a few seconds."""
        try:
            self._session = None
            self.timeout = 5.0
            self.send("Browser.close")
        except (OSError, RuntimeError):
            pass
        deadline = time.monotonic() + 5
        while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(0.05)
        os.close(self._commands)
        os.close(self._replies)
        self._profile.cleanup()


def main() -> None:
    """Open PAGE, click each --click element in turn, and save a screenshot of it (or of --clip)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--click", action="append", default=[], metavar="SELECTOR")
    parser.add_argument("--clip", metavar="SELECTOR", help="only this element (default: the viewport)")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        parser.error("no Chromium found (Debian: apt-get install chromium)")
    with Browser(chromium, args.width, args.height) as browser:
        browser.open(args.page)
        for selector in args.click:
            browser.click(selector)
        browser.screenshot(args.png, args.clip)


if __name__ == "__main__":
    main()
