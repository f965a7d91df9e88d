"""Issue 15 in Chromium on a phone: two photos on a hazard, staff open them, the worker sees
them on /track, the leader publishes one and the board shows only that one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer
from tests.test_browser import LAPTOP, PHONE, Watched, action_form, add_staff, staff_login
from tests.test_photo_upload import jpeg
from tests.test_photos import evil_photo
from tests.test_worker_path_browser import db_rows, open_case, phone_track, staff_do


def test_hazard_photos_from_phone_to_board(browser: Any, live_server: LiveServer,
                                           tmp_path: Path) -> None:
    server = live_server
    add_staff(server, "lead", "leader", "王主任")
    first, second = tmp_path / "IMG_0001.jpg", tmp_path / "IMG_0002.jpg"
    first.write_bytes(evil_photo(tmp_path))
    second.write_bytes(jpeg("green", (1200, 900)))
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_bytes(b"just some text pretending to be a photo" * 10)
    phone = Watched(browser, server, **PHONE)
    laptop = Watched(browser, server, **LAPTOP)
    try:
        p = phone.page
        p.goto("/")
        p.get_by_label("安全隐患", exact=True).check()
        text = "牵引变电所大门口的接地线夹松了，一碰就晃，照片在下面。"
        p.fill("#body", text)
        assert "人脸" in p.inner_text("main")  # the advice next to the picker
        # First a file that is not a photo: refused, the text and the category survive.
        p.set_input_files("#photos", [str(first), str(not_a_photo)])
        p.click("button.primary")
        p.wait_for_selector("#photos-error")
        assert "第 2 张照片" in p.inner_text("#photos-error")
        assert p.input_value("#body") == text
        assert p.get_by_label("安全隐患", exact=True).is_checked()
        phone.shot("p1-photo-error")
        p.set_input_files("#photos", [str(first), str(second)])
        p.click("button.primary")
        p.wait_for_url(re.compile(r"/receipt$"))
        receipt = p.get_attribute("[data-receipt]", "data-receipt")
        assert receipt and db_rows(server, "SELECT COUNT(*) FROM photo") == [(2,)]

        phone_track(phone, receipt)
        assert p.locator(".timeline img.thumb").count() == 2
        phone.shot("p2-track-photos")

        staff_login(laptop, "lead")
        url = open_case(laptop, "接地线夹")
        lp = laptop.page
        assert lp.locator(".timeline img.thumb").count() == 2
        sizes = []
        for i in range(2):  # photos of one event have no stored order (random keys)
            with laptop.context.expect_page() as opened:
                lp.locator(".timeline a:has(img.thumb)").nth(i).click()
            full = opened.value
            full.wait_for_load_state()
            sizes.append(tuple(full.evaluate(
                "[document.images[0].naturalWidth, document.images[0].naturalHeight]")))
            full.close()
        # The phone photo is upright (orientation 6 applied) and at most 2048 px.
        assert sorted(sizes) == [(1200, 900), (1365, 2048)]
        laptop.shot("p3-staff-photos")
        staff_do(laptop, url, "accept", assignee="王主任（领导）")
        staff_do(laptop, url, "reply", "已紧固，并加了防松垫片。")
        lp.goto(url)
        publish = action_form(laptop, "publish")
        assert "人脸、胸牌" in publish.inner_text()
        publish.locator("input[name=photo]").first.check()
        publish.locator("textarea[name=summary]").fill("变电所大门口接地线夹已紧固。")
        with lp.expect_navigation():
            publish.locator("button[type=submit]").click()
        assert db_rows(server, "SELECT COUNT(*) FROM photo WHERE published") == [(1,)]

        p.goto("/board")
        p.click("text=变电所大门口接地线夹已紧固")
        p.wait_for_url(re.compile(r"/board/[0-9a-f-]{36}$"))
        assert p.locator("img.board-photo").count() == 1
        assert p.evaluate("document.querySelector('img.board-photo').naturalWidth") > 0
        phone.shot("p4-board-photo")
        for w in (phone, laptop):
            w.check_clean()
    finally:
        phone.close()
        laptop.close()
