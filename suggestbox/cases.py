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
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from . import (  # noqa: F401 (queue_clock: its listener)
    followthrough,
    notify,
    queue_clock,
    receipts,
    tokens,
    urgency,
)
from .models import (
    Case,
    Category,
    EscalationLevel,
    EscalationStep,
    Event,
    Photo,
    StaffUser,
    Team,
    Unit,
    UsedFormToken,
)
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
SYSTEM = frozenset({"system"})  # the worker's escalation ladder
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
    level_id: int | None = None  # escalate: the ladder's level
    due_key: str | None = None  # escalate: level, case and deadline (sent once per key)
    # 落实 and rewards (issue 18).
    promised_on: date | None = None
    benefit: str | None = None
    reward_amount: int | None = None
    reward_unit: str | None = None


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
    extra: dict[str, object] = field(default_factory=dict)  # what the notification needs


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
    # The event keeps the day only, though staff record it: it is when a worker came to the
    # desk (reward_claim), a worker's action (DESIGN.md §1.3).
    day_only: bool = False
    # Any leader or admin may do it, whatever unit the case is in: the reward desk (often the
    # 段工会 desk, which sees no workshop's cases) confirms a claim by the receipt a worker shows.
    any_unit: bool = False


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
    if case.carried_out_at is None and case.promised_on is not None:
        raise DomainError("承诺的事还没有落实；落实后才能办结。")
    if case.carried_out_at is None and followthrough.is_adopted(case):
        raise DomainError("采纳的建议还没有落实；落实后才能办结。")
    # The worker may rate after the answer or after 落实: the window runs from the later one.
    rated_from = max((t for t in (case.answered_at, case.carried_out_at) if t is not None),
                     default=None)
    if case.rating not in ("satisfied", "basic") and rated_from is not None and (
        step.now - rated_from < timedelta(days=window)
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
    step.body = RATINGS[rating] + _rated_after(step) + (f"：{step.body}" if step.body else "")


def _rated_after(step: Step) -> str:
    """Which the rating is of, when 落实 is tracked: the work carried out, or the answer while a
    promise is still open (a case without either reads as before: a rating of the answer)."""
    if step.case.carried_out_at is not None:
        return "（落实后评价）"
    return "（答复后评价）" if step.case.promised_on is not None else ""


async def _rate_unsatisfied(step: Step) -> None:
    _not_rated_yet(step)
    await _reopen(step)
    step.changed.update(rating="unsatisfied", rated_on=step.today)
    step.body = f"不满意{_rated_after(step)}：{step.body}"


async def _urge(step: Step) -> None:
    """催一下: once the case is past its deadline, at most once per case and day."""
    case = step.case
    category = await Category.get(id=case.category_id).using_db(step.conn)  # type: ignore[attr-defined]
    if not urgency.overdue(case, category, step.now, step.tz):
        raise DomainError("还没有超过办理期限。超过期限仍没有答复时，可以在这里催一下。")
    start = day_start(step.today, step.tz).astimezone(UTC)  # SQLite compares the text
    if await Event.filter(case_id=case.id, action="urge", at__gte=start,
                          at__lt=start + timedelta(days=1)).using_db(step.conn).exists():
        raise DomainError("今天已经催过了，明天还没有答复的话可以再催。")
    step.changed["urges"] = case.urges + 1
    step.body = None  # a press, no text


async def _escalate(step: Step) -> None:
    """One step of the escalation ladder, recorded once per level, case and deadline (a second
    worker inserting the same key fails and its whole transaction rolls back)."""
    level = await EscalationLevel.filter(id=step.args.level_id or 0).using_db(step.conn).first()
    if level is None or not step.args.due_key:
        raise DomainError("没有这一级升级规则。")
    await EscalationStep.create(id=step.args.due_key[:160], case_id=step.case.id,
                                using_db=step.conn)
    category = await Category.get(id=step.case.category_id).using_db(step.conn)  # type: ignore[attr-defined]
    # The deadline's ladder, or a promise's (承诺完成日期): the key names which due moment.
    deadline = urgency.due_at(step.case, category, step.tz)
    promised = urgency.promise_due(step.case, step.tz)
    dues = [d for d in (deadline, promised) if d is not None]
    due = next((d for d in dues if step.args.due_key.endswith(d.astimezone(UTC).isoformat())),
               dues[0] if dues else None)
    if due is None or step.now < due + timedelta(hours=level.after_hours):
        raise DomainError("这件事还没有到这一级升级的时间。")
    if due is promised:
        step.extra.update(target=level.target, promise=True,
                          late=f"承诺 {step.case.promised_on} 完成，已逾期 "
                               f"{max(1, (step.now - due).days + 1)} 天")
        step.body = f"承诺逾期升级：{LADDER_TARGETS.get(level.target, level.target)}" + (
            f"（逾期后 {level.after_hours} 小时）" if level.after_hours else "（逾期时）")
        return
    hours = urgency.limit_hours(step.case, category)
    # Never a time of day in a message (DESIGN.md §1.7): an urgent case's limit in hours.
    step.extra.update(
        target=level.target, late=urgency.late_text(step.case, category, due, step.now),
        deadline=f"{hours} 小时内{'受理' if step.case.status == 'new' else '答复'}"
        if hours is not None
        else (due.astimezone(step.tz).date() - timedelta(days=1)).isoformat())
    step.body = f"超期升级：{LADDER_TARGETS.get(level.target, level.target)}" + (
        f"（期限后 {level.after_hours} 小时）" if level.after_hours else "（到期时）")


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


# ---- 落实, adoption review, rewards (issue 18; shared parts in followthrough.py) --------------

def _not_carried_out(step: Step) -> None:
    if step.case.carried_out_at is not None:
        raise DomainError("这件事已经落实了。")


async def _promise(step: Step) -> None:
    """承诺完成日期: a day not in the past; a new promise replaces the old one (the old one
    stays in the events, and the report counts it)."""
    _not_carried_out(step)
    day = step.args.promised_on
    if day is None:
        raise DomainError("请填写承诺完成日期。", field="promised_on")
    if day < step.today:
        raise DomainError("承诺完成日期不能早于今天。", field="promised_on")
    if day > step.today + timedelta(days=3660):
        raise DomainError("承诺完成日期太远了。", field="promised_on")
    if day == step.case.promised_on:
        raise DomainError("承诺完成日期没有变化。", field="promised_on")
    step.changed["promised_on"] = day
    step.detail = followthrough.PROMISE_DETAIL.format(day=day.isoformat())
    step.body = f"承诺 {day.isoformat()} 前完成" + (f"：{step.body}" if step.body else "")


async def _progress(step: Step) -> None:
    _not_carried_out(step)


async def _carry_out(step: Step) -> None:
    """落实: done on the shop floor. An adoption-reviewed case must be adopted first."""
    _not_carried_out(step)
    case = step.case
    if case.adoption_review and not followthrough.is_adopted(case):
        raise DomainError("暂不采纳的建议不落实。" if case.adoption == "decline"
                          else "这条建议还没有采纳评审；采纳后才能落实。")
    step.changed["carried_out_at"] = step.now
    benefit = (step.args.benefit or "").strip()
    if benefit:
        benefit = clean_text(benefit, minimum=1, maximum=2000, label="效益")
        step.changed["benefit"] = benefit
        step.body = f"{step.body}\n效益：{benefit}"


async def _review(step: Step, decision: str) -> None:
    case = step.case
    if not case.adoption_review:
        raise DomainError("这个类别的事项不做采纳评审。")
    if case.adoption == decision:
        raise DomainError(f"已经是“{followthrough.ADOPTION_LABELS[decision]}”了。")
    if decision == "decline":
        if case.carried_out_at is not None:
            raise DomainError("已落实的建议不能改为暂不采纳。")
        if case.reward_state in ("claimed", "team_fund"):
            raise DomainError("奖励已经发放，不能改为暂不采纳。")
        if case.reward_state == "offered":
            step.changed.update(reward_state=None, reward_amount=None, reward_unit=None)
            step.detail = "原定奖励随之取消"
    step.changed["adoption"] = decision
    step.body = f"{followthrough.ADOPTION_LABELS[decision]}：{step.body}"


async def _adopt(step: Step) -> None:
    await _review(step, "adopt")


async def _adopt_partial(step: Step) -> None:
    await _review(step, "adopt_partial")


async def _decline(step: Step) -> None:
    await _review(step, "decline")


async def _reward(step: Step) -> None:
    """A reward for an adopted suggestion (or a change of it, until it is claimed)."""
    case, a = step.case, step.args
    if not followthrough.is_adopted(case):
        raise DomainError("只有采纳（含部分采纳）的建议才能奖励。")
    if case.reward_state in ("claimed", "team_fund"):
        raise DomainError("奖励" + followthrough.REWARD_STATES[case.reward_state]
                          + "，不能再改。")
    if a.reward_unit not in followthrough.REWARD_UNITS:
        raise DomainError("请选择奖励的单位（元或积分）。", field="reward_unit")
    if a.reward_amount is None or not 0 < a.reward_amount <= followthrough.REWARD_MAX:
        raise DomainError(f"请填写奖励数额：1 到 {followthrough.REWARD_MAX} 的整数。",
                          field="reward_amount")
    if case.reward_state == "offered" and (case.reward_amount, case.reward_unit) == (
            a.reward_amount, a.reward_unit):
        raise DomainError("奖励没有变化。", field="reward_amount")
    step.changed.update(reward_amount=a.reward_amount, reward_unit=a.reward_unit,
                        reward_state="offered")
    shown = followthrough.reward_text(a.reward_amount, a.reward_unit)
    step.detail = followthrough.REWARD_DETAIL.format(
        amount=a.reward_amount, unit=followthrough.REWARD_UNITS[a.reward_unit])
    step.body = f"奖励 {shown}" + (f"：{step.body}" if step.body else "")


def _reward_waiting(step: Step) -> None:
    state = step.case.reward_state
    if state is None:
        raise DomainError("这件事没有奖励。")
    if state != "offered":
        raise DomainError("奖励" + followthrough.REWARD_STATES[state] + "。")


async def _reward_claim(step: Step) -> None:
    """Claimed at the desk: the day only, no name."""
    _reward_waiting(step)
    step.changed.update(reward_state="claimed", reward_settled_on=step.today)
    step.body = "奖励 " + followthrough.reward_text(step.case.reward_amount,
                                                  step.case.reward_unit) + " 已领取"


async def _reward_donate(step: Step) -> None:
    """The worker gives the reward to the team fund (班组基金) instead of showing up."""
    _reward_waiting(step)
    step.changed.update(reward_state="team_fund", reward_settled_on=step.today)
    step.body = "奖励 " + followthrough.reward_text(step.case.reward_amount,
                                                  step.case.reward_unit) + " 捐入班组基金"


FOLLOW = _s(Status.ACCEPTED, Status.IN_PROGRESS, Status.ANSWERED)

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
    # 落实 (issue 18): with or after the answer.
    "promise": Rule("承诺完成日期", FOLLOW, None, ANY_STAFF, _promise, public=True),
    "progress": Rule("整改进度", FOLLOW, None, ANY_STAFF, _progress, needs_body=True,
                     public=True),
    "carry_out": Rule("落实", FOLLOW, None, ANY_STAFF, _carry_out, needs_body=True,
                      public=True),
    # Adoption review (采纳评审) of suggestions: leaders (and admins) decide.
    "adopt": Rule("采纳", FOLLOW, None, STAFF, _adopt, needs_body=True, public=True),
    "adopt_partial": Rule("部分采纳", FOLLOW, None, STAFF, _adopt_partial, needs_body=True,
                          public=True),
    "decline": Rule("暂不采纳", FOLLOW, None, STAFF, _decline, needs_body=True, public=True),
    "reward": Rule("奖励", FOLLOW | {Status.CLOSED}, None, STAFF, _reward, public=True),
    "reward_claim": Rule("领取奖励", ALL - {Status.MERGED}, None, STAFF, _reward_claim,
                         public=True, day_only=True, any_unit=True),
    "reward_donate": Rule("奖励捐入班组基金", ALL - {Status.MERGED}, None, SUBMITTER,
                          _reward_donate, public=True),
    # 催一下 from /track once the deadline has passed; the ladder's steps, by the worker.
    "urge": Rule("催办", _s(*OPEN_STATUSES), None, SUBMITTER, _urge, public=True),
    # Deadlines of open cases, and promises (承诺完成日期) of answered ones too.
    "escalate": Rule("超期升级", _s(*OPEN_STATUSES, Status.ANSWERED), None, SYSTEM, _escalate),
}
# Who hears of a ladder step (EscalationLevel.target).
LADDER_TARGETS: dict[str, str] = {
    "assignee": "通知承办人",
    "unit": "通知本单位领导群",
    "depot": "通知段领导群",
}
# The review's decisions are offered as one form on the case page.
REVIEW_ACTIONS = ("adopt", "adopt_partial", "decline")

# Actions a staff member picks on the case page, in display order.
STAFF_ACTIONS = ["accept", "start", "reply", "transfer", "return", "close", "reopen", "reject",
                 "reconsider", "merge", "note", "promise", "progress", "carry_out", "adopt",
                 "adopt_partial", "decline", "reward"]


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
    clock_start: datetime | None = None,
    notify_now: bool = False,
    category: Category | None = None,
    source_id: int | None = None,
) -> Submitted:
    """Create a case and its first event; a replayed form token returns the original receipt.

    ``first_use`` runs when this form token has not been used before, before anything is
    written (the caller starts its "show the receipt again" window there, so that a concurrent
    double POST of the same form already finds the window open).

    ``clock_start`` (``urgency.clock_start``) is kept only for an urgent category: its limits
    count in hours from there. ``notify_now``: the worker asked for an immediate notification
    (urgent categories only); it is not stored, only the message's kind says it.
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
                clock_at=clock_start if category.urgent else None,
                # 扫码 (models.py would look it up otherwise)
                **({"source_id": source_id} if source_id is not None else {}),  # type: ignore[arg-type]
            )
            event = await Event.create(
                id=uuid.uuid4(), case=case, seq=1, action="submit", to_status=Status.NEW,
                by_submitter=True, public=True, at=day_start(today, tz),
            )
            await attach_photos(case.id, event.id, photos)
            await notify.enqueue_for_event(
                case, "submit", None, conn=conn, today=today, tz=tz,
                extra={"now": notify_now and category.urgent})
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
    if action not in ("followup", "rate", "urge", "reward_donate"):
        raise DomainError("未知的操作。")
    if action == "urge":
        body = ""
    if action == "followup" and photos and not body.strip():
        body = "（补充照片）"
    if action == "reward_donate":
        body = ""
    elif action == "followup" or body.strip():
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


def role_of(actor: StaffUser | None, system: bool = False) -> str:
    if system:
        return "system"
    return actor.role if actor is not None else "submitter"


def allowed_actions(case: Case, actor: StaffUser) -> list[str]:
    """Staff actions the actor may offer on this case (the same checks ``apply`` makes)."""
    return [a for a in STAFF_ACTIONS if _permission_error(RULES[a], case, actor) is None
            and _applicable(a, case)]


def _applicable(action: str, case: Case) -> bool:
    """Whether the case page offers an issue-18 action at all (``apply`` refuses the rest with
    a message anyway): the review for adoption-reviewed cases, 落实 until it is done, a reward
    for adopted suggestions until it is handed over."""
    if action in REVIEW_ACTIONS:
        return bool(case.adoption_review)
    if action in ("promise", "progress"):
        return case.carried_out_at is None
    if action == "carry_out":
        return case.carried_out_at is None and (
            not case.adoption_review or followthrough.is_adopted(case))
    if action == "reward":
        return followthrough.is_adopted(case) and case.reward_state in (None, "offered")
    return True


def _permission_error(rule: Rule, case: Case, actor: StaffUser | None,
                      system: bool = False) -> str | None:
    role = role_of(actor, system)
    if role not in rule.roles:
        return f"您没有权限执行“{rule.label}”。"
    if actor is not None and not rule.any_unit and not may_see(actor, case):
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
    level_id: int | None = None,
    due_key: str | None = None,
    system: bool = False,
    promised_on: date | None = None,
    benefit: str | None = None,
    reward_amount: int | None = None,
    reward_unit: str | None = None,
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
                rating_window_days=rating_window_days, photo_ids=photo_ids,
                level_id=level_id, due_key=due_key,
                promised_on=promised_on, benefit=benefit, reward_amount=reward_amount,
                reward_unit=reward_unit)
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
        problem = _permission_error(rule, case, actor, system)
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
            at=day_start(step.today, tz) if (actor is None and not system) or rule.day_only
            else now,
            by_submitter=actor is None and not system,
        )
        await notify.enqueue_for_event(case, action, actor, conn=conn, today=step.today, tz=tz,
                                       changes=step.changed, extra=step.extra)
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
UNORDERED = frozenset({"followup", "urge"})
_UNORDERED_BASE = -(2**30)


def _unordered_seq(day: date, k: int) -> int:
    return _UNORDERED_BASE + day.toordinal() * 1000 + k


async def _append(
    case: Case, action: str, actor: StaffUser | None, *, conn: BaseDBAsyncClient,
    from_status: str | None,
    to_status: str | None, body: str | None, public: bool, at: datetime,
    detail: str | None = None, by_submitter: bool | None = None,
) -> Event:
    if by_submitter is None:
        by_submitter = actor is None
    if by_submitter and action in UNORDERED:
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
        to_status=to_status, actor=actor, by_submitter=by_submitter, body=body, detail=detail,
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
        "progress": "请填写整改进度（提交人能看到）。",
        "carry_out": "请写明落实了什么（提交人能看到）。",
        "adopt": "请写明采纳评审的理由（提交人能看到）。",
        "adopt_partial": "请写明采纳评审的理由（提交人能看到）。",
        "decline": "请写明采纳评审的理由（提交人能看到）。",
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
