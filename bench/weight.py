#!/usr/bin/env python3
"""Bytes on the wire for the public pages, sent plain and gzipped (what the app sends with and
without `Accept-Encoding: gzip`). A measurement, not a test.

    .venv/bin/python bench/weight.py http://127.0.0.1:8000     # a running server
"""

from __future__ import annotations

import sys

import httpx

PAGES = ("/", "/static/style.css", "/track", "/board", "/static/favicon.svg")
GOAL = 14 * 1024  # the first round trip's worth (TCP initial window, ~10 packets)


def wire(client: httpx.Client, url: str, encoding: str) -> tuple[int, int, str]:
    """Body bytes as transferred, header bytes, and the Content-Encoding used."""
    with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as r:
        r.raise_for_status()
        for _ in r.iter_raw():
            pass
        head = sum(len(k) + len(v) + 4 for k, v in r.headers.raw) + 17
        return r.num_bytes_downloaded, head, r.headers.get("content-encoding", "")


def measure(base: str) -> list[str]:
    lines = ["| path | plain B | gzip B | saved | headers B |",
             "| --- | ---: | ---: | ---: | ---: |"]
    first = {"identity": 0, "gzip": 0}
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in PAGES:
            plain, head, _ = wire(client, path, "identity")
            packed, _, used = wire(client, path, "gzip")
            if path in ("/", "/static/style.css"):
                first["identity"] += plain
                first["gzip"] += packed
            saved = f"{1 - packed / plain:.0%}" if used == "gzip" else "— (not compressed)"
            lines.append(f"| `{path}` | {plain:,} | {packed:,} | {saved} | {head:,} |")
    verdict = "within" if first["gzip"] <= GOAL else "OVER"
    lines.append("")
    lines.append(f"Weight of `/` with its CSS on the wire: {first['identity']:,} B plain, "
                 f"{first['gzip']:,} B gzipped by the app, {verdict} the 14 KB goal ({GOAL:,} B).")
    return lines


if __name__ == "__main__":
    print("\n".join(measure(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")))
