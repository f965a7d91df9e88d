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
SEPARATORS = " -_.\t\u3000\uff0d"  # includes ideographic space and full-width hyphen


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
        if ch in SEPARATORS:
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


# ---- showing a receipt again ----------------------------------------------------------------
# A receipt may be shown again for a short time after the submission, and only to the browser
# that submitted: a reload of /receipt (WeChat reloads a page when the worker switches apps to
# paste the code) or a resent form whose first answer was lost. After the window nobody can see
# it again, so a shared phone's history does not give it away later. The window's clock lives
# in the submitter's own cookie (signed) and in the throttle store (memory or Redis, with a
# TTL), never in the database.
SHOW_AGAIN_SECONDS = 600


def _cookie_sig(secret_key: str, payload: str) -> str:
    key = hashlib.sha256(b"receipt-cookie:" + secret_key.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def show_again_cookie(secret_key: str, nonce: str, now: float) -> str:
    """Cookie value that lets this browser see the receipt of ``nonce`` until the window ends."""
    payload = f"{nonce}.{int(now) + SHOW_AGAIN_SECONDS}"
    return f"{payload}.{_cookie_sig(secret_key, payload)}"


def show_again_nonce(secret_key: str, value: str, now: float) -> str | None:
    """The nonce from a genuine cookie still inside its window, else None."""
    parts = value.split(".")
    if len(parts) != 3 or len(value) > 128 or not value.isascii():
        return None
    nonce, until, sig = parts
    if not hmac.compare_digest(sig, _cookie_sig(secret_key, f"{nonce}.{until}")):
        return None
    try:
        return nonce if now <= int(until) else None
    except ValueError:
        return None
