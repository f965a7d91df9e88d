"""Receipt codes (DESIGN.md §1.4).

80 random bits from ``secrets``, written as 16 Crockford base32 characters grouped
``XXXX-XXXX-XXXX-XXXX``. Input is case- and separator-insensitive and maps the look-alikes
I/L → 1 and O → 0. Only an HMAC-SHA256 of the normalised code (keyed with the server secret) is
ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
LENGTH = 16  # 16 × 5 bits = 80 bits
_DECODE = {c: c for c in ALPHABET} | {"I": "1", "L": "1", "O": "0"}
_SEPARATORS = " -_.\t\u3000\uff0d"  # includes ideographic space and full-width hyphen


class InvalidReceipt(ValueError):
    pass


def new_receipt() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return format_receipt(raw)


def format_receipt(normalised: str) -> str:
    return "-".join(normalised[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(text: str) -> str:
    """Return the 16 canonical characters of a typed receipt, or raise InvalidReceipt."""
    if len(text) > 64:
        raise InvalidReceipt("too long")
    # Full-width letters and digits (typed on a Chinese IME) fold to ASCII.
    folded = "".join(
        chr(ord(ch) - 0xFEE0) if "\uff01" <= ch <= "\uff5e" else ch for ch in text
    ).upper()
    out = []
    for ch in folded:
        if ch in _SEPARATORS:
            continue
        mapped = _DECODE.get(ch)
        if mapped is None:
            raise InvalidReceipt("bad character")
        out.append(mapped)
    if len(out) != LENGTH:
        raise InvalidReceipt("wrong length")
    return "".join(out)


def receipt_hash(secret_key: str, receipt: str) -> str:
    """Keyed hash stored in the database; accepts any typed form of the code."""
    key = hashlib.sha256(b"receipt:" + secret_key.encode()).digest()
    return hmac.new(key, normalise(receipt).encode(), hashlib.sha256).hexdigest()
