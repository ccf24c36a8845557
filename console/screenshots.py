"""Screenshots of every console page, for docs/console/ (and the browser test, which checks they are taken).

    python -m console.screenshots --url "$SCONES_CONSOLE_URL" --out docs/console [--chromium /usr/bin/chromium]

Drives Chromium with Playwright (the ``dev`` extra; the browser itself comes from the system:
``apt-get install -y chromium``, never ``playwright install``). Logs in with the URL's token, then
opens each page and saves ``<name>.png``: the newest version, the newest succeeded execution (else
the newest) and its training job (else another job). PNGs are palette-quantised so each stays well under 200 KB.
"""
from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 860}
MAX_BYTES = 200_000
MAX_HEIGHT = 1700


class ChromiumMissingError(RuntimeError):
    """No Chromium binary where Playwright is told to find one."""


def launch(playwright, executable: str = CHROMIUM):
    if not Path(executable).exists():
        raise ChromiumMissingError(f"{executable} does not exist: install the system's Chromium "
                                   "(apt-get update && apt-get install -y chromium); browser downloads "
                                   "(playwright install) are not used")
    return playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])


def base_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def compact_png(data: bytes, limit: int = MAX_BYTES, max_height: int = MAX_HEIGHT) -> bytes:
    """A screenshot as a palette PNG at most ``max_height`` tall (UI colours survive quantising; a page drops from
    ~300 to well under 200 KB)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    if image.height > max_height:
        image = image.crop((0, 0, image.width, max_height))
    for colours in (256, 128, 64):
        out = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, format="PNG", optimize=True)
        if out.tell() <= limit:
            break
    return out.getvalue()


def capture(url: str, out_dir: str | Path, executable: str = CHROMIUM, browser=None) -> dict[str, Path]:
    """Logs in with ``url`` (the console URL with its token) and saves one PNG per page; returns name → path.
    ``browser``: a Playwright browser already launched (a test's), else one is launched and closed here."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            launched = launch(playwright, executable)
            try:
                return capture(url, out_dir, executable, launched)
            finally:
                launched.close()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = base_of(url)
    shots: dict[str, Path] = {}
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(url)

        def shot(name: str, path: str | None, full_page: bool = True) -> None:
            if path is None:
                return
            page.goto(base + path)
            page.wait_for_load_state("load")
            target = out / f"{name}.png"
            target.write_bytes(compact_png(page.screenshot(full_page=full_page)))
            shots[name] = target

        def links(pattern: str) -> list[str]:
            hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
            return [h for h in hrefs if h and re.fullmatch(pattern, h)]

        def newest_succeeded_execution() -> str | None:
            rows = page.locator("table.grid tbody tr")
            for i in range(rows.count()):
                if "Succeeded" in rows.nth(i).inner_text():
                    return rows.nth(i).locator("a").first.get_attribute("href")
            return next(iter(links(r"/pipelines/[^/]+/executions/[^/]+")), None)

        shot("pipelines", "/pipelines")
        shot("execution", newest_succeeded_execution())
        jobs = links(r"/jobs/training/.+") or links(r"/jobs/(processing|transform)/.+")
        shot("job", jobs[0] if jobs else None)
        shot("registry", "/registry")
        versions = [h.rsplit("/", 1)[1] for h in links(r"/registry/versions/\d+")]
        shot("version", f"/registry/versions/{versions[0]}" if versions else None)
        if len(versions) > 1:
            shot("compare", f"/registry/compare?a={versions[1]}&b={versions[0]}&only=differs")
        shot("endpoint", "/endpoint")
        shot("captures", "/captures")
        shot("review", "/review")
    finally:
        context.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the console URL with its token (SCONES_CONSOLE_URL)")
    parser.add_argument("--out", default="docs/console")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    for name, path in capture(args.url, args.out, args.chromium).items():
        print(f"{name:<10} {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
