"""Open a Snakemake report in headless Chromium and check that every result in it is shown.

    python scripts/report_browser.py report.html [--screenshot first_screen.png]

Clicks through every result category of the report and every result's view button, as a reader would, and
checks what the page then shows: an image whose pixels decoded (its natural size), or an HTML page with text.
Prints one line per result and exits 1 if any is not shown. Chromium comes from Debian's package (installed
with apt-get when missing, which needs root; scripts/debian_packages.py) and is driven by Playwright
(a dev dependency), which downloads no browser of its own here.

tests/workflow/test_report_run.py uses the same functions (`chromium`, `shown_results`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import debian_packages  # noqa: E402  (scripts/ is not a package)

# Chromium on a machine without a display, a D-Bus or a network (the machine's closed network refuses the
# background connections a default profile makes)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
GENERAL = {"Workflow", "Statistics", "About"}
IMAGES = (".png", ".jpg", ".jpeg", ".svg")


def chromium(timeout: float = 300.0, log=print) -> str:
    """Path of Debian's Chromium, installed with apt-get when missing; raises debian_packages.Unavailable."""
    debian_packages.install(["chromium"], ["chromium"], timeout=timeout, log=log)
    return debian_packages.which("chromium")


def shown_results(report, executable: str, screenshot=None, timeout_ms: int = 120000) -> dict[str, str]:
    """{result path: what the report shows for it} for every result of every category of ``report``; a value
    starting with "NOT SHOWN" names what was missing. ``screenshot``: PNG of the report's first screen."""
    from playwright.sync_api import sync_playwright

    url = Path(report).resolve().as_uri()
    shown = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(timeout_ms)  # a hang guard: a loaded machine may take long to render
            page.goto(url)
            page.wait_for_selector("nav a")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
            categories = [t.strip() for t in page.locator("nav a").all_inner_texts()
                          if t.strip() and t.strip() not in GENERAL]
            for category in categories:
                page.goto(url)
                page.locator("nav a", has_text=category).first.click()
                rows = page.locator("nav tr", has=page.locator("a[iconname=eye]"))
                rows.first.wait_for()
                for index in range(rows.count()):
                    row = rows.nth(index)
                    path = row.locator("td").first.inner_text().strip()
                    row.locator("a[iconname=eye]").click()
                    shown[path] = _what_is_shown(page, Path(path).name, timeout_ms)
        finally:
            browser.close()
    return shown


def _what_is_shown(page, name: str, timeout_ms: int) -> str:
    """What the page shows after a result's view button was clicked."""
    if name.lower().endswith(IMAGES):
        image = page.locator(f"img[src*='filename={name};']")
        try:
            image.first.wait_for(timeout=timeout_ms)
            page.wait_for_function("i => i.complete", arg=image.first.element_handle(), timeout=timeout_ms)
        except Exception:  # noqa: BLE001  (Playwright's timeout: the image never appeared)
            return "NOT SHOWN: no image"
        width, height = image.first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        return f"image {width} x {height} px" if width and height else "NOT SHOWN: the image did not decode"
    if name.lower().endswith((".html", ".htm")):
        try:
            page.wait_for_selector("iframe", timeout=timeout_ms)
            text = page.frame_locator("iframe").first.locator("body").inner_text(timeout=timeout_ms)
        except Exception:  # noqa: BLE001
            return "NOT SHOWN: no page"
        return f"page with {len(text)} characters" if text.strip() else "NOT SHOWN: an empty page"
    return "NOT SHOWN: neither an image nor a page (the report only offers it as a download)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", help="the HTML file `snakemake --report` wrote")
    parser.add_argument("--screenshot", help="PNG of the report's first screen to write")
    args = parser.parse_args(argv)
    try:
        executable = chromium()
    except debian_packages.Unavailable as exc:
        print(f"no headless browser: {exc}", file=sys.stderr)
        return 2
    shown = shown_results(args.report, executable, args.screenshot)
    for path, what in shown.items():
        print(f"{path}: {what}")
    if not shown:
        print("the report lists no results", file=sys.stderr)
    return 1 if not shown or any(w.startswith("NOT SHOWN") for w in shown.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
