"""This machine's addresses on the local network, to suggest a URL phones can reach.

Nothing is sent: connecting a UDP socket only asks the kernel which source address it would use.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path


def lan_addresses() -> list[str]:
    """Private, non-loopback IPv4 addresses of this machine, the default route's first."""
    found: list[str] = []
    for probe in ("10.255.255.255", "192.168.255.255", "172.31.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found.append(s.getsockname()[0])
        except OSError:
            continue
    try:
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    out: list[str] = []
    for a in found:
        ip = ipaddress.ip_address(a)
        if ip.is_private and not ip.is_loopback and not ip.is_link_local and a not in out:
            out.append(a)
    return out


def env_file_path() -> Path:
    """The file settings are read from besides the environment (it may not exist yet)."""
    return Path(os.environ.get("SUGGESTBOX_ENV_FILE", ".env")).resolve()
