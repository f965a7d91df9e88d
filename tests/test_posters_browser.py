"""Posters and the board in headless Chromium: A4 print size, a QR code that decodes, the
base-URL warning, and the board on a phone with JavaScript off. Screenshots and PDFs go to the
git-ignored ``screenshots/`` directory."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image

from tests.conftest import PASSWORD, SHOTS, LiveServer, start_server, stop_server

BASE = "http://box.example.cn"
A4_PX = (210 / 25.4 * 96, 297 / 25.4 * 96)  # CSS pixels at 96 dpi: 793.7 x 1122.5
A4_PT = (595.3, 841.9)


def serve(tmp_path: Path, base_url: str) -> LiveServer:
    server = start_server(tmp_path, extra_env={"SUGGESTBOX_BASE_URL": base_url})
    server.cli("user", "add", "admin1", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n")
    server.cli("team", "add", "jx1", "检修一班")
    return server


def staff_page(browser: Any, server: LiveServer, username: str, **context: Any) -> Any:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.goto(server.url + "/staff/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/staff/cases")
    return page


def requests_of(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def decode(png: bytes) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))]


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


def test_posters_print_on_a4_with_a_qr_code_that_decodes(browser, tmp_path):
    server = serve(tmp_path, BASE)
    try:
        page = staff_page(browser, server, "admin1", viewport={"width": 900, "height": 1200})
        seen = requests_of(page)
        page.goto(server.url + "/admin/posters/print?all=1")
        page.emulate_media(media="print")
        posters = page.locator("section.poster")
        assert posters.count() == 2
        expected = {None: BASE + "/", "jx1": BASE + "/?t=jx1"}
        for i in range(2):
            poster = posters.nth(i)
            box = poster.bounding_box()
            assert box is not None
            assert abs(box["width"] - A4_PX[0]) < 2 and abs(box["height"] - A4_PX[1]) < 2
            qr = poster.locator("svg.qr")
            qr_box = qr.bounding_box()
            assert qr_box is not None and qr_box["width"] > A4_PX[0] * 0.55  # large
            shot = poster.screenshot(path=str(SHOTS / f"poster-{i}.png"))
            assert decode(shot) == [expected[poster.get_attribute("data-team")]]
        assert page.locator("[data-base-url-missing]").count() == 0
        assert "box.example.cn/?t=jx1" in posters.nth(1).inner_text()
        assert "检修一班" in posters.nth(1).inner_text()
        pdf = page.pdf(path=str(SHOTS / "posters.pdf"), prefer_css_page_size=True,
                       print_background=True)
        sizes = pdf_pages(pdf)
        assert len(sizes) == 2, sizes  # one poster per page
        for w, h in sizes:
            assert abs(w - A4_PT[0]) < 3 and abs(h - A4_PT[1]) < 3, sizes
        assert seen and all(u.startswith(server.url) for u in seen), seen
        page.context.close()
    finally:
        stop_server(server)


def test_cli_poster_file_prints_with_a_qr_code(browser, tmp_path):
    server = serve(tmp_path, BASE)
    try:
        out = tmp_path / "poster.html"
        server.cli("qr", "--poster", "--team", "jx1", "--out", str(out))
    finally:
        stop_server(server)
    ctx = browser.new_context(viewport={"width": 900, "height": 1200})
    page = ctx.new_page()
    seen = requests_of(page)
    page.goto(out.as_uri())
    page.emulate_media(media="print")
    poster = page.locator("section.poster")
    assert poster.count() == 1
    assert decode(poster.screenshot(path=str(SHOTS / "poster-cli.png"))) == [BASE + "/?t=jx1"]
    pdf = page.pdf(path=str(SHOTS / "poster-cli.pdf"), prefer_css_page_size=True)
    assert len(pdf_pages(pdf)) == 1
    assert seen == [out.as_uri()]  # standalone: nothing else is loaded
    ctx.close()


def test_poster_warns_instead_of_a_qr_code_without_base_url(browser, tmp_path):
    server = serve(tmp_path, "")
    try:
        page = staff_page(browser, server, "admin1", viewport={"width": 900, "height": 1200})
        page.goto(server.url + "/admin/posters/print?t=jx1")
        page.emulate_media(media="print")
        warning = page.locator("[data-base-url-missing]")
        assert warning.is_visible() and "SUGGESTBOX_BASE_URL" in warning.inner_text()
        assert page.locator("svg.qr").count() == 0
        assert page.locator(".poster-noqr").is_visible()
        shot = page.screenshot(path=str(SHOTS / "poster-no-base-url.png"), full_page=True)
        assert decode(shot) == []
        page.pdf(path=str(SHOTS / "poster-no-base-url.pdf"), prefer_css_page_size=True)
        page.context.close()
    finally:
        stop_server(server)


def test_publish_in_the_browser_and_read_the_board_on_a_phone_without_js(browser, tmp_path):
    server = serve(tmp_path, "")
    server.cli("user", "add", "leader1", "--role", "leader", "--password-stdin",
               stdin=PASSWORD + "\n")
    phone = {"viewport": {"width": 360, "height": 740}, "java_script_enabled": False,
             "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
    try:
        worker = browser.new_context(**phone).new_page()
        seen = requests_of(worker)
        worker.goto(server.url + "/?t=jx1")
        worker.check("input[name=category] >> nth=0")
        worker.fill("#body", "二号检修库李师傅的工具柜门坏了，关不上。")
        worker.click("button[type=submit]")
        receipt = worker.locator("[data-receipt]").get_attribute("data-receipt")
        assert receipt
        leader = staff_page(browser, server, "leader1")
        leader.click("table.cases tbody a >> nth=0")
        leader.select_option("form.action-accept select[name=assignee]", index=1)
        leader.click("form.action-accept button[type=submit]")
        leader.click("form.action-start button[type=submit]")
        leader.fill("form.action-reply textarea[name=body]", "工具柜已修好，门锁换新。")
        leader.click("form.action-reply button[type=submit]")
        summary = leader.locator("form.action-publish textarea[name=summary]")
        assert "李师傅" in summary.input_value()  # prefilled from the original
        summary.fill("检修库工具柜门损坏。")
        leader.check("form.action-publish input[name=show_reply]")
        leader.click("form.action-publish button[type=submit]")
        assert leader.locator("form.action-unpublish").count() == 1
        leader.context.close()

        worker.goto(server.url + "/board")
        item = worker.locator("article.board-item")
        assert item.count() == 1
        text = item.inner_text()
        assert "检修库工具柜门损坏。" in text and "门锁换新" in text and "李师傅" not in text
        width = worker.locator("body").bounding_box()
        assert width is not None and width["width"] <= 360  # no sideways scrolling
        worker.screenshot(path=str(SHOTS / "board-phone.png"), full_page=True)
        worker.click("article.board-item h2 a")
        assert re.search(r"/board/[0-9a-f-]{36}$", worker.url)
        worker.screenshot(path=str(SHOTS / "board-item-phone.png"), full_page=True)
        item_url = worker.url
        # The tracking page links to the same board item.
        worker.goto(server.url + "/track")
        worker.fill("#receipt", receipt)
        worker.click("button[type=submit]")
        worker.click("a:text-is('公示')")
        assert worker.url == item_url
        assert all(u.startswith(server.url) for u in seen), seen
        worker.context.close()
    finally:
        stop_server(server)
