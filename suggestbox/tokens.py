"""One-time submission form tokens and staff CSRF tokens.

A form token is ``<day>.<nonce>.<sig>``: signed with the server secret, valid for two days, and
usable once (its HMAC is stored in ``used_form_token`` in the same transaction as the case). The
receipt is kept beside it XOR-ed with a pad derived from the nonce alone, so only the holder of the
form can recover it: a replayed form (back button, WeChat retry) shows the same receipt instead of
creating a second case.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date

MAX_AGE_DAYS = 2


PURPOSES = ("submit", "track")


def _sig(secret_key: str, payload: str, purpose: str) -> str:
    # The purpose is signed: a tracking page's token is never taken for a submission form's.
    key = hashlib.sha256(b"form:" + secret_key.encode()).digest()
    data = payload if purpose == "submit" else f"{purpose}:{payload}"
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret_key: str, today: date, purpose: str = "submit") -> str:
    payload = f"{today.toordinal()}.{secrets.token_urlsafe(18)}"
    return f"{payload}.{_sig(secret_key, payload, purpose)}"


def verify(secret_key: str, token: str, today: date, purpose: str = "submit") -> str | None:
    """Return the token's nonce when it is genuine, fresh and for this purpose, else None."""
    parts = token.split(".")
    # compare_digest raises TypeError on non-ASCII str: such a token is simply not genuine.
    if len(parts) != 3 or len(token) > 100 or not token.isascii():
        return None
    day, nonce, sig = parts
    if not hmac.compare_digest(sig, _sig(secret_key, f"{day}.{nonce}", purpose)):
        return None
    try:
        age = today.toordinal() - int(day)
    except ValueError:
        return None
    return nonce if 0 <= age <= MAX_AGE_DAYS else None


def used_id(secret_key: str, nonce: str) -> str:
    key = hashlib.sha256(b"used:" + secret_key.encode()).digest()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _pad(nonce: str, n: int) -> bytes:
    return hashlib.sha256(b"wrap:" + nonce.encode()).digest()[:n]


def wrap(nonce: str, receipt: str) -> str:
    data = receipt.encode()
    return bytes(a ^ b for a, b in zip(data, _pad(nonce, len(data)), strict=True)).hex()


def unwrap(nonce: str, wrapped: str) -> str:
    data = bytes.fromhex(wrapped)
    return bytes(a ^ b for a, b in zip(data, _pad(nonce, len(data)), strict=True)).decode()


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    if not (expected and given) or not (expected.isascii() and given.isascii()):
        return False
    return hmac.compare_digest(expected, given)
