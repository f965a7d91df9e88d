"""Organisation settings (unit name, emergency line) and the one-time first-admin setup link.

No HTTP here: views and the command line call these functions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from . import auth
from .cases import DomainError
from .depot import Tree
from .models import SetupToken, SiteSetting, StaffUser

NAME_MAX = 64
DESK_MAX = 64
PHONE = re.compile(r"^[0-9+][0-9 ()+\-–转]{2,30}$")
SETUP_HOURS = 24


@dataclass(frozen=True)
class Org:
    name: str = ""
    phone: str = ""  # 紧急情况电话; empty when not set
    reward_desk: str = ""  # where rewards are claimed (issue 18); empty: 工会窗口

    @property
    def title(self) -> str:
        return self.name or "职工百宝箱"


async def get_org() -> Org:
    rows = {s.key: s.value for s in await SiteSetting.filter(
        key__in=["name", "phone", "reward_desk"])}
    return Org(name=rows.get("name", ""), phone=rows.get("phone", ""),
               reward_desk=rows.get("reward_desk", ""))


def org_of(tree: Tree) -> Org:
    """The same, from the cached tree (public pages: no query)."""
    return Org(name=tree.setting("name"), phone=tree.setting("phone"),
               reward_desk=tree.setting("reward_desk"))


def check_org(name: str, phone: str, reward_desk: str = "") -> Org:
    """Validate what an admin typed; raise DomainError (field = name | phone | reward_desk)."""
    name = " ".join(name.split())
    phone = phone.strip()
    reward_desk = " ".join(reward_desk.split())
    if len(reward_desk) > DESK_MAX:
        raise DomainError(f"领取地点最多 {DESK_MAX} 个字。", field="reward_desk")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in reward_desk):
        raise DomainError("领取地点包含不可见的字符，请删除后再保存。", field="reward_desk")
    if len(name) > NAME_MAX:
        raise DomainError(f"单位名称最多 {NAME_MAX} 个字。", field="name")
    if phone and not PHONE.fullmatch(phone):
        raise DomainError("电话号码只能包含数字、空格、“-”、“+”和括号，例如 0571-12345678。",
                          field="phone")
    return Org(name=name, phone=phone, reward_desk=reward_desk)


async def set_org(name: str, phone: str, reward_desk: str | None = None) -> Org:
    """Save the settings; ``reward_desk`` None keeps the one saved (the command line)."""
    if reward_desk is None:
        reward_desk = (await get_org()).reward_desk
    org = check_org(name, phone, reward_desk)
    async with in_transaction():
        for key, value in (("name", org.name), ("phone", org.phone),
                           ("reward_desk", org.reward_desk)):
            await SiteSetting.update_or_create(defaults={"value": value}, key=key)
    return org


# ---- first admin ------------------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(b"setup:" + token.encode()).hexdigest()


async def has_admin() -> bool:
    return await StaffUser.filter(role="admin", active=True).exists()


async def new_setup_token(now: datetime) -> str | None:
    """A fresh one-time token while no admin exists (older ones stay valid until they expire)."""
    if await has_admin():
        await SetupToken.all().delete()
        return None
    await SetupToken.filter(expires_at__lt=now).delete()
    token = secrets.token_urlsafe(24)
    await SetupToken.create(id=_digest(token), expires_at=now + timedelta(hours=SETUP_HOURS))
    return token


async def setup_token_valid(token: str, now: datetime) -> bool:
    if not token or len(token) > 64 or not token.isascii():
        return False
    row = await SetupToken.get_or_none(id=_digest(token))
    return row is not None and row.expires_at > now and not await has_admin()


async def create_first_admin(token: str, now: datetime, *, username: str, password: str,
                             password2: str, display_name: str) -> StaffUser:
    """Create the first admin with a valid setup token; the token (and every other) is spent."""
    if password != password2:
        raise DomainError("两次输入的密码不一致。", field="password2")
    async with in_transaction():
        row = await SetupToken.filter(id=_digest(token)).select_for_update().first() \
            if token.isascii() and len(token) <= 64 else None
        if row is None or row.expires_at <= now or await has_admin():
            raise DomainError("这个设置链接已失效或已用过。", field="form")
        user = await auth.add_user(username, "admin", password, display_name)
        await SetupToken.all().delete()
    return user
