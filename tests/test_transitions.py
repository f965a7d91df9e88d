"""The state machine, exhaustively: every action from every state, on both databases.

An action allowed from a state (per ``cases.RULES``) succeeds, moves the case to the rule's
target and appends exactly one event; from any other state it is refused with a message and
writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from suggestbox import cases
from suggestbox.cases import RULES, DomainError, Status
from suggestbox.models import Case, EscalationLevel, Event, StaffUser
from tests.conftest import add_user, seed_case

TZ = ZoneInfo("Asia/Shanghai")
# "unpublish" needs a published case: covered by tests/test_qr_board.py.
ACTIONS = [a for a in RULES if a not in ("submit", "unpublish")]


async def _apply(case_id, action, actor, **kw):
    if action == "escalate":  # the worker's ladder: a level of the depot's, a fresh key
        level = await EscalationLevel.get(unit_id=None, after_hours=0)
        kw = {"level_id": level.id, "due_key": f"t:{uuid.uuid4().hex}", "system": actor is None}
    return await cases.apply(case_id, action, actor, now=datetime.now(UTC), tz=TZ,
                             rating_window_days=0, **kw)


async def _prepare(action: str, case: Case) -> None:
    """催办 and the ladder need a case past its deadline."""
    if action in ("urge", "escalate"):
        await Case.filter(id=case.id).update(deadline=date(2001, 1, 1))
    if action == "escalate" and case.status == Status.ANSWERED:  # a promise not kept
        await Case.filter(id=case.id).update(promised_on=date(2001, 1, 1))


async def _case_in(state: Status, leader: StaffUser, handler: StaffUser, main: Case) -> Case:
    case = await seed_case(f"处于{state}状态的案件。")
    steps: dict[Status, list[tuple[str, StaffUser | None, dict]]] = {
        Status.NEW: [],
        Status.ACCEPTED: [("accept", leader, {"assignee_id": handler.id})],
        Status.IN_PROGRESS: [("accept", leader, {"assignee_id": handler.id}),
                             ("start", handler, {})],
        Status.ANSWERED: [("accept", leader, {"assignee_id": handler.id}),
                          ("reply", handler, {"body": "答复"})],
        Status.CLOSED: [("accept", leader, {"assignee_id": handler.id}),
                        ("reply", handler, {"body": "答复"}), ("close", leader, {})],
        Status.REJECTED: [("reject", leader, {"body": "理由"})],
        Status.MERGED: [("merge", leader, {"merge_into": main.number})],
    }
    for action, actor, kw in steps[state]:
        await _apply(case.id, action, actor, **kw)
    await case.refresh_from_db()
    assert case.status == state
    return case


def _actor(action: str, leader: StaffUser, handler: StaffUser) -> StaffUser | None:
    roles = RULES[action].roles
    if "submitter" in roles or "system" in roles:
        return None
    return handler if "leader" not in roles else leader


# What the new actions of issue 18 need besides the state: a suggestion (adoption review), an
# adopted one (reward), an offered reward (claim, donate). Set on the case before the action.
PRECONDITIONS: dict[str, dict] = {
    "adopt": {"adoption_review": True},
    "adopt_partial": {"adoption_review": True},
    "decline": {"adoption_review": True},
    "carry_out": {"adoption_review": True, "adoption": "adopt"},
    "reward": {"adoption_review": True, "adoption": "adopt"},
    "reward_claim": {"adoption_review": True, "adoption": "adopt", "reward_amount": 50,
                     "reward_unit": "yuan", "reward_state": "offered"},
    "reward_donate": {"adoption_review": True, "adoption": "adopt", "reward_amount": 50,
                      "reward_unit": "points", "reward_state": "offered"},
}


def _args(action: str, handler: StaffUser, other: StaffUser, main: Case) -> dict:
    return {
        "promise": {"promised_on": cases.local_today(TZ) + timedelta(days=3)},
        "reward": {"reward_amount": 100, "reward_unit": "yuan", "body": "按奖励办法"},
        "reward_claim": {}, "reward_donate": {},
        "accept": {"assignee_id": handler.id},
        "transfer": {"assignee_id": other.id},
        "merge": {"merge_into": main.number},
        "rate": {"rating": "satisfied"},
        "rate_unsatisfied": {"rating": "unsatisfied", "body": "不满意的理由"},
        "publish": {"summary": "公示摘要"},
    }.get(action, {"body": "说明"})


async def test_every_action_from_every_state(app):
    await add_user("lead", "leader")
    await add_user("h1", "handler")
    await add_user("h2", "handler")
    leader = await StaffUser.get(username="lead")
    handler = await StaffUser.get(username="h1")
    other = await StaffUser.get(username="h2")
    main = await seed_case("作为合并目标的主案件。")
    checked = 0
    for action in ACTIONS:
        rule = RULES[action]
        for state in Status:
            case = await _case_in(state, leader, handler, main)
            await _prepare(action, case)
            if action in PRECONDITIONS:
                await Case.filter(id=case.id).update(**PRECONDITIONS[action])
            before = await Event.filter(case_id=case.id).count()
            actor = _actor(action, leader, handler)
            kwargs = _args(action, handler, other, main)
            if state in rule.sources:
                event = await _apply(case.id, action, actor, **kwargs)
                await case.refresh_from_db()
                assert case.status == (rule.target or state), (action, state)
                assert await Event.filter(case_id=case.id).count() == before + 1, (action, state)
                last = await Event.get(id=event.id)
                assert last.action == action
                assert last.by_submitter == (actor is None and action != "escalate")
            else:
                with pytest.raises(DomainError) as refused:
                    await _apply(case.id, action, actor, **kwargs)
                assert refused.value.message, (action, state)
                await case.refresh_from_db()
                assert case.status == state, (action, state)
                assert await Event.filter(case_id=case.id).count() == before, (action, state)
            checked += 1
    assert checked == len(ACTIONS) * len(Status)


async def test_wrong_role_is_refused_and_writes_nothing(app):
    """Each case is in a state where the action is allowed, so only the role can refuse it."""
    await add_user("lead", "leader")
    await add_user("h1", "handler")
    await add_user("h2", "handler")
    leader = await StaffUser.get(username="lead")
    handler = await StaffUser.get(username="h1")
    other = await StaffUser.get(username="h2")
    main = await seed_case("作为合并目标的主案件。")
    attempts = [
        ("accept", handler, Status.NEW), ("reject", handler, Status.NEW),
        ("merge", handler, Status.NEW), ("transfer", handler, Status.ACCEPTED),
        ("reopen", handler, Status.ANSWERED), ("close", handler, Status.ANSWERED),
        ("followup", leader, Status.NEW), ("rate", leader, Status.ANSWERED),
        ("rate_unsatisfied", leader, Status.ANSWERED), ("return", leader, Status.ACCEPTED),
        ("publish", handler, Status.ANSWERED), ("unpublish", handler, Status.ANSWERED),
        ("urge", leader, Status.ACCEPTED), ("escalate", leader, Status.NEW),
        # Issue 18: the review and rewards are the leaders'; donating the reward the worker's;
        # 落实 and promises the handler's (a submitter may not).
        ("adopt", handler, Status.IN_PROGRESS), ("adopt_partial", handler, Status.ANSWERED),
        ("decline", handler, Status.IN_PROGRESS), ("reward", handler, Status.ANSWERED),
        ("reward_claim", handler, Status.ANSWERED), ("reward_claim", None, Status.ANSWERED),
        ("reward_donate", leader, Status.ANSWERED), ("promise", None, Status.ANSWERED),
        ("progress", None, Status.IN_PROGRESS), ("carry_out", None, Status.ANSWERED),
    ]
    for action, actor, state in attempts:
        case = await _case_in(state, leader, handler, main)
        if action in PRECONDITIONS:
            await Case.filter(id=case.id).update(**PRECONDITIONS[action])
        assert state in RULES[action].sources, action
        before = await Event.filter(case_id=case.id).count()
        with pytest.raises(DomainError) as refused:
            await _apply(case.id, action, actor, **_args(action, handler, other, main))
        assert "没有权限" in refused.value.message, (action, refused.value.message)
        await case.refresh_from_db()
        assert case.status == state
        assert await Event.filter(case_id=case.id).count() == before
    # A submitter (no account, not the worker's ladder) cannot take a ladder step either.
    case = await _case_in(Status.NEW, leader, handler, main)
    with pytest.raises(DomainError, match="没有权限"):
        await cases.apply(case.id, "escalate", None, now=datetime.now(UTC), tz=TZ,
                          level_id=1, due_key="x")
