"""Debian's chromium driven by Playwright (never `playwright install`): pages that fail on any console error."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "console"


def launch(playwright):
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is missing: run scripts/setup.sh --dev (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


@dataclass
class ConsoleLog:
    """Every console error and uncaught exception of a page; `expect` allows one provoked failed request."""

    errors: list[str] = field(default_factory=list)
    allowed: list[tuple[str, str]] = field(default_factory=list)

    def expect(self, status: int, path: str) -> None:
        """The next console line for a `status` answer of `path` is the test's own doing (Chrome logs each)."""
        self.allowed.append((f"the server responded with a status of {status} ", f"{path}]"))

    def unexpected(self) -> list[str]:
        left = list(self.allowed)
        out = []
        for error in self.errors:
            match = next((a for a in left if a[0] in error and error.endswith(a[1])), None)
            if match is None:
                out.append(error)
            else:
                left.remove(match)
        return out


@contextmanager
def console_page(browser, base_url: str) -> Iterator[tuple[object, ConsoleLog]]:
    """A fresh context (its own sessionStorage) and page; fails when the page logged an unexpected error."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000}, base_url=base_url)
    page = context.new_page()
    log = ConsoleLog()

    def on_console(message) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if isinstance(message.location, dict) else ""
            log.errors.append(f"{message.text} [{where}]")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda r: None if "abort" in (r.failure or "").lower() else log.errors.append(
        f"request failed: {r.url} {r.failure}"))
    try:
        yield page, log
    finally:
        context.close()
    assert not log.unexpected(), f"browser console errors: {log.unexpected()}"


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
