"""Cases: creation, the state machine, and the append-only event log. No HTTP here.

One table (``RULES``) lists every allowed action: from which states, to which state, by whom.
One function (``apply``) checks a request against it, changes the case, and appends exactly one
event, inside one transaction. Anything not in the table is refused with a Chinese message.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from . import notify, queue_clock, receipts, tokens  # noqa: F401 (queue_clock: its listener)
from .models import Case, Category, Event, Photo, StaffUser, Team, Unit, UsedFormToken
from .photos import CleanPhoto


class Status(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"
    REJECTED = "rejected"
    MERGED = "merged"


STATUS_LABELS: dict[str, str] = {
    Status.NEW: "待受理",
    Status.ACCEPTED: "已受理",
    Status.IN_PROGRESS: "办理中",
    Status.ANSWERED: "已答复",
    Status.CLOSED: "已办结",
    Status.REJECTED: "不予受理",
    Status.MERGED: "重复（已合并）",
}
OPEN_STATUSES = (Status.NEW, Status.ACCEPTED, Status.IN_PROGRESS)
# What the public board shows of a published case: 征集意见 (open, after acceptance; workers may
# press 我也遇到) and answered or closed ones.
BOARD_STATUSES = (Status.ACCEPTED, Status.IN_PROGRESS, Status.ANSWERED, Status.CLOSED)

RATINGS: dict[str, str] = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}

STAFF = frozenset({"leader", "admin"})
ANY_STAFF = frozenset({"leader", "admin", "handler"})
SUBMITTER = frozenset({"submitter"})
ALL = frozenset(Status)


@dataclass(frozen=True)
class Args:
    """What a staff member or submitter sent with an action (parsed, not yet checked)."""

    assignee_id: int | None = None
    deadline: date | None = None
    merge_into: str | None = None
    rating: str | None = None
    summary: str | None = None
    show_reply: bool = True
    rating_window_days: int = 7
    photo_ids: tuple[str, ...] = ()


@dataclass
class Step:
    """One action being applied: effects read the locked case and fill in the changes."""

    case: Case
    actor: StaffUser | None
    conn: BaseDBAsyncClient
    now: datetime
    today: date
    tz: ZoneInfo
    args: Args
    body: str | None  # the event's text (what the submitter sees when the rule is public)
    detail: str | None = None  # internal line for staff (assignee, deadline), never public
    changed: dict[str, object] = field(default_factory=dict)


Effect = Callable[[Step], Awaitable[None]]


@dataclass(frozen=True)
class Rule:
    label: str
    sources: frozenset[Status]
    target: Status | None  # None: the status does not change
    roles: frozenset[str]
    effect: Effect | None = None  # what the action does besides changing status and logging
    needs_body: bool = False
    public: bool = False  # the event's body is shown to the submitter
    needs_assignee: bool = False
    text_from_summary: bool = False  # the event's body is the form's summary (publish)


def _s(*states: Status) -> frozenset[Status]:
    return frozenset(states)


WORKING = _s(Status.ACCEPTED, Status.IN_PROGRESS)


# ---- effects: one small function per action ------------------------------------------------

async def _assign(step: Step) -> None:
    """accept / transfer: an active staff member, and a deadline not in the past."""
    a = step.args
    assignee = await StaffUser.get_or_none(id=a.assignee_id, active=True) \
        if a.assignee_id else None
    if assignee is None or assignee.role not in ANY_STAFF:
        raise DomainError("请选择承办人。", field="assignee")
    if not may_see(assignee, step.case):
        raise DomainError("请选择本单位的承办人。", field="assignee")
    if assignee.id == step.case.assignee_id and step.case.assignee_id is not None:  # type: ignore[attr-defined]
        raise DomainError("转办需要选择另一位承办人。", field="assignee")
    deadline = a.deadline
    if deadline is None and step.case.deadline is None:
        category = await Category.get(id=step.case.category_id)  # type: ignore[attr-defined]
        deadline = step.today + timedelta(days=category.deadline_days)
    if deadline is not None:
        if deadline < step.today:
            raise DomainError("办理期限不能早于今天。", field="deadline")
        step.changed["deadline"] = deadline
    step.changed["assignee_id"] = assignee.id
    shown = deadline or step.case.deadline
    step.detail = f"承办人：{assignee.label}" + (f"，期限 {shown.isoformat()}" if shown else "")


def _responded(step: Step) -> None:
    if step.case.responded_at is None:
        step.changed["responded_at"] = step.now


async def _accept(step: Step) -> None:
    await _assign(step)
    _responded(step)


async def _reject(step: Step) -> None:
    _responded(step)
    step.changed["reject_reason"] = step.body


async def _reconsider(step: Step) -> None:
    step.changed["reject_reason"] = None


async def _return(step: Step) -> None:
    step.changed.update(assignee_id=None, deadline=None)


async def _reply(step: Step) -> None:
    step.changed["answered_at"] = step.now


async def _close(step: Step) -> None:
    case, window = step.case, step.args.rating_window_days
    if case.rating not in ("satisfied", "basic") and case.answered_at is not None and (
        step.now - case.answered_at < timedelta(days=window)
    ):
        raise DomainError(f"提交人尚未评价；答复满 {window} 天后才能在未评价的情况下办结。")
    step.changed["closed_at"] = step.now


async def _reopen(step: Step) -> None:
    # A reopened case leaves the board until a leader publishes it again, and the submitter may
    # rate the new answer (the report reads ratings from events, so nothing is lost).
    step.changed.update(reopen_count=step.case.reopen_count + 1, closed_at=None,
                        published=False, published_at=None, rating=None, rated_on=None)


def _not_rated_yet(step: Step) -> None:
    if step.case.rating in ("satisfied", "basic"):
        raise DomainError("您已经评价过了，谢谢。")


async def _rate(step: Step) -> None:
    _not_rated_yet(step)
    rating = step.args.rating
    if rating not in ("satisfied", "basic"):
        raise DomainError("请选择评价。", field="rating")
    step.changed.update(rating=rating, rated_on=step.today)
    step.body = RATINGS[rating] + (f"：{step.body}" if step.body else "")


async def _rate_unsatisfied(step: Step) -> None:
    _not_rated_yet(step)
    await _reopen(step)
    step.changed.update(rating="unsatisfied", rated_on=step.today)
    step.body = f"不满意：{step.body}"


async def _merge(step: Step) -> None:
    main = await _merge_target(step.case, step.args.merge_into)
    step.changed["merged_into_id"] = main.id
    _responded(step)  # merging a duplicate answers it: it counts as a response (响应)
    step.body = f"与 {main.number} 重复，已合并" + (f"：{step.body}" if step.body else "")
    if step.case.supports:  # 我也遇到 presses follow the problem to the main case
        await Case.filter(id=main.id).using_db(step.conn).update(
            supports=F("supports") + step.case.supports)


async def _publish(step: Step) -> None:
    if is_desk_case(step.case):
        raise DomainError("直接反映给段级渠道的事项不上车间的公示栏。")
    step.changed.update(published=True, public_summary=step.body,
                        show_reply=step.args.show_reply, published_at=step.now)
    chosen: set[uuid.UUID] = set()
    for raw in step.args.photo_ids:
        try:
            chosen.add(uuid.UUID(raw))
        except ValueError as exc:
            raise DomainError("选择的照片不对，请重新选择。", field="photo") from exc
    own = set(await Photo.filter(case_id=step.case.id).using_db(step.conn).values_list(
        "id", flat=True))
    if not chosen <= own:
        raise DomainError("选择的照片不属于这件事。", field="photo")
    if chosen:
        step.body = (step.body or "") + f"（公示照片 {len(chosen)} 张）"
        await Photo.filter(id__in=list(chosen)).using_db(step.conn).update(published=True)
    if own - chosen:
        await Photo.filter(id__in=list(own - chosen)).using_db(step.conn).update(published=False)


async def _unpublish(step: Step) -> None:
    if not step.case.published:
        raise DomainError("这件事没有公示。")
    step.changed.update(published=False, published_at=None)


RULES: dict[str, Rule] = {
    "submit": Rule("提交", frozenset(), Status.NEW, SUBMITTER, public=True),
    "accept": Rule("受理并交办", _s(Status.NEW), Status.ACCEPTED, STAFF, _accept,
                   needs_assignee=True, public=True),
    "reject": Rule("不予受理", _s(Status.NEW), Status.REJECTED, STAFF, _reject, needs_body=True,
                   public=True),
    "start": Rule("开始办理", _s(Status.ACCEPTED), Status.IN_PROGRESS, ANY_STAFF, public=True),
    "transfer": Rule("转办", WORKING, None, STAFF, _assign, needs_assignee=True),
    "return": Rule("退回", WORKING, Status.NEW, frozenset({"handler"}), _return, needs_body=True),
    "reply": Rule("答复", WORKING, Status.ANSWERED, ANY_STAFF, _reply, needs_body=True,
                  public=True),
    "close": Rule("办结", _s(Status.ANSWERED), Status.CLOSED, STAFF, _close, public=True),
    "reopen": Rule("重新办理", _s(Status.ANSWERED, Status.CLOSED), Status.IN_PROGRESS, STAFF,
                   _reopen, needs_body=True, public=True),
    "reconsider": Rule("重新受理", _s(Status.REJECTED), Status.NEW, STAFF, _reconsider,
                       needs_body=True, public=True),
    "merge": Rule("合并为重复", _s(*OPEN_STATUSES), Status.MERGED, STAFF, _merge, public=True),
    "note": Rule("内部备注", ALL, None, ANY_STAFF, needs_body=True),
    "followup": Rule("补充说明", ALL - {Status.MERGED}, None, SUBMITTER, needs_body=True,
                     public=True),
    "rate": Rule("评价", _s(Status.ANSWERED), None, SUBMITTER, _rate, public=True),
    "rate_unsatisfied": Rule("评价：不满意", _s(Status.ANSWERED), Status.IN_PROGRESS, SUBMITTER,
                             _rate_unsatisfied, needs_body=True, public=True),
    # Open cases (after acceptance) may go on the board as 征集意见, for 我也遇到.
    "publish": Rule("公示", _s(Status.ACCEPTED, Status.IN_PROGRESS, Status.ANSWERED,
                                Status.CLOSED), None, STAFF, _publish,
                    needs_body=True, text_from_summary=True),
    "unpublish": Rule("撤销公示", ALL, None, STAFF, _unpublish),
}

# Actions a staff member picks on the case page, in display order.
STAFF_ACTIONS = ["accept", "start", "reply", "transfer", "return", "close", "reopen", "reject",
                 "reconsider", "merge", "note"]


class DomainError(Exception):
    """A refused request; ``message`` is shown to the user as is (Chinese)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# ---- time -----------------------------------------------------------------------------------

def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(tz)).astimezone(tz).date()


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight local time: the only time stored for what a submitter does."""
    return datetime.combine(day, time(0, 0), tzinfo=tz)


# ---- text -----------------------------------------------------------------------------------

def clean_text(raw: str | None, *, minimum: int, maximum: int, label: str) -> str:
    """Trim and check user text; raise DomainError with a Chinese message.

    The minimum counts *visible* characters (five zero-width spaces are not five characters);
    the maximum counts all. Explicit bidi embeddings, overrides and isolates (U+202A–U+202E,
    U+2066–U+2069) are removed: they make text read differently from what was typed (issue 12).
    Right-to-left text and the plain marks LRM/RLM/ALM are kept.
    """
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate({c: None for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
    text = text.strip()
    if "\ufffd" in text:
        raise DomainError(f"{label}包含无法识别的字符（编码错误），请重新输入。")
    visible = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if ch not in "\n\t" and cat == "Cc":
            raise DomainError(f"{label}包含不可见的控制字符，请删除后再提交。")
        # Not visible: controls, format characters (zero-width space/joiners, BOM), separators,
        # combining marks alone, and the blank "letters" (Hangul fillers, braille blank).
        if cat not in ("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cs") and not ch.isspace() \
                and ch not in "\u115f\u1160\u3164\uffa0\u2800":
            visible += 1
    if not visible:
        raise DomainError(f"请填写{label}。")
    if visible < minimum:
        raise DomainError(f"{label}太短了，请至少写 {minimum} 个字。")
    if len(text) > maximum:
        raise DomainError(f"{label}太长了，最多 {maximum} 个字（现在 {len(text)} 个）。")
    return text


# ---- creation -------------------------------------------------------------------------------

@dataclass
class Submitted:
    case: Case
    receipt: str
    replay: bool = False


async def submit_case(
    *,
    secret_key: str,
    nonce: str,
    category_id: int,
    team: Team | None,
    body: str,
    workshop: Unit | None = None,
    desk: Unit | None = None,
    today: date,
    tz: ZoneInfo,
    first_use: Callable[[], Awaitable[None]] | None = None,
    photos: Sequence[CleanPhoto] = (),
    category: Category | None = None,
    source_id: int | None = None,
) -> Submitted:
    """Create a case and its first event; a replayed form token returns the original receipt.

    ``first_use`` runs when this form token has not been used before, before anything is
    written (the caller starts its "show the receipt again" window there, so that a concurrent
    double POST of the same form already finds the window open).
    """
    used_key = tokens.used_id(secret_key, nonce)
    previous = await UsedFormToken.get_or_none(id=used_key)
    if previous is not None:
        if not previous.wrapped:
            raise DomainError("表单已过期，请检查内容后再提交一次。", field="form")
        return await _replayed(secret_key, nonce, previous)
    if first_use is not None:
        await first_use()
    if workshop is None:  # older callers: the oldest workshop (see models.py)
        workshop = await Unit.filter(kind="workshop").order_by("id").first()
        if workshop is None:
            raise DomainError("意见箱还没有开通。")
    # ``category``: the caller's cached copy of this active category (no query; issue 19).
    if category is None or category.id != category_id or not category.active:
        category = await Category.get_or_none(id=category_id, active=True)
    if category is None or category.workshop_id not in (None, workshop.id):  # type: ignore[attr-defined]
        raise DomainError("请选择一个类别。", field="category")
    if team is not None and team.workshop_id != workshop.id:  # type: ignore[attr-defined]
        team = None
    receipt = receipts.new_receipt()
    try:
        async with in_transaction() as conn:
            await UsedFormToken.create(
                id=used_key, wrapped=tokens.wrap(nonce, receipt), used_on=today
            )
            case = await Case.create(
                id=uuid.uuid4(),
                receipt_hash=receipts.receipt_hash(secret_key, receipt),
                category=category,
                team=team,
                body=body,
                unit=desk or workshop,
                workshop=workshop,
                status=Status.NEW,
                received_on=today,
                # 扫码 (models.py would look it up otherwise)
                **({"source_id": source_id} if source_id is not None else {}),  # type: ignore[arg-type]
            )
            event = await Event.create(
                id=uuid.uuid4(), case=case, seq=1, action="submit", to_status=Status.NEW,
                by_submitter=True, public=True, at=day_start(today, tz),
            )
            await attach_photos(case.id, event.id, photos)
            await notify.enqueue_for_event(case, "submit", None, conn=conn, today=today, tz=tz)
    except IntegrityError:
        # A concurrent duplicate POST of the same form won the race: show its receipt.
        previous = await UsedFormToken.get_or_none(id=used_key)
        if previous is None:
            raise
        return await _replayed(secret_key, nonce, previous)
    return Submitted(case=case, receipt=receipt)


async def attach_photos(case_id: uuid.UUID, event_id: uuid.UUID,
                        photos: Sequence[CleanPhoto]) -> None:
    for p in photos:
        await Photo.create(id=uuid.uuid4(), case_id=case_id, event_id=event_id, data=p.jpeg,
                           thumb=p.thumb, width=p.width, height=p.height)


async def _replayed(secret_key: str, nonce: str, used: UsedFormToken) -> Submitted:
    receipt = tokens.unwrap(nonce, used.wrapped)
    case = await Case.get(receipt_hash=receipts.receipt_hash(secret_key, receipt))
    return Submitted(case=case, receipt=receipt, replay=True)


async def submitter_act(
    *, secret_key: str, nonce: str, case_id: uuid.UUID, action: str, body: str,
    rating: str | None, now: datetime, tz: ZoneInfo, max_length: int,
    photos: Sequence[CleanPhoto] = (),
) -> bool:
    """A follow-up or a rating from the tracking page, once per form token.

    Returns False when this form was already used (a replayed or doubled POST); raises
    DomainError when the request is refused. The token row and the event share a transaction.
    """
    if action not in ("followup", "rate"):
        raise DomainError("未知的操作。")
    if action == "followup" and photos and not body.strip():
        body = "（补充照片）"
    if action == "followup" or body.strip():
        body = clean_text(body, minimum=1, maximum=max_length,
                          label="补充说明" if action == "followup" else "意见")
    try:
        async with in_transaction():
            # Namespaced: a track form's token can never be taken for a submission's.
            await UsedFormToken.create(id=tokens.used_id(secret_key, "track:" + nonce),
                                       wrapped="", used_on=local_today(tz, now))
            event = await apply(case_id, action, None, now=now, tz=tz, body=body, rating=rating)
            if action == "followup":
                await attach_photos(case_id, event.id, photos)
    except IntegrityError:
        return False
    return True


async def purge_used_tokens(today: date) -> int:
    return await UsedFormToken.filter(
        used_on__lt=today - timedelta(days=tokens.MAX_AGE_DAYS + 1)
    ).delete()


async def find_by_receipt(secret_key: str, typed: str) -> Case | None:
    try:
        digest = receipts.receipt_hash(secret_key, typed)
    except receipts.InvalidReceipt:
        return None
    return await Case.get_or_none(receipt_hash=digest).select_related("category", "team", "unit")


# ---- transitions ----------------------------------------------------------------------------

def is_desk_case(case: Case) -> bool:
    """Addressed to a depot desk (段工会, 纪检) instead of the workshop it came from."""
    return case.unit_id != case.workshop_id  # type: ignore[attr-defined]


def may_see(user: StaffUser, case: Case) -> bool:
    """Whether a staff account may see this case at all (a handler also needs the assignment).

    An account of a workshop or desk sees that unit's cases; a depot role (no unit) sees every
    workshop's cases and never a desk's."""
    unit_id = user.unit_id  # type: ignore[attr-defined]
    if unit_id is not None:
        return bool(unit_id == case.unit_id)  # type: ignore[attr-defined]
    return not is_desk_case(case)


def role_of(actor: StaffUser | None) -> str:
    return actor.role if actor is not None else "submitter"


def allowed_actions(case: Case, actor: StaffUser) -> list[str]:
    """Staff actions the actor may offer on this case (the same checks ``apply`` makes)."""
    return [a for a in STAFF_ACTIONS if _permission_error(RULES[a], case, actor) is None]


def _permission_error(rule: Rule, case: Case, actor: StaffUser | None) -> str | None:
    role = role_of(actor)
    if role not in rule.roles:
        return f"您没有权限执行“{rule.label}”。"
    if actor is not None and not may_see(actor, case):
        return "找不到这件事。"
    if role == "handler" and actor is not None and case.assignee_id != actor.id:  # type: ignore[attr-defined]
        return "这件事没有交办给您。"
    if Status(case.status) not in rule.sources:
        return f"当前状态为“{STATUS_LABELS[case.status]}”，不能执行“{rule.label}”。"
    return None


async def apply(
    case_id: uuid.UUID,
    action: str,
    actor: StaffUser | None,
    *,
    now: datetime,
    tz: ZoneInfo,
    body: str | None = None,
    assignee_id: int | None = None,
    deadline: date | None = None,
    merge_into: str | None = None,
    rating: str | None = None,
    summary: str | None = None,
    show_reply: bool = True,
    rating_window_days: int = 7,
    photo_ids: tuple[str, ...] = (),
) -> Event:
    """Apply one action to a case and append its event, atomically; raise DomainError if refused.

    lock → check role and state → the rule's effect → status → event → outbox.
    """
    if action == "rate" and rating == "unsatisfied":
        action = "rate_unsatisfied"
    rule = RULES.get(action)
    if rule is None or action == "submit":
        raise DomainError("未知的操作。")
    args = Args(assignee_id=assignee_id, deadline=deadline, merge_into=merge_into,
                rating=rating, summary=summary, show_reply=show_reply,
                rating_window_days=rating_window_days, photo_ids=photo_ids)
    if rule.text_from_summary:
        # The public summary is the event's text (the board never shows the original).
        body = clean_text(summary, minimum=1, maximum=4000, label="公示摘要") \
            if (summary or "").strip() else None
    body = (body or "").strip() or None
    if rule.needs_body and not body:
        raise DomainError(_body_prompt(action), field="body")
    async with in_transaction() as conn:
        case = await Case.filter(id=case_id).select_for_update().using_db(conn).first()
        if case is None:
            raise DomainError("找不到这件事。")
        problem = _permission_error(rule, case, actor)
        if problem:
            raise DomainError(problem)
        step = Step(case=case, actor=actor, conn=conn, now=now, today=local_today(tz, now),
                    tz=tz, args=args, body=body)
        if rule.effect is not None:
            await rule.effect(step)
        if rule.target is not None:
            step.changed["status"] = rule.target
        if step.changed:
            await Case.filter(id=case.id).using_db(conn).update(**step.changed)
        event = await _append(
            # An event that changes no status records none: a note's "from" would tell which
            # side of a worker's 不满意 (a status change at day precision) it was written.
            case, action, actor, conn=conn,
            from_status=case.status if rule.target is not None else None, to_status=rule.target,
            body=step.body, detail=step.detail, public=rule.public,
            at=day_start(step.today, tz) if actor is None else now,
        )
        await notify.enqueue_for_event(case, action, actor, conn=conn, today=step.today, tz=tz,
                                       changes=step.changed)
    return event


async def _merge_target(case: Case, number: str | None) -> Case:
    ref = (number or "").strip().upper().replace("#", "")
    if len(ref) != 8 or any(c not in "0123456789ABCDEF" for c in ref):
        raise DomainError("请填写主案件的 8 位编号。", field="merge_into")
    candidates = [c for c in await _cases_with_prefix(ref.lower())
                  if c.unit_id == case.unit_id]  # type: ignore[attr-defined]
    if len(candidates) != 1:
        raise DomainError("找不到这个编号的案件。", field="merge_into")
    main = candidates[0]
    if main.id == case.id:
        raise DomainError("不能与自己合并。", field="merge_into")
    if main.status == Status.MERGED:
        raise DomainError("主案件本身已被合并，请选它所合并到的案件。", field="merge_into")
    return main


async def _cases_with_prefix(prefix: str) -> list[Case]:
    # UUIDs are stored natively on PostgreSQL and as text on SQLite; compare on the range of
    # UUIDs that start with the 8 hex digits, which works on both and uses the primary key.
    low = uuid.UUID(prefix + "0" * 24)
    high = uuid.UUID(prefix + "f" * 24)
    return await Case.filter(id__gte=low, id__lte=high).limit(2)


# DESIGN.md §1.3: a follow-up changes nothing in the case, so nothing fixes its place among the
# staff events of its day. It gets a sequence number of its own, outside the staff numbering
# (negative, growing with the day), and timelines show it at the start of its day: the stored
# numbers do not say which staff events of that day came before it. Everything else a submitter
# does (submit, rate, 不满意) has its place fixed by the state machine anyway (a rating follows
# the answer), so it keeps the ordinary numbering.
UNORDERED = frozenset({"followup"})
_UNORDERED_BASE = -(2**30)


def _unordered_seq(day: date, k: int) -> int:
    return _UNORDERED_BASE + day.toordinal() * 1000 + k


async def _append(
    case: Case, action: str, actor: StaffUser | None, *, conn: BaseDBAsyncClient,
    from_status: str | None,
    to_status: str | None, body: str | None, public: bool, at: datetime,
    detail: str | None = None,
) -> Event:
    if actor is None and action in UNORDERED:
        day = at.date()
        first = _unordered_seq(day, 1)
        taken = await Event.filter(case_id=case.id, seq__gte=first,
                                   seq__lt=first + 999).using_db(conn).count()
        seq = first + taken
    else:
        last = await Event.filter(case_id=case.id, seq__gt=0).using_db(conn) \
            .order_by("-seq").first()
        seq = (last.seq if last else 0) + 1
    return await Event.create(
        # case=, not case_id=: the queue clock's listener reads the unit from it (no query).
        id=uuid.uuid4(), case=case, seq=seq, action=action, from_status=from_status,
        to_status=to_status, actor=actor, by_submitter=actor is None, body=body, detail=detail,
        public=public, at=at, using_db=conn,
    )


def _body_prompt(action: str) -> str:
    return {
        "reject": "请写明不予受理的理由（提交人能看到）。",
        "reply": "请填写答复内容（提交人能看到）。",
        "return": "请写明退回的理由。",
        "reopen": "请写明重新办理的原因。",
        "reconsider": "请写明重新受理的原因。",
        "note": "请填写备注内容。",
        "followup": "请填写补充说明。",
        "rate_unsatisfied": "选择“不满意”时，请说明哪里不满意，我们会重新办理。",
        "publish": "请填写公示摘要。",
    }.get(action, "请填写内容。")


def timeline_key(event: Event, tz: ZoneInfo) -> tuple[date, int, int]:
    """Display order: by day; within a day the submission, then follow-ups (whose time within
    the day is not kept), then the rest in their recorded order."""
    group = 0 if event.action == "submit" else 1 if event.seq < 0 else 2
    return (event.at.astimezone(tz).date(), group, event.seq)


async def timeline(case: Case, *, public_only: bool, tz: ZoneInfo) -> list[Event]:
    qs = Event.filter(case_id=case.id)
    if public_only:
        qs = qs.filter(public=True)
    events = await qs.prefetch_related("actor")
    return sorted(events, key=lambda e: timeline_key(e, tz))


def can_close_unrated(case: Case, now: datetime, window_days: int) -> bool:
    return case.answered_at is not None and now - case.answered_at >= timedelta(days=window_days)
