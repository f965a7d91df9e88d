"""The reward desk (奖励领取, issue 18): staff enter a worker's receipt code, see the case and
its reward, and confirm that it was handed over. No name is asked for or stored; the claim is
recorded with the day only (it is when a worker came to the desk)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import cases, followthrough
from ..cases import DomainError
from ..models import Case
from ..templating import render
from .common import field, now_utc, require_staff, settings_of, staff_form

ROLES = ("leader", "admin")


def _context(session: Any, **more: Any) -> dict[str, Any]:
    return {"me": session.user, "csrf": session.csrf,
            "reward_units": followthrough.REWARD_UNITS,
            "reward_states": followthrough.REWARD_STATES, **more}


async def desk_page(request: Request) -> Response:
    session = await require_staff(request, *ROLES)
    done = request.query_params.get("done", "")[:8]
    return render(request, "staff/rewards.html", _context(
        session, done=done if done.isalnum() else "", desk=await followthrough.reward_desk()))


async def _find(receipt: str, session: Any, secret_key: str) -> Case:
    if not receipt.strip():
        raise DomainError("请输入回执码。", field="receipt")
    # Any leader or admin, of any unit (the 段工会 desk sees no workshop's cases otherwise):
    # the worker is standing there with the receipt. The page shows the number, the category
    # and the reward, never the text.
    case = await cases.find_by_receipt(secret_key, receipt)
    if case is None:
        raise DomainError("没有找到与这个回执码对应的事项，请核对后重试。", field="receipt")
    if case.reward_state is None:
        raise DomainError(f"事项 {case.number} 没有奖励。", field="receipt")
    return case


async def desk(request: Request) -> Response:
    """Step 1 (``step=find``): show the case and its reward. Step 2 (``step=confirm``): mark
    the reward claimed and go back to an empty form."""
    session, form = await staff_form(request, *ROLES)
    s = settings_of(request)
    receipt = field(form, "receipt")[:64]
    step = field(form, "step")
    desk_name = await followthrough.reward_desk()
    try:
        case = await _find(receipt, session, s.secret_key)
        if step == "confirm":
            if field(form, "handed") != "1":
                raise DomainError("请勾选确认：奖励已当面交给职工。", field="handed")
            await cases.apply(case.id, "reward_claim", session.user, now=now_utc(), tz=s.tz)
            return RedirectResponse(f"/staff/rewards?done={case.number}", status_code=303)
    except DomainError as e:
        found = None
        if e.field == "handed" or step == "confirm":
            found = await cases.find_by_receipt(s.secret_key, receipt) if receipt else None
        return render(request, "staff/rewards.html", _context(
            session, error=e.message, error_field=e.field, receipt=receipt, desk=desk_name,
            case=found if found is not None and found.reward_state else None),
            status_code=422)
    return render(request, "staff/rewards.html", _context(
        session, receipt=receipt, case=case, desk=desk_name))


routes = [
    Route("/staff/rewards", desk_page, methods=["GET"]),
    Route("/staff/rewards", desk, methods=["POST"]),
]
