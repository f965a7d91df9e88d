"""A smoke run against a running server over real HTTP, standard library only, so it runs against
an installed wheel (tests/test_wheel.py) or inside a built container image (.ci/container).

    python3 tests/smoke.py http://127.0.0.1:8000

GET / (the form and its one-time token), the stylesheet and the favicon, POST one case, follow
the redirect to the receipt page and read the receipt code.
"""

from __future__ import annotations

import http.cookiejar
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def wait_healthy(base: str, timeout: float = 60.0, alive: object = None) -> None:
    """Wait until GET /healthz answers 200. ``alive`` is an optional callable that returns False
    once the server process has died (no point waiting any longer)."""
    deadline = time.monotonic() + timeout
    while True:
        if callable(alive) and not alive():
            raise RuntimeError("the server exited before answering /healthz")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base}/healthz did not answer within {timeout:.0f} s")
        time.sleep(0.3)


def submit_case(base: str, body: str = "冒烟测试：车间东门台阶照明不足，希望加装灯具。") -> str:
    """Submit one case as a browser would; return the receipt code shown once."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/", timeout=10) as r:
        assert r.status == 200, r.status
        page = r.read().decode()
    assert "<form" in page and "职工百宝箱" in page, page[:500]
    for asset in ("/static/style.css", "/static/favicon.svg"):
        with opener.open(base + asset, timeout=10) as r:
            assert r.status == 200 and r.read(), asset
    token = re.search(r'name="token" value="([^"]+)"', page)
    category = re.search(r'name="category" value="([^"]+)"', page)
    assert token and category, "no form token or category on /"
    data = urllib.parse.urlencode(
        {"token": token.group(1), "category": category.group(1), "body": body}
    ).encode()
    # urllib follows the 303 to /receipt with the one-time cookie the POST set.
    post = urllib.request.Request(base + "/", data=data)  # noqa: S310 (http from the caller)
    with opener.open(post, timeout=20) as r:
        assert r.url.endswith("/receipt"), r.url
        receipt_page = r.read().decode()
    m = re.search(r'data-receipt="([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})"', receipt_page)
    assert m, receipt_page[:1000]
    return m.group(1)


def main(argv: list[str]) -> int:
    base = (argv[1] if len(argv) > 1 else "http://127.0.0.1:8000").rstrip("/")
    wait_healthy(base)
    receipt = submit_case(base)
    print(f"smoke: GET / and one submission on {base}: receipt {receipt[:4]}-…")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
