"""Make the README's screenshots from a running demo, in Chromium through Playwright.

    make demo                      # or: manage.py demo, then manage.py demo_serve, in another terminal
    .venv/bin/python docs/screenshots.py [--url http://127.0.0.1:8000/] [--user expert --password PW] [--out docs/img/]

Without --user the expert's login is read from var/demo-credentials.json (what `make demo` wrote). Every page is
taken at the same fixed viewport, then made small enough to commit (an adaptive 256-colour palette, optimised PNG).
Chromium is the system's (/usr/bin/chromium, or CHROMIUM_PATH); nothing is downloaded.
"""

import argparse
import json
import os
import re
import sys
from io import BytesIO
from pathlib import Path
from urllib.parse import urljoin

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/", help="the running demo")
    parser.add_argument("--user", help="an expert's username (default: 'expert' from --credentials)")
    parser.add_argument("--password", help="that user's password (default: from --credentials)")
    parser.add_argument("--credentials", type=Path, default=ROOT / "var" / "demo-credentials.json",
                        help="the logins `make demo` wrote")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for the PNG files")
    parser.add_argument("--dataset", default="galaxy10-decals-samples",
                        help="slug of the dataset to show (the demo's one with features, a queue and volunteers)")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--png-width", type=int, default=960,
                        help="width of the saved files (about what a README shows); the viewport is --width")
    options = parser.parse_args(argv)

    user, password = _login(options)
    from playwright.sync_api import sync_playwright

    options.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        viewport = {"width": options.width, "height": options.height}
        try:
            # The volunteers' page is shown as a visitor sees it, without an account.
            visitor = browser.new_context(viewport=viewport, base_url=options.url).new_page()
            expert = browser.new_context(viewport=viewport, base_url=options.url).new_page()
            _sign_in(expert, user, password)
            made = [
                _shoot(expert, _pick(expert, "/label/", rf"/label/{options.dataset}/[\w-]+/"), options, "label"),
                _shoot(expert, _pick(expert, f"/galaxies/?dataset={options.dataset}", r"/galaxies/\d+/"), options,
                       "galaxy", focus=".neighbours"),
                _shoot(visitor, _pick(visitor, "/classify/", rf"/classify/{options.dataset}/"), options, "classify"),
                _shoot(expert, _pick(expert, "/maps/", r"/maps/\d+/"), options, "map"),
                _shoot(expert, _pick(expert, "/simulations/", r"/simulations/\d+/"), options, "simulation"),
            ]
        finally:
            browser.close()
    for path in made:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB")
    return 0


def _login(options) -> tuple[str, str]:
    if options.user and options.password:
        return options.user, options.password
    try:
        saved = json.loads(options.credentials.read_text())
    except FileNotFoundError:
        sys.exit(f"no {options.credentials}: run `make demo` first, or give --user and --password")
    user = options.user or "expert"
    if user not in saved:
        sys.exit(f"{options.credentials} has no login for {user!r}; give --password")
    return user, saved[user]


def _sign_in(page, user: str, password: str) -> None:
    page.goto("login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form [type=submit]")
    page.wait_for_load_state()
    if "/login/" in page.url:
        sys.exit(f"could not sign in as {user!r}: wrong password, or not the demo at this address")


def _pick(page, listing: str, pattern: str) -> str:
    """The first link on the page at ``listing`` whose path matches ``pattern`` (a listing page's first item),
    or the listing itself when it has none (an empty page is still worth seeing)."""
    page.goto(listing.lstrip("/"))
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(link => link.getAttribute('href'))")
    found = next((href for href in hrefs if re.fullmatch(pattern, href.split("?")[0])), None)
    if found is None:
        print(f"no link like {pattern} on {listing}; taking {listing} itself", file=sys.stderr)
    return found or listing


def _shoot(page, path: str, options, name: str, focus: str | None = None) -> Path:
    """Open ``path``, wait for it to settle and save the viewport as ``<out>/<name>.png``; with ``focus`` (a CSS
    selector) the picture goes on down the page to the bottom of that element."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(urljoin(options.url, path))
    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except PlaywrightTimeout:
        pass  # a page that polls (job progress) is never idle; what it shows by now will do
    _images_loaded(page)
    clip = None
    if focus and page.locator(focus).count():
        # The page from its top down to the bottom of ``focus`` (the galaxy's similar galaxies, below its image).
        element = page.locator(focus).first
        element.scroll_into_view_if_needed()  # lazy images there load
        _images_loaded(page)
        page.evaluate("window.scrollTo(0, 0)")
        box = element.bounding_box()
        clip = {"x": 0, "y": 0, "width": options.width, "height": max(options.height, box["y"] + box["height"] + 24)}
    page.wait_for_timeout(800)
    target = options.out / f"{name}.png"
    png = page.screenshot(clip=clip, full_page=clip is not None)
    _save_small(png, target, width=options.png_width)
    return target


def _images_loaded(page) -> None:
    """Wait for the images still loading (at most 5 s: a lazy image out of view never does)."""
    page.evaluate("Promise.race([new Promise(done => setTimeout(done, 5000)), Promise.all([...document.images]"
                  ".filter(i => !i.complete).map(i => new Promise(done => {i.onload = i.onerror = done})))])")


def _save_small(png: bytes, target: Path, *, width: int, budget: int = 160_000) -> None:
    """Scaled to ``width`` and reduced to an adaptive palette of 128 colours, fewer while the file is over ``budget``
    bytes: text and charts keep their look; the noisy sky around a galaxy is what costs bytes."""
    image = Image.open(BytesIO(png)).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    for colours in (128, 96, 64):
        small = BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            small, "PNG", optimize=True)
        if small.tell() <= budget:
            break
    target.write_bytes(small.getvalue())

if __name__ == "__main__":
    sys.exit(main())
