"""The one check at the edge for every route: no NUL and only valid UTF-8 in a query string or
a urlencoded form (DESIGN: bad input gets a Chinese 4xx, never a 500, nothing stored).

PostgreSQL refuses NUL in text (the driver raises, a 500 on any route that passes such a value
to a query) and SQLite stores it; invalid percent-encoded UTF-8 would otherwise be decoded with
U+FFFD replacements. No browser sends either from our pages, so the whole request is refused.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

MESSAGE = "提交的内容包含空字符或无法识别的编码（编码错误），请删除后用本站的页面重新提交。"


def clean(raw: bytes) -> bool:
    """True when every name and value of ``a=b&c=d`` (percent-decoded) is NUL-free UTF-8."""
    if not raw:
        return True
    if b"%" not in raw and b"\x00" not in raw:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    for part in raw.replace(b"+", b" ").split(b"&"):
        data = unquote_to_bytes(part)
        if b"\x00" in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
