"""How long a receipt can be shown again (issue 11, item 2), on both databases.

Within the window the submitting browser sees the same receipt on reload and when the same form
is sent again; after it, a resent form stores nothing and shows no receipt (a shared phone's
history gives nothing away); at no point does a resend create a second case.
"""

from __future__ import annotations

import asyncio

from suggestbox import receipts, tokens
from suggestbox.models import Case
from tests.conftest import RECEIPT_RE, form_token


async def _post_form(client, token: str):
    return await client.post("/", data={"token": token, "category": "1",
                                        "body": "澡堂的热水器又坏了，冬天洗不了澡。"})


async def test_resend_inside_the_window_shows_the_same_receipt(client):
    token = form_token((await client.get("/")).text)
    first = await _post_form(client, token)
    receipt = RECEIPT_RE.search((await client.get("/receipt")).text).group(1)
    # The first answer was lost (weak signal): no cookie came back, the phone sends again.
    client.cookies.clear()
    again = await _post_form(client, token)
    assert first.status_code == again.status_code == 303
    assert RECEIPT_RE.search((await client.get("/receipt")).text).group(1) == receipt
    assert await Case.all().count() == 1


async def test_double_tap_shows_one_receipt(client):
    token = form_token((await client.get("/")).text)
    answers = await asyncio.gather(*(_post_form(client, token) for _ in range(4)))
    assert [a.status_code for a in answers] == [303] * 4
    assert await Case.all().count() == 1


async def test_resend_after_the_window_stores_nothing_and_shows_nothing(client, app, settings):
    token = form_token((await client.get("/")).text)
    await _post_form(client, token)
    receipt = RECEIPT_RE.search((await client.get("/receipt")).text).group(1)
    # Ten minutes later: the browser's cookie has expired and the store's key has timed out.
    client.cookies.clear()
    nonce = token.split(".")[1]
    await app.state.throttle.store.delete(
        "receipt-window:" + tokens.used_id(settings.secret_key, nonce))
    late = await _post_form(client, token)
    assert late.status_code == 409
    assert "没有重复提交" in late.text and receipt not in late.text
    assert "data-receipt" not in (await client.get("/receipt")).text
    assert await Case.all().count() == 1


def test_window_cookie_is_signed_and_ends():
    cookie = receipts.show_again_cookie("k", "nonce", 1000.0)
    assert receipts.show_again_nonce("k", cookie, 1000.0 + receipts.SHOW_AGAIN_SECONDS) == "nonce"
    assert receipts.show_again_nonce("k", cookie, 1001.0 + receipts.SHOW_AGAIN_SECONDS) is None
    assert receipts.show_again_nonce("other", cookie, 1000.0) is None
    nonce, until, sig = cookie.split(".")
    assert receipts.show_again_nonce("k", f"{nonce}.{int(until) + 600}.{sig}", 1000.0) is None
    assert receipts.show_again_nonce("k", "é.1.2", 1000.0) is None
