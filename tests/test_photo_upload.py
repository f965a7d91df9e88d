"""Photos through the real app on both databases (issue 15): what is stored, who sees what, and
bad files refused with the worker's text kept and nothing stored."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from PIL import Image

from suggestbox.models import Case, Event, Photo, StaffUser, UsedFormToken
from tests.conftest import (
    RECEIPT_RE,
    add_user,
    csrf_of,
    form_token,
    login,
    make_client,
    track,
)
from tests.test_photos import MARKERS, _png, _png_bomb, _zip_polyglot, evil_photo

TEXT = "配电室门口的接地线夹松了，一碰就晃，见照片。"


def jpeg(color: str = "orange", size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


async def post_case(client, files: list[tuple[str, bytes]], body: str = TEXT):
    token = form_token((await client.get("/")).text)
    parts = [("token", (None, token)), ("category", (None, "4")), ("body", (None, body))]
    parts += [("photos", (name, data, "image/jpeg")) for name, data in files]
    return await client.post("/", files=parts)


async def counts() -> tuple[int, int, int, int]:
    return (await Case.all().count(), await Event.all().count(), await Photo.all().count(),
            await UsedFormToken.all().count())


async def test_photos_are_clean_and_seen_by_the_right_people(client, app, tmp_path: Path):
    evil = evil_photo(tmp_path)
    r = await post_case(client, [("IMG_20261126_094107.jpg", evil), ("b.jpg", jpeg("green"))])
    assert r.status_code == 303, r.text[:500]
    receipt = RECEIPT_RE.search((await client.get("/receipt")).text).group(1)
    stored = await Photo.all()
    assert len(stored) == 2
    for p in stored:
        for blob in (p.data, p.thumb):
            for marker in MARKERS.values():
                assert marker.encode() not in blob
            assert b"Exif" not in blob and b"IMG_2026" not in blob
        assert max(p.width, p.height) <= 2048
    # The worker sees their photos (inline thumbnails) on the tracking page.
    page = await track(client, receipt)
    assert page.text.count('src="data:image/jpeg;base64,') == 2
    # Staff: a handler not assigned gets 404; a leader gets the image, not cached, nosniff.
    await add_user("lead", "leader")
    await add_user("h1", "handler")
    photo = stored[0]
    async with make_client(app) as h:
        await login(h, "h1")
        assert (await h.get(f"/staff/photos/{photo.id}")).status_code == 404
    async with make_client(app) as lead:
        csrf = await login(lead, "lead")
        case = await Case.get()
        case_page = await lead.get(f"/staff/cases/{case.id}")
        assert case_page.text.count("/staff/photos/") >= 4  # link + thumbnail for each
        r = await lead.get(f"/staff/photos/{photo.id}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content == photo.data
        assert (await lead.get(f"/staff/photos/{uuid.uuid4()}")).status_code == 404
        assert (await lead.get("/staff/photos/%C2%B2")).status_code == 404
        # Nobody else: anonymous requests are sent to the login page, the board shows nothing.
        async with make_client(app) as anon:
            assert (await anon.get(f"/staff/photos/{photo.id}")).status_code == 303
            assert (await anon.get(f"/board/photos/{photo.id}")).status_code == 404
        # Answer and publish with one chosen photo.
        lead_id = (await StaffUser.get(username="lead")).id
        for data in ({"action": "accept", "assignee": str(lead_id)},
                     {"action": "reply", "body": "已紧固，并加了防松垫片。"}):
            assert (await lead.post(f"/staff/cases/{case.id}/act",
                                    data={"csrf": csrf, **data})).status_code == 303
        page = await lead.get(f"/staff/cases/{case.id}")
        assert "人脸、胸牌" in page.text  # the reminder before publishing photos
        r = await lead.post(f"/staff/cases/{case.id}/act", data={
            "csrf": csrf_of(page.text), "action": "publish",
            "summary": "配电室门口接地线夹已紧固。", "photo": str(photo.id)})
        assert r.status_code == 303
    board = await client.get(f"/board/{case.id}")
    assert f"/board/photos/{photo.id}" in board.text
    assert f"/board/photos/{stored[1].id}" not in board.text
    shown = await client.get(f"/board/photos/{photo.id}")
    assert shown.status_code == 200 and shown.content == photo.data
    assert (await client.get(f"/board/photos/{stored[1].id}")).status_code == 404


@pytest.mark.parametrize(("name", "files", "message"), [
    ("truncated", [("a.jpg", jpeg()[:2000])], "不完整"),
    ("bomb", [("a.png", _png_bomb())], "尺寸太大"),
    ("html-polyglot", [("a.png", _png((40, 40)) + b"<html><script>x</script>")], "不是普通"),
    ("zip-polyglot", [("a.png", _zip_polyglot())], "不是普通"),
    ("svg", [("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')], "不是普通"),
    ("wrong-extension", [("a.jpg", b"MZ\x90\x00 this is an exe, not a jpeg " * 20)], "无法识别"),
    ("four-photos", [(f"{i}.jpg", jpeg()) for i in range(4)], "最多只能附 3 张"),
    ("too-big", [("a.jpg", jpeg() + b"\xff" * (10 * 1024 * 1024))], "太大了"),
])
async def test_bad_photos_keep_the_text_and_store_nothing(client, name, files, message):
    before = await counts()
    r = await post_case(client, files)
    assert r.status_code == 422, r.text[:300]
    assert message in r.text
    assert TEXT in r.text  # the worker's words survive
    assert re.search(r'id="photos-error"', r.text)
    assert await counts() == before


async def test_zero_byte_named_file_is_refused(client):
    before = await counts()
    token = form_token((await client.get("/")).text)
    r = await client.post("/", files=[
        ("token", (None, token)), ("category", (None, "4")), ("body", (None, TEXT)),
        ("photos", ("empty.jpg", b"", "image/jpeg"))])
    # An empty photo the worker chose (a file name, no bytes) is refused ...
    assert r.status_code == 422 and "空文件" in r.text and await counts() == before
    # ... while an empty file input (no name, no bytes: nothing chosen) is no photo at all.
    r = await client.post("/", files=[
        ("token", (None, token)), ("category", (None, "4")), ("body", (None, TEXT)),
        ("photos", ("", b"", "application/octet-stream"))])
    assert r.status_code == 303 and await Photo.all().count() == 0


async def test_eleven_photos_and_fifty_megabytes_are_refused(client):
    before = await counts()
    r = await post_case(client, [(f"{i}.jpg", jpeg()) for i in range(11)])
    assert r.status_code == 400 and "照片太多" in r.text
    r = await post_case(client, [("big.jpg", b"\xff" * (50 * 1024 * 1024))])
    assert r.status_code == 413 and "照片太大" in r.text
    assert await counts() == before


async def test_followup_with_a_photo(client):
    r = await post_case(client, [])
    assert r.status_code == 303
    receipt = RECEIPT_RE.search((await client.get("/receipt")).text).group(1)
    page = await track(client, receipt)
    r = await client.post("/track/followup", files=[
        ("token", (None, form_token(page.text))), ("receipt", (None, receipt)),
        ("body", (None, "")), ("photos", ("c.jpg", jpeg("purple"), "image/jpeg"))])
    assert r.status_code == 200 and "已补充" in r.text
    event = await Event.get(action="followup")
    assert event.body == "（补充照片）"
    assert await Photo.filter(event_id=event.id).count() == 1
    assert r.text.count('src="data:image/jpeg;base64,') == 1
