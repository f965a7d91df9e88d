"""Cases that reach the box another way (issue 16): recorded by staff from a paper slip, a talk
(谈心), a meeting or a phone call, and the paper slips with tear-off receipt stubs. No HTTP here.

A recorded case runs the same process as a worker's own. Its first event is a ``submit`` written
at day precision with the recording staff member as actor (they know the worker anyway; the
record says who typed it in), never the worker's name: the form asks staff not to write it.

Paper slips: each printed slip carries a fresh receipt code on its stub. Only the code's keyed
hash is stored (``SlipCode``), until staff enter the slip with that code: the case then takes the
hash, the slip row goes. Whoever prints and enters slips sees their codes (the admin page says
so). Unused codes expire (``slip_expiry_days``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from . import notify, receipts
from .cases import DomainError, Status, Submitted, attach_photos, day_start
from .models import Case, Category, Event, SlipCode, Source, StaffUser, Team, Unit, UsedFormToken
from .photos import CleanPhoto

RECORDERS = frozenset({"leader", "admin"})
SLIPS_MAX = 200


async def recordable_sources() -> list[Source]:
    """The sources staff pick from: every active one except 扫码 (a worker's own)."""
    return [s for s in await Source.filter(active=True) if s.key != "qr"]


async def qr_source_id() -> int | None:
    found = await Source.get_or_none(key="qr")
    return found.id if found else None


def may_record(actor: StaffUser, workshop: Unit) -> bool:
    unit_id = actor.unit_id  # type: ignore[attr-defined]
    return actor.role in RECORDERS and unit_id in (None, workshop.id)


async def record_case(
    *, secret_key: str, actor: StaffUser, workshop: Unit, source_id: int | None,
    category_id: int, team: Team | None, body: str, today: date, tz: ZoneInfo,
    slip_code: str = "", photos: Sequence[CleanPhoto] = (), form_id: str | None = None,
) -> Submitted:
    """Record a case on a worker's behalf. With ``slip_code`` (a paper slip's stub) the case
    takes that code; otherwise a new receipt is returned for staff to hand over. ``form_id``:
    the form's one-time id, so that a form sent twice records one case."""
    if form_id and await UsedFormToken.exists(id=form_id):
        raise DomainError("这份表单已经提交过了：请到案件列表查看，不必重复录入。")
    if not may_record(actor, workshop):
        raise DomainError("您不能为这个车间录入。")
    errors: list[DomainError] = []
    source = await Source.get_or_none(id=source_id, active=True) if source_id else None
    slip_hash = None
    slip_code = slip_code.strip()
    if slip_code:
        try:
            slip_hash = receipts.receipt_hash(secret_key, slip_code)
        except receipts.InvalidReceipt:
            errors.append(DomainError("纸条回执码是 16 位数字和字母，请核对存根。", field="slip"))
        source = await Source.get_or_none(key="paper")
    if source is None or source.key == "qr":
        errors.append(DomainError("请选择来源。", field="source"))
    category = await Category.get_or_none(id=category_id, active=True)
    if category is None or category.workshop_id not in (None, workshop.id):  # type: ignore[attr-defined]
        errors.append(DomainError("请选择一个类别。", field="category"))
    if team is not None and team.workshop_id != workshop.id:  # type: ignore[attr-defined]
        errors.append(DomainError("请选择本车间的班组。", field="team"))
    if errors:
        raise errors[0]
    assert source is not None and category is not None
    receipt = slip_code if slip_hash else receipts.new_receipt()
    digest = slip_hash or receipts.receipt_hash(secret_key, receipt)
    try:
        async with in_transaction() as conn:
            if form_id:
                await UsedFormToken.create(id=form_id, wrapped="", used_on=today, using_db=conn)
            if slip_hash:
                slip = await SlipCode.filter(id=slip_hash).select_for_update().using_db(
                    conn).first()
                if slip is None or slip.workshop_id != workshop.id:  # type: ignore[attr-defined]
                    raise DomainError("没有这个纸条回执码：可能已经录入过、已过期，或不是本车间"
                                      "打印的纸条。", field="slip")
                if slip.expires_on < today:
                    raise DomainError("这张纸条的回执码已过期。", field="slip")
                await SlipCode.filter(id=slip_hash).using_db(conn).delete()
            case = await Case.create(
                id=uuid.uuid4(), receipt_hash=digest, category=category, team=team, body=body,
                status=Status.NEW, received_on=today, unit=workshop, workshop=workshop,
                source=source, using_db=conn,
            )
            event = await Event.create(
                id=uuid.uuid4(), case=case, seq=1, action="submit", to_status=Status.NEW,
                actor=actor, by_submitter=False, public=True,
                body=f"由工作人员代为录入（来源：{source.name}）", at=day_start(today, tz),
                using_db=conn,
            )
            await attach_photos(case.id, event.id, photos)
            await notify.enqueue_for_event(case, "submit", actor, conn=conn, today=today, tz=tz)
    except IntegrityError as exc:
        if form_id and await UsedFormToken.exists(id=form_id):
            raise DomainError("这份表单已经提交过了：请到案件列表查看，不必重复录入。") from exc
        raise DomainError("这个回执码已经录入过了。", field="slip") from exc
    return Submitted(case=case, receipt=receipts.format_receipt(receipts.normalise(receipt)))


async def print_slips(secret_key: str, workshop: Unit, count: int, today: date,
                      expiry_days: int) -> list[str]:
    """``count`` fresh codes for paper slips of ``workshop``; only their hashes are kept."""
    if workshop.kind != "workshop":
        raise DomainError("纸条只能为车间打印。")
    if not 1 <= count <= SLIPS_MAX:
        raise DomainError(f"一次打印 1 到 {SLIPS_MAX} 张。", field="count")
    codes = [receipts.new_receipt() for _ in range(count)]
    expires = today + timedelta(days=expiry_days)
    async with in_transaction() as conn:
        await SlipCode.bulk_create(
            [SlipCode(id=receipts.receipt_hash(secret_key, c), workshop_id=workshop.id,
                      expires_on=expires) for c in codes], using_db=conn)
    return codes


async def purge_slips(today: date) -> int:
    return await SlipCode.filter(expires_on__lt=today).delete()
