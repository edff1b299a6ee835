"""Driving the service's gallery page in a real Chromium (Debian's package) through Playwright.

Used by tests/test_gallery_browser.py, and run as a script for the README's picture:

    python -m tests.gallery_browser --model models/model.onnx --out docs/serve-gallery.png FRAME...

Playwright's own browser download is not used: Chromium comes from the system (``chromium`` on
PATH, e.g. Debian's ``apt-get install chromium``; ``.ci/run`` installs it when missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CARD_TIMEOUT_MS = 120_000


class NoChromium(RuntimeError):
    """No system Chromium to drive."""


def chromium_path() -> str:
    """The system Chromium's executable.

    Raises:
        NoChromium: none on PATH (install Debian's ``chromium`` package).
    """
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise NoChromium(f"no Chromium on PATH ({', '.join(CHROMIUM_NAMES)}); install it: apt-get install -y chromium")


@dataclass(frozen=True)
class Card:
    """One gallery card as the browser shows it.

    Attributes:
        title: the file's name.
        error: the card's error text, or None.
        overlays: (natural width, natural height) of each overlay image shown (0, 0: not decoded).
        rows: the area tables' rows, (class, area px, area mm²) as displayed.
        downloads: the mask download links' file names.
    """

    title: str
    error: str | None
    overlays: list[tuple[int, int]]
    rows: list[tuple[str, str, str]]
    downloads: list[str]


CARDS_SCRIPT = """() => Array.from(document.querySelectorAll('article.card')).map(card => ({
  title: card.querySelector('h2').textContent,
  error: card.querySelector('.error-message') ? card.querySelector('.error-message').textContent : null,
  overlays: Array.from(card.querySelectorAll('img')).map(img => [img.naturalWidth, img.naturalHeight]),
  rows: Array.from(card.querySelectorAll('tbody tr')).map(tr => Array.from(tr.cells).map(td => td.textContent)),
  downloads: Array.from(card.querySelectorAll('a.download')).map(a => a.download),
}))"""


def upload_in_gallery(url: str, files: list[Path], screenshot: Path | None = None,
                      token: str | None = None) -> list[Card]:
    """Opens the gallery at ``url``, picks ``files`` at once, waits for every card, and reads the cards back.

    Args:
        url: the service's base URL.
        files: frame files to upload (in one pick, as a user selects many).
        screenshot: where to save a full-page PNG of the gallery once every card is done, or None.
        token: typed into the page's token field first, or None.
    """
    from playwright.sync_api import sync_playwright  # tests only

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            if token is not None:
                page.fill("#token", token)
                page.dispatch_event("#token", "change")
            page.set_input_files("#picker", [str(path) for path in files])
            page.wait_for_function(
                f"document.querySelectorAll('article.card').length === {len(files)} && "
                "document.querySelectorAll('article.card .state').length === 0 && "
                "Array.from(document.images).every(img => img.complete)", timeout=CARD_TIMEOUT_MS)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            return [Card(item["title"], item["error"], [tuple(size) for size in item["overlays"]],
                         [tuple(row) for row in item["rows"]], item["downloads"])
                    for item in page.evaluate(CARDS_SCRIPT)]
        finally:
            browser.close()


def main() -> None:
    """Serves ``--model``, uploads the frames in the gallery and saves the page as ``--out``."""
    from pipeline.inference.predictor import Segmenter
    from pipeline.serve.service import ServeConfig
    from tests.serve_fixtures import running_service

    parser = argparse.ArgumentParser(description="Screenshot of the service's gallery with the given frames.")
    parser.add_argument("frames", type=Path, nargs="+")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with running_service(ServeConfig(Segmenter(args.model))) as service:
        for card in upload_in_gallery(service.url, args.frames, args.out):
            print(card.title, card.error or card.rows)


if __name__ == "__main__":
    main()
