"""我也遇到 (附议): a worker adds their voice to a problem on the board instead of writing it again.
No HTTP here.

A press is counted on the case (``Case.supports``, for sorting) and in a per-day row
(``Support``, for the monthly report). Nothing about the person is stored: no identity, no time
finer than the day, nothing that ties a press to a case the same person wrote. One press per
browser per item is the web layer's business (a signed cookie on the device, and the same
address throttle as submissions).
"""

from __future__ import annotations

import uuid
from datetime import date

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from . import queue_clock
from .cases import BOARD_STATUSES, DomainError
from .models import Case, Support

# A published case can be supported in any status the board shows it in.
SUPPORTABLE = list(BOARD_STATUSES)


async def press(case_id: uuid.UUID, today: date) -> int:
    """Count one press for a case on the board; return its new total."""
    for _ in range(2):  # a concurrent first press of the day may create the day's row first
        try:
            async with in_transaction() as conn:
                case = await Case.filter(id=case_id, published=True,
                                         status__in=SUPPORTABLE).select_for_update().using_db(
                    conn).first()
                if case is None:
                    raise DomainError("公示栏里没有这一条。")
                updated = await Support.filter(case_id=case_id, day=today).using_db(
                    conn).update(count=F("count") + 1)
                if not updated:
                    await Support.create(id=uuid.uuid4(), case_id=case_id, day=today, count=1,
                                         using_db=conn)
                await Case.filter(id=case_id).using_db(conn).update(supports=F("supports") + 1)
            queue_clock.bump()  # the board's count changed without an event
            return int(case.supports) + 1
        except IntegrityError:
            continue
    raise DomainError("请稍后再试。")
