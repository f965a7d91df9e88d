"""Gzip for text responses (HTML, CSS, SVG, JSON, CSV), except on staff pages.

`/` with its stylesheet is ~12 KB as sent and ~4 KB gzipped: on a phone with a weak signal in a
workshop that is the difference between one round trip and several. Staff and admin pages stay
uncompressed: they hold a session's CSRF token next to text an outsider can put there (a case's
text, a search), which is what a BREACH-style length attack needs; they are read on office
laptops, where size matters little. nginx in front (deploy/nginx) passes the app's gzip through.
"""

from __future__ import annotations

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

UNCOMPRESSED_PREFIXES = ("/staff", "/admin")
# Already compressed: images, archives, and .xlsx (a zip file).
EXCLUDED_TYPES = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
MINIMUM_SIZE = 500  # below one packet's worth, gzip's header and CPU are not worth it
LEVEL = 6  # zlib's default: ~all of level 9's gain at a fraction of its CPU


class Compression:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL,
                                   exclude_content_types=EXCLUDED_TYPES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(UNCOMPRESSED_PREFIXES):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
