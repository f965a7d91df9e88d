"""This machine's addresses on the local network, for telling a person where a phone can reach
the service (`suggestbox serve` prints them). Server addresses only: nothing here looks at a
client, and nothing is logged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys

# Interfaces a phone on the workshop's Wi-Fi cannot reach: container and VM bridges.
VIRTUAL_PREFIXES = ("lo", "docker", "br-", "veth", "cni", "podman", "virbr", "flannel", "cali")
SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "[::]", "")  # noqa: S104 (a comparison, not a bind)


def _primary() -> str | None:
    """The address of the interface holding the default route (a UDP "connect" sends nothing)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, only routed
        address: str = s.getsockname()[0]
        return address
    return None


def _interfaces() -> list[str]:
    """IPv4 addresses of the physical-looking interfaces (Linux; empty elsewhere)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl
    import struct

    found: list[str] = []
    with contextlib.suppress(OSError):
        for _, name in socket.if_nameindex():
            if name.startswith(VIRTUAL_PREFIXES):
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR,
                                         struct.pack("256s", name[:15].encode()))
                except OSError:
                    continue  # no IPv4 address on it
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def lan_addresses() -> list[str]:
    """Non-loopback IPv4 addresses of this machine, the default route's first."""
    seen: list[str] = []
    for address in [_primary(), *_interfaces()]:
        if not address or address in seen:
            continue
        ip = ipaddress.ip_address(address)
        if ip.is_loopback or ip.is_unspecified or ip.is_link_local:
            continue
        seen.append(address)
    return seen


def reachable_urls(host: str, port: int) -> list[str]:
    """The URLs others on the network can open for a server bound to ``host``: every LAN address
    for a wildcard bind, the address itself otherwise, nothing for loopback."""
    suffix = "" if port == 80 else f":{port}"
    if is_loopback(host):
        return []
    if is_wildcard(host):
        return [f"http://{a}{suffix}/" for a in lan_addresses()]
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return [f"http://{shown}{suffix}/"]


def terminal_qr(url: str) -> str:
    """A QR code for a terminal: two modules per character cell ("▀" with its foreground for the
    upper and background for the lower one), black on white whatever the terminal's colours."""
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(url)
    code.make(fit=True)
    matrix = [list(row) for row in code.get_matrix()]
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        cells = (f"\x1b[{30 if t else 97}m\x1b[{40 if b else 107}m▀"
                 for t, b in zip(top, bottom, strict=True))
        lines.append("".join(cells) + "\x1b[0m")
    return "\n".join(lines)
