"""What `suggestbox serve` prints: on loopback, how to reach it from a phone; on the network, the
URLs a phone can open and a QR code (decoded here from the printed characters) of the box."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from suggestbox import cli, lan
from suggestbox.settings import Settings

CELL = re.compile(r"\x1b\[(30|97)m\x1b\[(40|107)m▀")


def decode_terminal_qr(text: str) -> list[str]:
    """Turn the printed half-block characters back into pixels and read the code."""
    rows = [CELL.findall(line) for line in text.splitlines() if "▀" in line]
    assert rows and all(len(r) == len(rows[0]) for r in rows)
    scale = 8
    image = Image.new("L", (len(rows[0]) * scale, len(rows) * 2 * scale), 255)
    for y, row in enumerate(rows):
        for x, (fg, bg) in enumerate(row):
            for half, dark in ((0, fg == "30"), (1, bg == "40")):
                if dark:
                    image.paste(0, (x * scale, (2 * y + half) * scale,
                                    (x + 1) * scale, (2 * y + half + 1) * scale))
    return [r.text for r in zxingcpp.read_barcodes(image)]


def settings(tmp_path: Path, base_url: str = "") -> Settings:
    return Settings(data_dir=tmp_path, base_url=base_url)


def test_loopback_says_how_to_serve_the_local_network(tmp_path, capsys, caplog):
    with caplog.at_level(logging.DEBUG):
        cli._announce("127.0.0.1", 8000, settings(tmp_path), tty=True)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/" in out
    assert "make run HOST=0.0.0.0" in out and "suggestbox serve --host 0.0.0.0" in out
    assert "▀" not in out  # no QR code for an address a phone cannot open
    assert caplog.records == []


def test_wildcard_prints_lan_urls_and_a_qr_code(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setattr(lan, "lan_addresses", lambda: ["192.168.1.23", "10.8.0.4"])
    with caplog.at_level(logging.DEBUG):
        cli._announce("0.0.0.0", 8000, settings(tmp_path), tty=True)  # noqa: S104
    out = capsys.readouterr().out
    assert "http://192.168.1.23:8000/" in out and "http://10.8.0.4:8000/" in out
    assert decode_terminal_qr(out) == ["http://192.168.1.23:8000/"]
    assert caplog.records == [], "printed, never logged"


def test_the_qr_code_is_the_configured_base_url(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(lan, "lan_addresses", lambda: ["192.168.1.23"])
    cli._announce("0.0.0.0", 8000, settings(tmp_path, "https://box.example.cn"), tty=True)  # noqa: S104
    assert decode_terminal_qr(capsys.readouterr().out) == ["https://box.example.cn/"]


def test_no_qr_code_when_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(lan, "lan_addresses", lambda: ["192.168.1.23"])
    cli._announce("0.0.0.0", 8000, settings(tmp_path), tty=False)  # noqa: S104
    out = capsys.readouterr().out
    assert "http://192.168.1.23:8000/" in out and "\x1b[" not in out


@pytest.mark.parametrize(("host", "port", "urls"), [
    ("127.0.0.1", 8000, []),
    ("localhost", 8000, []),
    ("::1", 8000, []),
    ("192.168.5.9", 8000, ["http://192.168.5.9:8000/"]),
    ("fd00::5", 80, ["http://[fd00::5]/"]),
])
def test_reachable_urls_for_a_given_address(host, port, urls):
    assert lan.reachable_urls(host, port) == urls


def test_lan_addresses_are_real_and_not_loopback():
    for address in lan.lan_addresses():
        assert not address.startswith("127.")
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", address)
