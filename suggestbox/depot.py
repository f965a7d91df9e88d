"""The depot's tree (段 → 车间 → 班组, and depot desks such as 段工会 or 纪检) and who sees what.

No HTTP here. The deployment is the depot. A ``Unit`` is a workshop (its own box, queue, board
and report) or a desk a worker may address a case to instead of the workshop. Every case has
``unit`` (who handles it) and ``workshop`` (the box it came through); a desk case has
``unit != workshop`` and is never shown to the workshop's staff.

Scope of a staff account (``StaffUser.unit``):
- a workshop: its leaders and handlers (and a workshop admin) act only inside that workshop;
- a desk: its staff see only the cases addressed to that desk;
- none: a depot role. A depot leader sees every workshop's cases, never a desk's; a depot admin
  manages the tree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.signals import post_delete, post_save

from .cases import DomainError
from .models import Category, SiteSetting, Source, StaffUser, Team, Unit

WORKSHOP = "workshop"
DESK = "desk"
KINDS: dict[str, str] = {WORKSHOP: "车间", DESK: "段级渠道"}
UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
TEAM_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NAME_MAX = 64


def check_unit_code(code: str) -> str:
    code = code.strip().lower()
    if not UNIT_CODE.match(code):
        raise DomainError("代码只能用小写英文字母、数字和 -，以字母或数字开头，最多 32 个字符"
                          "（用在网址里，不能用汉字）。", field="code")
    return code


def check_name(name: str, label: str = "名称") -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise DomainError(f"请填写{label}（最多 {NAME_MAX} 个字）。", field="name")
    return name


async def add_unit(code: str, name: str, kind: str = WORKSHOP) -> Unit:
    """A new workshop or desk; raise DomainError on a bad or taken code."""
    if kind not in KINDS:
        raise DomainError("类型只能是车间（workshop）或段级渠道（desk）。", field="kind")
    code = check_unit_code(code)
    name = check_name(name)
    if await Unit.filter(code=code).exists():
        raise DomainError("这个代码已经有了。", field="code")
    return await Unit.create(code=code, name=name, kind=kind, active=True)


async def add_team(code: str, name: str, workshop: Unit, sort_order: int = 0) -> Team:
    code = code.strip()
    if not TEAM_CODE.match(code):
        raise DomainError("班组代码只能用英文字母、数字、- 和 _，最多 32 个字符"
                          "（用在二维码链接里，不能用汉字）。", field="code")
    if workshop.kind != WORKSHOP:
        raise DomainError("班组只能属于车间。", field="workshop")
    name = check_name(name, "班组/地点名称")
    if await Team.filter(code=code).exists():
        raise DomainError("这个班组代码已经存在（全段唯一）。", field="code")
    return await Team.create(code=code, name=name, workshop=workshop, sort_order=sort_order)


async def workshops(*, active_only: bool = True) -> list[Unit]:
    qs = Unit.filter(kind=WORKSHOP)
    return await (qs.filter(active=True) if active_only else qs)


async def desks(*, active_only: bool = True) -> list[Unit]:
    qs = Unit.filter(kind=DESK)
    return await (qs.filter(active=True) if active_only else qs)


async def unit_by_code(code: str, kind: str | None = None) -> Unit | None:
    code = code.strip().lower()
    if not UNIT_CODE.match(code):
        return None
    qs = Unit.filter(code=code)
    if kind:
        qs = qs.filter(kind=kind)
    return await qs.first()


async def single_workshop() -> Unit | None:
    """The only active workshop, when there is exactly one (then ``/`` is its box)."""
    found = await Unit.filter(kind=WORKSHOP, active=True).limit(2)
    return found[0] if len(found) == 1 else None


async def first_workshop() -> Unit | None:
    """The oldest workshop: the one a single-workshop database migrated into."""
    return await Unit.filter(kind=WORKSHOP).order_by("id").first()


def categories_for(workshop: Unit | None) -> Q:
    """The categories a workshop offers: the depot defaults and its own."""
    if workshop is None:
        return Q(workshop_id=None)
    return Q(workshop_id=None) | Q(workshop_id=workshop.id)


async def offered_categories(workshop: Unit) -> list[Category]:
    return await Category.filter(categories_for(workshop), active=True)


# ---- roles and scope ----------------------------------------------------------------------

def check_role_unit(role: str, unit: Unit | None) -> None:
    """Which roles an account may have where: handlers work in a workshop or desk; a desk has no
    admin; without a unit an account is a depot admin or depot leader."""
    if unit is None:
        if role == "handler":
            raise DomainError("承办人必须属于一个车间或段级渠道。", field="unit")
        return
    if unit.kind == DESK and role == "admin":
        raise DomainError("段级渠道不设管理员；全段的管理员不属于任何车间。", field="unit")


@dataclass(frozen=True)
class Scope:
    """The units whose cases a staff account may see (``Case.unit``)."""

    units: tuple[int, ...]
    depot: bool  # a depot role: sees every workshop

    def has(self, unit_id: int | None) -> bool:
        return unit_id in self.units


async def scope_of(user: StaffUser) -> Scope:
    unit_id = user.unit_id  # type: ignore[attr-defined]
    if unit_id is not None:
        return Scope((int(unit_id),), False)
    units = await Unit.filter(kind=WORKSHOP).only("id")
    return Scope(tuple(u.id for u in units), True)





# ---- a short-lived copy of the tree for public pages ---------------------------------------

TREE_SECONDS = 5.0
_generation = 0  # bumped on every change to the rows below made by this process


def changed() -> None:
    """Units, categories, teams or site settings changed (in this process): every cached copy
    is read again on its next use. Saves and deletes of those models call it by themselves
    (signals below); code that changes them with ``QuerySet.update()`` calls it after."""
    global _generation
    _generation += 1


@post_save(Unit, Category, Team, SiteSetting, Source)
async def _saved(*_args: object) -> None:
    changed()


@post_delete(Unit, Category, Team, SiteSetting, Source)
async def _deleted(*_args: object) -> None:
    changed()


@dataclass(frozen=True)
class Tree:
    """Every unit, the active categories and teams and the site settings, read at once: the
    public pages ask "which box is this, which categories, which team" on every request."""

    units: tuple[Unit, ...]
    categories: tuple[Category, ...] = ()  # active ones, in their display order
    teams: tuple[Team, ...] = ()  # active ones
    site: tuple[tuple[str, str], ...] = ()  # SiteSetting rows (key, value)
    qr_source_id: int | None = None  # 扫码: the source of a worker's own submission
    # Every category and team, retired ones too (staff pages: filters and old cases' labels).
    all_categories: tuple[Category, ...] = ()
    all_teams: tuple[Team, ...] = ()

    def categories_of(self, units: Sequence[int]) -> list[Category]:
        """Every category the cases of these units can have: the depot's and the units' own,
        retired ones included, in display order (the staff queue's filter)."""
        return [c for c in self.all_categories
                if c.workshop_id is None or c.workshop_id in units]  # type: ignore[attr-defined]

    def teams_of(self, units: Sequence[int]) -> list[Team]:
        """Every team of these units, retired ones included, in display order."""
        return [t for t in self.all_teams if t.workshop_id in units]  # type: ignore[attr-defined]

    def category_by_id(self) -> dict[int, Category]:
        return {c.id: c for c in self.all_categories}

    def team_by_id(self) -> dict[int, Team]:
        return {t.id: t for t in self.all_teams}

    def units_named(self, ids: Sequence[int]) -> dict[int, Unit]:
        """These units by id, from this copy."""
        wanted = set(ids)
        return {u.id: u for u in self.units if u.id in wanted}

    def category(self, category_id: int) -> Category | None:
        """An active category by id (any workshop's: the caller checks whose)."""
        for c in self.categories:
            if c.id == category_id:
                return c
        return None

    def by_code(self, code: str, kind: str | None = None) -> Unit | None:
        code = code.strip().lower()
        for u in self.units:
            if u.code == code and (kind is None or u.kind == kind):
                return u
        return None

    def single_workshop(self) -> Unit | None:
        active = [u for u in self.units if u.kind == WORKSHOP and u.active]
        return active[0] if len(active) == 1 else None

    def desks(self) -> list[Unit]:
        return [u for u in self.units if u.kind == DESK and u.active]

    def offered_categories(self, workshop: Unit) -> list[Category]:
        """As ``offered_categories``: the depot's defaults and the workshop's own, active."""
        return [c for c in self.categories
                if c.workshop_id in (None, workshop.id)]  # type: ignore[attr-defined]

    def team(self, code: str, workshop: Unit | None) -> Team | None:
        """An active team by its code, of ``workshop`` (of any workshop when None)."""
        code = code.strip()
        for t in self.teams:
            if t.code == code and (workshop is None
                                   or t.workshop_id == workshop.id):  # type: ignore[attr-defined]
                return t
        return None

    def setting(self, key: str, default: str = "") -> str:
        return dict(self.site).get(key, default)


class TreeCache:
    """The tree, read from the database at most every ``TREE_SECONDS`` per process (a new
    workshop, category, team or organisation name shows on the public pages within that time in
    every worker, and at once in the process that made the change: ``changed()``)."""

    def __init__(self, seconds: float = TREE_SECONDS) -> None:
        self.seconds = seconds
        self._tree: Tree | None = None
        self._until = 0.0
        self._generation = -1

    async def get(self) -> Tree:
        if (self._tree is None or time.monotonic() >= self._until
                or self._generation != _generation):
            generation = _generation
            qr = await Source.filter(key="qr").first()
            categories = tuple(await Category.all())
            teams = tuple(await Team.all())
            self._tree = Tree(tuple(await Unit.all()),
                              tuple(c for c in categories if c.active),
                              tuple(t for t in teams if t.active),
                              tuple((s.key, s.value) for s in await SiteSetting.all()),
                              qr.id if qr else None, categories, teams)
            self._until = time.monotonic() + self.seconds
            self._generation = generation
        return self._tree

    def clear(self) -> None:
        self._tree = None
