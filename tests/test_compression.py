"""The app gzips public text responses for clients that accept it, and never staff pages (they
carry a session's CSRF token beside text an outsider can put there: a BREACH-style setting)."""

from __future__ import annotations

import gzip

from tests.conftest import add_user, login, make_client

GZ = {"Accept-Encoding": "gzip"}


async def test_public_text_is_gzipped_staff_pages_are_not(app):
    await add_user("adm", "admin")
    async with make_client(app) as c:
        for path in ("/", "/static/style.css", "/track", "/static/favicon.svg"):
            # httpx decodes transparently: compare with what the server actually sent.
            async with c.stream("GET", path, headers=GZ) as r:
                raw = b"".join([chunk async for chunk in r.aiter_raw()])
            plain = await c.get(path, headers={"Accept-Encoding": "identity"})
            if len(plain.content) >= 500:
                assert "accept-encoding" in r.headers.get("vary", "").lower(), path
                assert r.headers["content-encoding"] == "gzip", path
                # Same page (forms carry a fresh one-time token each time: same length).
                assert len(gzip.decompress(raw)) == len(plain.content), path
                assert len(raw) < len(plain.content) * 0.8, path
            else:
                assert "content-encoding" not in r.headers, path
            assert "content-encoding" not in plain.headers, path
        await login(c, "adm")
        for path in ("/admin", "/staff/cases", "/staff/login"):
            r = await c.get(path, headers=GZ)
            assert r.status_code == 200 and "content-encoding" not in r.headers, path
        favicon = await c.get("/favicon.ico")
        assert favicon.status_code == 200 and favicon.content.startswith(b"\x00\x00\x01\x00")
