"""Staff accounts and server-side sessions. No HTTP here.

Passwords: argon2id with argon2-cffi's defaults. Sessions: the cookie carries a random token; the
database keeps only its SHA-256, so a leaked table cannot be replayed. Logout, disabling a user and
changing a password delete the user's session rows: the old cookie stops working at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .cases import DomainError
from .depot import check_role_unit, single_workshop
from .models import StaffSession, StaffUser, Unit
from .tokens import new_csrf

ROLES: dict[str, str] = {"admin": "管理员", "leader": "领导", "handler": "承办人"}
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user like that of a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
PASSWORD_MIN = 8


T = TypeVar("T")


class Busy(Exception):
    """More password checks are running and waiting than the gate allows."""


class HashGate:
    """Runs password hashing off the event loop, a bounded number at a time.

    argon2 takes ~120 ms of CPU per check; run on the loop it stalls every other request (a
    burst of wrong logins took /healthz to 6.6 s). Here at most ``running`` checks run in
    threads and ``waiting`` more wait; anything beyond is refused at once with ``Busy``.
    One gate per app (its semaphore belongs to the app's event loop).
    """

    def __init__(self, running: int = 1, waiting: int = 4) -> None:
        self.running = max(1, running)
        self.waiting = max(0, waiting)
        self._sem: asyncio.Semaphore | None = None
        self._inside = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.running)
        if self._inside >= self.running + self.waiting:
            raise Busy
        self._inside += 1
        try:
            async with self._sem:
                return await asyncio.to_thread(fn, *args)
        finally:
            self._inside -= 1


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise DomainError(f"密码至少 {PASSWORD_MIN} 位。", field="password")
    if len(password) > 256:
        raise DomainError("密码太长。", field="password")


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(username: str, password: str,
                       gate: HashGate | None = None) -> StaffUser | None:
    """The active user with this password, else None; raises ``Busy`` when the gate is full."""
    if len(password) > 1024:
        return None
    user = await StaffUser.get_or_none(username=username.strip())
    stored = user.password_hash if user else _DUMMY_HASH
    if gate is not None:
        ok = await gate.run(_verify, stored, password)
    else:
        ok = await asyncio.to_thread(_verify, stored, password)
    if not ok or user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await user.save(update_fields=["password_hash"])
    return user


async def add_user(username: str, role: str, password: str, display_name: str = "",
                   unit: Unit | None = None) -> StaffUser:
    """A new staff account in ``unit`` (a workshop or desk), or a depot role without one."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise DomainError("用户名不能为空、不能含空格，最多 64 个字符。", field="username")
    if role not in ROLES:
        raise DomainError("角色只能是 admin、leader 或 handler。", field="role")
    if unit is None and role == "handler":
        # With one workshop, a handler works in it (as before the depot tree).
        unit = await single_workshop()
    check_role_unit(role, unit)
    check_password_rules(password)
    if await StaffUser.filter(username=username).exists():
        raise DomainError("这个用户名已经存在。", field="username")
    return await StaffUser.create(
        username=username, role=role,
        password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name.strip()[:64], unit=unit,
    )


async def set_password(user: StaffUser, password: str) -> None:
    check_password_rules(password)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    await user.save(update_fields=["password_hash"])
    await revoke_sessions(user.id)


async def set_active(user: StaffUser, active: bool) -> None:
    user.active = active
    await user.save(update_fields=["active"])
    if not active:
        await revoke_sessions(user.id)


async def revoke_sessions(user_id: int) -> None:
    await StaffSession.filter(user_id=user_id).delete()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(user: StaffUser, now: datetime) -> str:
    """Create a fresh session (a new identifier at every login) and return the cookie token."""
    token = secrets.token_urlsafe(32)
    await StaffSession.create(
        id=_digest(token), user=user, csrf=new_csrf(), created_at=now, last_seen_at=now
    )
    return token


async def load_session(
    token: str | None, now: datetime, *, idle: timedelta, absolute: timedelta
) -> StaffSession | None:
    if not token or len(token) > 100:
        return None
    session = await StaffSession.get_or_none(id=_digest(token)).select_related("user")
    if session is None:
        return None
    if (
        not session.user.active
        or now - session.last_seen_at > idle
        or now - session.created_at > absolute
    ):
        await session.delete()
        return None
    if now - session.last_seen_at > timedelta(minutes=1):
        await StaffSession.filter(id=session.id).update(last_seen_at=now)
    return session


async def end_session(token: str | None) -> None:
    if token:
        await StaffSession.filter(id=_digest(token)).delete()
