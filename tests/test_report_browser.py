"""The monthly summary in headless Chromium: printed on A4, charts drawn, nothing cut off, no
CSP violations. The PDF and a print-media screenshot go to the git-ignored ``screenshots/``."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from suggestbox.db import migrate, orm
from suggestbox.settings import Settings
from tests.conftest import PASSWORD, SHOTS, start_server, stop_server

A4_PT = (595.3, 841.9)
A4_WIDTH_PX = 210 / 25.4 * 96  # 793.7 CSS pixels


async def _seed(url: str, data_dir: Path) -> None:
    from tests.test_reports import build_world

    await migrate(url)
    async with orm(Settings(data_dir=data_dir, database_url=url)):
        await build_world()  # creates the leader "lead" with the shared test password


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


def test_report_prints_on_a4(browser, tmp_path):
    url = f"sqlite://{tmp_path / 'report.sqlite3'}"
    # The sync Playwright API runs an event loop in this thread: seed from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _seed(url, tmp_path / "data")).result()
    server = start_server(tmp_path, database_url=url)
    try:
        ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        page = ctx.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/staff/login?next=/staff/reports/2026-03")
        page.fill("#username", "lead")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/staff/reports/2026-03")
        assert page.locator("[data-figure='rate.response']").inner_text() == "66.7%"
        assert page.locator("svg.chart").count() == 2
        assert page.locator("svg.chart rect").count() > 20
        page.screenshot(path=str(SHOTS / "report-screen.png"), full_page=True)

        page.emulate_media(media="print")
        page.set_viewport_size({"width": int(A4_WIDTH_PX), "height": 1123})
        assert not page.locator("header.top").is_visible()  # no navigation on paper
        assert not page.locator(".report-tools").is_visible()
        assert page.locator(".report").is_visible()
        # Nothing wider than the sheet: no horizontal overflow, charts inside the page.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"report overflows A4 width by {overflow}px"
        for i in range(2):
            box = page.locator("svg.chart").nth(i).bounding_box()
            assert box is not None and 300 < box["width"] <= A4_WIDTH_PX and box["height"] > 100
        page.screenshot(path=str(SHOTS / "report-print.png"), full_page=True)
        # No format given: the sheet size comes from the page's own CSS (@page size: A4).
        # Without that rule Chromium prints on its default, US Letter (612 x 792 pt), and the
        # size check below fails.
        pdf = page.pdf(prefer_css_page_size=True, print_background=True,
                       path=str(SHOTS / "report-2026-03.pdf"))
        pages = pdf_pages(pdf)
        assert 1 <= len(pages) <= 6, pages
        for w, h in pages:
            assert abs(w - A4_PT[0]) < 1 and abs(h - A4_PT[1]) < 1
        assert not [p for p in problems if "Content Security Policy" in p], problems
        ctx.close()
    finally:
        stop_server(server)
