"""The year summary (年度总结) in headless Chromium, as a leader: from the monthly report to the
year page, the Word file downloaded through its link and read back (its figures equal the
page's), and the page printed on A4 for the meeting (screenshots and PDF in ``screenshots/``)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from suggestbox.db import migrate, orm
from suggestbox.settings import Settings
from tests.conftest import PASSWORD, SHOTS, start_server, stop_server
from tests.test_report_browser import A4_PT, A4_WIDTH_PX, pdf_pages
from tests.test_year_report import PUBLISHED, SECRET_TEXT, check_docx_matches_page


async def _seed(url: str, data_dir: Path) -> None:
    from tests.test_year_report import build_year_world

    await migrate(url)
    async with orm(Settings(data_dir=data_dir, database_url=url)):
        await build_year_world()  # creates the leader "lead"


def test_year_page_download_and_print(browser, tmp_path):
    url = f"sqlite://{tmp_path / 'year.sqlite3'}"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _seed(url, tmp_path / "data")).result()
    server = start_server(tmp_path, database_url=url)
    try:
        ctx = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        page = ctx.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/staff/login?next=/staff/reports/2025-12")
        page.fill("#username", "lead")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/staff/reports/2025-12")
        # From the monthly report to its year.
        page.click("#year-link")
        page.wait_for_url("**/staff/reports/2025")
        assert page.locator("h1").inner_text().startswith("职工百宝箱 · 2025 年度总结")
        assert page.locator("[data-figure='year.total.received']").inner_text() == "9"
        assert page.locator("[data-figure='year.rate.satisfaction']").inner_text() == "75.0%"
        assert page.locator("#by-month tbody tr").count() == 12
        assert page.locator("#typical li").count() == 2
        body = page.locator("body").inner_text()
        assert PUBLISHED["X1"] in body and SECRET_TEXT not in body
        page.screenshot(path=str(SHOTS / "year-screen.png"), full_page=True)

        # The Word file through its link, read back with python-docx.
        with page.expect_download() as info:
            page.click("#docx-link")
        download = info.value
        assert download.suggested_filename == "year-2025.docx"
        saved = tmp_path / download.suggested_filename
        download.save_as(str(saved))
        check_docx_matches_page(saved.read_bytes(), page.content())

        # Printed for the meeting: no navigation, nothing wider than A4, A4 sheets.
        page.emulate_media(media="print")
        page.set_viewport_size({"width": int(A4_WIDTH_PX), "height": 1123})
        assert not page.locator("header.top").is_visible()
        assert not page.locator(".report-tools").is_visible()
        assert page.locator("#opening").is_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"year page overflows A4 width by {overflow}px"
        page.screenshot(path=str(SHOTS / "year-print.png"), full_page=True)
        pdf = page.pdf(prefer_css_page_size=True, print_background=True,
                       path=str(SHOTS / "year-2025.pdf"))
        pages = pdf_pages(pdf)
        assert 1 <= len(pages) <= 6, pages
        for w, h in pages:
            assert abs(w - A4_PT[0]) < 1 and abs(h - A4_PT[1]) < 1
        assert not [p for p in problems if "Content Security Policy" in p], problems
        ctx.close()
    finally:
        stop_server(server)
