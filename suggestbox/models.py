"""Tortoise models. The schema changes only through committed migrations.

Anonymity (DESIGN.md §1): nothing here holds a network identity. Submitter-side times are
dates (day precision). Cases and events have random UUID keys so that key order does not reveal
the order of submissions.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.signals import pre_save


class Unit(Model):
    # A node of the depot's tree below the depot itself: a workshop (车间), whose box workers
    # use, or a depot desk (段级渠道, such as 段工会 or 纪检) that a worker may address a case to
    # instead of the workshop. The depot is the deployment (its name is in ``site_setting``).

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=16)  # workshop | desk
    sort_order = fields.IntField(default=0)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "unit"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class Category(Model):
    id = fields.IntField(primary_key=True)
    # Names are unique in the depot: a name several workshops need becomes a depot default.
    name = fields.CharField(max_length=32, unique=True)
    # None: a depot default, offered in every workshop; else a workshop's own addition.
    workshop: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="categories", null=True, on_delete=fields.RESTRICT
    )
    deadline_days = fields.IntField(default=7)
    sort_order = fields.IntField(default=0)
    active = fields.BooleanField(default=True)
    # Urgent (安全隐患 by default): limits in hours, counted from the hour the leaders were told
    # (see urgency.py); the queue puts these first. Day-based ``deadline_days`` for the rest.
    urgent = fields.BooleanField(default=False, db_default=False)
    respond_hours = fields.IntField(null=True)  # accept within N hours
    answer_hours = fields.IntField(null=True)  # answer within N hours
    # Cases of this category go through adoption review (采纳评审: 采纳 / 部分采纳 / 暂不采纳);
    # 建议 is marked by default. Read into each case when it is received (Case.adoption_review).
    adoption_review = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "category"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class Source(Model):
    # Where a case came from (来源): 扫码 (workers themselves), 纸质意见箱, 谈心, 座谈会,
    # 职代会提案, 电话, 其他; an admin may add, rename or retire entries. ``key`` marks the two
    # the code needs ("qr": a worker's own submission, "paper": a paper slip).

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=16, null=True, unique=True)
    name = fields.CharField(max_length=32, unique=True)
    sort_order = fields.IntField(default=0)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "source"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class Team(Model):
    # A team (班组) or location of a workshop; its code is carried in QR links as
    # ``/w/<workshop>/?t=<code>``. Codes are unique in the depot (old ``/?t=`` posters keep
    # working). ``workshop`` is set for every team (nullable only for the migration).

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    workshop: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="teams", null=True, on_delete=fields.RESTRICT
    )
    sort_order = fields.IntField(default=0)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "team"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class StaffUser(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=64, default="")
    role = fields.CharField(max_length=16)  # admin | leader | handler
    # The workshop or depot desk this account works in; None: a depot role (admin, leader).
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="staff", null=True, on_delete=fields.RESTRICT
    )
    password_hash = fields.CharField(max_length=255)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff_user"
        ordering = ["username"]

    @property
    def label(self) -> str:
        return self.display_name or self.username


class StaffSession(Model):
    # Server-side staff session; the cookie holds a token, the table only its SHA-256.

    id = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[StaffUser] = fields.ForeignKeyField(
        "models.StaffUser", related_name="sessions", on_delete=fields.CASCADE
    )
    csrf = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()

    class Meta:
        table = "staff_session"


class Case(Model):
    id = fields.UUIDField(primary_key=True)
    receipt_hash = fields.CharField(max_length=64, unique=True)
    # Who handles it: the workshop, or the depot desk the worker addressed it to (then the
    # workshop never sees it). ``workshop``: the box it came through. Both are set for every
    # case and never change (nullable only for the migration that filled them).
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="cases", null=True, on_delete=fields.RESTRICT
    )
    workshop: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="box_cases", null=True, on_delete=fields.RESTRICT
    )
    # 来源; None only for rows from before sources existed (the migration set them to 扫码).
    source: fields.ForeignKeyNullableRelation[Source] = fields.ForeignKeyField(
        "models.Source", related_name="cases", null=True, on_delete=fields.RESTRICT
    )
    # 我也遇到: presses on the board (this case's and, after a merge, its duplicates').
    supports = fields.IntField(default=0, db_default=0)
    category: fields.ForeignKeyRelation[Category] = fields.ForeignKeyField(
        "models.Category", related_name="cases", on_delete=fields.RESTRICT
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    body = fields.TextField()
    status = fields.CharField(max_length=16, db_index=True)
    # Day precision only: the submitter's time.
    received_on = fields.DateField(db_index=True)
    assignee: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "models.StaffUser", related_name="assigned_cases", null=True, on_delete=fields.SET_NULL
    )
    deadline = fields.DateField(null=True)
    # Staff actions keep exact times.
    responded_at = fields.DatetimeField(null=True)
    answered_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    reject_reason = fields.TextField(null=True)
    merged_into: fields.ForeignKeyNullableRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="duplicates", null=True, on_delete=fields.SET_NULL
    )
    rating = fields.CharField(max_length=16, null=True)
    rated_on = fields.DateField(null=True)
    reopen_count = fields.IntField(default=0)
    # Public board (公示栏).
    published = fields.BooleanField(default=False)
    public_summary = fields.TextField(null=True)
    show_reply = fields.BooleanField(default=True)
    published_at = fields.DatetimeField(null=True)
    # Urgent categories only: the hour the leaders were told of the case (a quiet-time batch
    # boundary, or the next full hour when the worker asked for an immediate notification). The
    # hours-based limits count from here. None for every other case (day precision only).
    clock_at = fields.DatetimeField(null=True)
    # 催办: presses of 催一下 on /track (at most one per case and day).
    urges = fields.IntField(default=0, db_default=0)
    # ---- 落实, adoption review and rewards (followthrough.py) ----
    # Fixed when the case is received, from its category (an admin marking a category later
    # does not change earlier cases, so 建议数 of a past month stays put).
    adoption_review = fields.BooleanField(default=False, db_default=False)
    # adopt | adopt_partial | decline (the latest review); None: not reviewed.
    adoption = fields.CharField(max_length=16, null=True)
    # 承诺完成日期 (the latest promise) and when it was carried out (落实, a staff action).
    promised_on = fields.DateField(null=True)
    carried_out_at = fields.DatetimeField(null=True)
    benefit = fields.TextField(null=True)  # 效益: the outcome note
    # A reward: a whole number of 元 or 积分 (reward_unit "yuan" | "points").
    reward_amount = fields.IntField(null=True)
    reward_unit = fields.CharField(max_length=8, null=True)
    # offered | claimed (at the desk) | team_fund (given to 班组基金); day precision only.
    reward_state = fields.CharField(max_length=16, null=True)
    reward_settled_on = fields.DateField(null=True)

    class Meta:
        table = "case"
        indexes = (
            ("status", "received_on"),
            ("assignee_id", "status"),
            ("received_on", "id"),  # the queue's keyset paging
            ("published", "status", "published_at", "closed_at"),  # the board and its version
            ("deadline",),  # overdue checks and reports
            ("unit_id", "received_on", "id"),  # a unit's queue and report
            ("unit_id", "status"),  # a unit's counts by status
            # A workshop's board and its version: the few published cases of that workshop,
            # never a scan of all its cases (SQLite would take (unit_id, status) otherwise).
            ("unit_id", "published", "status"),
            # Reports: a unit's cases open at a month's end (and overdue), read from the index
            # alone (PostgreSQL index-only scan) instead of every open case's row.
            ("unit_id", "status", "received_on", "deadline"),
            # The queue's urgent block and its overdue promises (issue 19): a unit's few cases
            # with an hour clock or a promise, not a scan of all its open cases.
            ("unit_id", "clock_at"),
            ("unit_id", "promised_on"),
        )

    @property
    def number(self) -> str:
        """Short reference shown to staff (random, so it reveals no order)."""
        return self.id.hex[:8].upper()


class Event(Model):
    # Append-only timeline of a case. The application never updates or deletes events.

    id = fields.UUIDField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="events", on_delete=fields.RESTRICT
    )
    # Order within one case; no order across cases is stored.
    seq = fields.IntField()
    action = fields.CharField(max_length=16)
    from_status = fields.CharField(max_length=16, null=True)
    to_status = fields.CharField(max_length=16, null=True)
    actor: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "models.StaffUser", related_name="events", null=True, on_delete=fields.RESTRICT
    )
    by_submitter = fields.BooleanField(default=False)
    body = fields.TextField(null=True)
    # Staff-only line written by the system (assignee and deadline), never shown to the submitter.
    detail = fields.TextField(null=True)
    public = fields.BooleanField(default=False)
    # Exact for staff; local midnight for the submitter.
    at = fields.DatetimeField()

    class Meta:
        table = "event"
        unique_together = (("case_id", "seq"),)
        indexes = (
            ("action", "at", "case_id"),  # monthly report: actions in a time range
            # Reports: a case's earlier or later events of some actions (first response, first
            # answer, last rating before a close, answered by the deadline) from the index alone.
            ("case_id", "action", "seq", "at"),
        )
        ordering = ["seq"]


class UsedFormToken(Model):
    # A one-time submission form token that has been used.
    #
    # ``id`` is an HMAC of the token's nonce; ``wrapped`` is the receipt XOR-ed with a pad that only
    # the nonce (held by the submitter's form) can derive, so a replayed form shows the same receipt
    # while the database alone cannot reveal it. Rows are purged after two days.

    id = fields.CharField(max_length=64, primary_key=True)
    wrapped = fields.CharField(max_length=64)
    used_on = fields.DateField(db_index=True)

    class Meta:
        table = "used_form_token"


class Channel(Model):
    # A webhook that hears about cases: a WeCom, DingTalk or Feishu group bot, or a generic JSON
    # endpoint. ``user`` set: that staff member's own channel (assignments and reminders go there
    # first), else a group channel (the leaders' group).

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=16)  # wecom | dingtalk | feishu | json
    url = fields.CharField(max_length=1024)
    # Optional signing secret (DingTalk, Feishu, generic JSON).
    secret = fields.CharField(max_length=255, default="")
    user: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "models.StaffUser", related_name="channels", null=True, on_delete=fields.CASCADE
    )
    # A group channel hears the cases of this workshop or depot desk; None: a depot group,
    # which hears every workshop's cases (never a desk's).
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="channels", null=True, on_delete=fields.CASCADE
    )
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "notify_channel"
        ordering = ["id"]


class OutboxMessage(Model):
    # One notification to one channel, written in the same transaction as the event that causes
    # it and delivered later by the worker. It holds no case text and no submitter time: the day
    # it was written, and a next-attempt time that is scheduling state only (a new row starts at
    # local midnight, and the time is cleared once the message is settled). Random keys, so key
    # order does not reveal the order of events.

    id = fields.UUIDField(primary_key=True)
    channel: fields.ForeignKeyRelation[Channel] = fields.ForeignKeyField(
        "models.Channel", related_name="messages", on_delete=fields.CASCADE
    )
    # new_case | assigned | due_tomorrow | overdue | unsatisfied | returned | batch | test
    kind = fields.CharField(max_length=16)
    title = fields.CharField(max_length=128)
    text = fields.TextField()
    # Staff link, relative (the base URL is added when sending).
    path = fields.CharField(max_length=255, default="")
    # One line for batches and digests (a category name, or a case number and a few words).
    summary = fields.CharField(max_length=255, default="")
    # pending | held | sending | sent | failed | batched
    status = fields.CharField(max_length=16)
    tries = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    created_on = fields.DateField()
    settled_on = fields.DateField(null=True)
    last_error = fields.CharField(max_length=255, default="")
    # Makes reminders and batches idempotent across processes.
    dedup_key = fields.CharField(max_length=160, null=True, unique=True)

    class Meta:
        table = "notify_outbox"
        indexes = (("status", "next_attempt_at"),)


class SiteSetting(Model):
    # Organisation settings an admin edits (unit name, emergency line): key → text.

    key = fields.CharField(max_length=32, primary_key=True)
    value = fields.CharField(max_length=255, default="")

    class Meta:
        table = "site_setting"


class SetupToken(Model):
    # One-time link that creates the first admin in the browser. Only a hash is kept, and every
    # token is deleted as soon as an admin exists.

    id = fields.CharField(max_length=64, primary_key=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "setup_token"


class Photo(Model):
    # A photo a worker attached (DESIGN.md §1.8): only the re-encoded JPEG and a thumbnail, made
    # from the pixels alone. Random key, no upload time: the event it belongs to has the day.

    id = fields.UUIDField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="photos", on_delete=fields.CASCADE
    )
    event: fields.ForeignKeyRelation[Event] = fields.ForeignKeyField(
        "models.Event", related_name="photos", on_delete=fields.RESTRICT
    )
    data = fields.BinaryField()
    thumb = fields.BinaryField()
    width = fields.IntField()
    height = fields.IntField()
    # Shown on the board: chosen by the leader who publishes the case.
    published = fields.BooleanField(default=False)

    class Meta:
        table = "photo"


# ---- defaults of the tree ---------------------------------------------------------------------
# A team or case saved without a workshop (a single-workshop installation's scripts, an old
# caller) belongs to the oldest workshop: the one a single-workshop database migrated into.
# Every path in the application names the workshop; this only keeps older callers correct.

async def _oldest_workshop_id(db: Any) -> int | None:
    unit = await Unit.filter(kind="workshop").order_by("id").using_db(db).first()
    return unit.id if unit else None


@pre_save(Team)
async def _team_in_workshop(sender: type[Team], instance: Team, using_db: Any,
                            update_fields: Any) -> None:
    if instance.workshop_id is None:  # type: ignore[attr-defined]
        instance.workshop_id = await _oldest_workshop_id(using_db)


@pre_save(Case)
async def _case_in_workshop(sender: type[Case], instance: Case, using_db: Any,
                            update_fields: Any) -> None:
    if instance.workshop_id is None:  # type: ignore[attr-defined]
        instance.workshop_id = await _oldest_workshop_id(using_db)
    if instance.unit_id is None:  # type: ignore[attr-defined]
        instance.unit_id = instance.workshop_id  # type: ignore[attr-defined]
    if instance.source_id is None:  # type: ignore[attr-defined]
        qr = await Source.filter(key="qr").using_db(using_db).first()
        instance.source_id = qr.id if qr else None
    if not instance._saved_in_db and not instance.adoption_review:
        # A new case: adoption review if its category asks for it (fixed from now on); from
        # the Category the case was created with, when given (no query; issue 19).
        category = instance.__dict__.get("_category")
        if isinstance(category, Category) and category.id == instance.category_id:  # type: ignore[attr-defined]
            instance.adoption_review = bool(category.adoption_review)
        else:
            instance.adoption_review = await Category.filter(
                id=instance.category_id, adoption_review=True  # type: ignore[attr-defined]
            ).using_db(using_db).exists()


class SlipCode(Model):
    # A receipt code printed on a paper slip's tear-off stub, not yet entered by staff: only its
    # keyed hash (like ``Case.receipt_hash``) and the day it stops being accepted. Deleted when
    # the slip is entered (the case then holds the hash) or when it expires.

    id = fields.CharField(max_length=64, primary_key=True)
    workshop: fields.ForeignKeyRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="slips", on_delete=fields.CASCADE
    )
    expires_on = fields.DateField(db_index=True)

    class Meta:
        table = "slip_code"


class Support(Model):
    # 我也遇到: how many presses a board item got on one day. No identity, no time finer than
    # the day, nothing that ties a press to anyone's own case.

    id = fields.UUIDField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="support_days", on_delete=fields.CASCADE
    )
    day = fields.DateField()
    count = fields.IntField(default=0)

    class Meta:
        table = "support"
        unique_together = (("case_id", "day"),)


class EscalationLevel(Model):
    # One rung of the escalation ladder: ``after_hours`` after a case's deadline has passed, its
    # ``target`` hears of it (assignee: their own channel, else the unit's groups; unit: the
    # unit's groups, as the first overdue message always did; depot: the depot's groups — for a
    # desk case the desk's own). ``unit`` None: the depot's ladder, used by every unit without
    # levels of its own.

    id = fields.IntField(primary_key=True)
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="escalation_levels", null=True, on_delete=fields.CASCADE
    )
    after_hours = fields.IntField(default=0)
    target = fields.CharField(max_length=16)  # assignee | unit | depot
    active = fields.BooleanField(default=True)

    class Meta:
        table = "escalation_level"
        ordering = ["after_hours", "id"]


class EscalationStep(Model):
    # A ladder step taken: one row per level, case and deadline (the key), so each step is
    # sent once even with several workers. Deleted with the case.

    id = fields.CharField(max_length=160, primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "models.Case", related_name="escalation_steps", on_delete=fields.CASCADE
    )

    class Meta:
        table = "escalation_step"
class ReportKept(Model):
    # Figures of a settled month (reports.py): the rows one report query returned, kept so that
    # printing the month again reads them instead of recomputing. The key is a hash of the
    # query's text, its parameters, the scope and reports.KEPT_VERSION; nothing in it or in the
    # rows identifies a submitter (aggregate counts by unit, category, team and day only).

    key = fields.CharField(max_length=64, primary_key=True)
    rows = fields.TextField()  # JSON
    kept_on = fields.DateField()

    class Meta:
        table = "report_kept"


class QueueClock(Model):
    # How many times the cases of a unit changed (queue_clock.py): every new event of one of its
    # cases adds one. The staff queue keeps its counts by status per process while the clocks
    # of the units it shows stand still. Counts of changes only, no times, no case ids.

    id = fields.IntField(primary_key=True, generated=False)  # unit id × SLOTS + a slot
    n = fields.BigIntField(default=0)

    class Meta:
        table = "queue_clock"
