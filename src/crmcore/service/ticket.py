"""The `Ticket` and `SatisfactionSurvey` aggregates: customer requests, their history, and CSAT.

A ticket keeps every status change (`StatusChange`) in ``status_history``, so SLA timers can
recompute elapsed time from it rather than trust counters. Statuses are names from a `StatusSet`
(`DEFAULT_STATUSES` unless a host sets its own with `ticket_statuses`), each of one `StatusKind`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.errors import FieldError, TransitionError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.validation import (
    check_on_setattr,
    checked,
    custom_fields,
    instance_of,
    one_of,
    optional,
    run_checks,
    tags_check,
    text,
    tuple_of,
    utc_datetime,
    version_number,
)

__all__ = [
    "AuthorRole",
    "Comment",
    "DEFAULT_STATUSES",
    "SURVEY_FIELDS",
    "SatisfactionSurvey",
    "StatusChange",
    "StatusDef",
    "StatusKind",
    "StatusSet",
    "TICKET_FIELDS",
    "Ticket",
    "TicketChannel",
    "TicketConfig",
    "TicketPriority",
    "TicketType",
    "current_statuses",
    "ticket_statuses",
]


class TicketChannel(enum.Enum):
    """Where a ticket came in."""

    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    WEB_FORM = "web_form"
    SOCIAL = "social"


class TicketPriority(enum.Enum):
    """How urgent a ticket is; SLA policies pick their targets by it."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketType(enum.Enum):
    """What a ticket is about (an enum, so reports and rules can rely on the values).

    A question asks for information; an incident reports something broken for this customer; a
    problem is the cause behind one or more incidents; a task is work to do. Finer kinds go in tags
    or custom fields.
    """

    QUESTION = "question"
    INCIDENT = "incident"
    PROBLEM = "problem"
    TASK = "task"


class StatusKind(enum.Enum):
    """What a status means to the model and to SLA timers.

    ``active``: the agents' move (new, open); ``waiting``: on hold or waiting on the customer
    (timers may pause); ``solved``: done, but the customer may reopen it; ``closed``: final.
    """

    ACTIVE = "active"
    WAITING = "waiting"
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """Whether tickets in such a status still need work (active or waiting)."""
        return self in (StatusKind.ACTIVE, StatusKind.WAITING)

    @property
    def is_solved(self) -> bool:
        """Whether tickets in such a status count as solved (solved or closed)."""
        return not self.is_open


_STATUS_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")


def _status_name(value: Any, path: str) -> str:
    name = text(max_length=40, required=True)(value, path)
    if not _STATUS_NAME.match(name):
        raise ValidationError(path, f"{name!r} must be lower-case letters, digits and _ (not first a digit)")
    return str(name)


@attrs.frozen(kw_only=True)
class StatusDef:
    """One status a ticket can be in: a name (stored on tickets), a label for people, a kind."""

    name: str = checked(_status_name)
    kind: StatusKind = checked(one_of(StatusKind))
    label: str = checked(text(max_length=100), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class StatusSet:
    """The statuses tickets may be in; ``initial`` is the status of new tickets.

    Refused when built: repeated names, an initial status that is not active, no solved status.
    """

    statuses: tuple[StatusDef, ...] = checked(tuple_of(instance_of(StatusDef)))
    initial: str = checked(_status_name, default="new")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        seen: set[str] = set()
        for i, status in enumerate(self.statuses):
            if status.name in seen:
                errors.append(FieldError(f"statuses[{i}].name", f"{status.name!r} is defined twice"))
            seen.add(status.name)
        initial = next((s for s in self.statuses if s.name == self.initial), None)
        if initial is None:
            errors.append(FieldError("initial", f"{self.initial!r} is not one of the statuses"))
        elif initial.kind is not StatusKind.ACTIVE:
            errors.append(FieldError("initial", f"{self.initial!r} must be an active status"))
        if not any(s.kind is StatusKind.SOLVED for s in self.statuses):
            errors.append(FieldError("statuses", "must hold at least one status of kind 'solved'"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def names(self) -> tuple[str, ...]:
        """The status names, in declaration order."""
        return tuple(s.name for s in self.statuses)

    def kind(self, name: str) -> StatusKind:
        """The kind of status ``name``.

        Raises:
            ValidationError: ``name`` is not in this set (the message lists the valid names).
        """
        return self.get(name).kind

    def get(self, name: str, path: str = "status") -> StatusDef:
        """The definition of status ``name``; `ValidationError` listing the valid names if there is none."""
        for status in self.statuses:
            if status.name == name:
                return status
        raise ValidationError(path, f"{name!r} is not one of {', '.join(map(repr, self.names))}")

    def is_open(self, name: str) -> bool:
        """Whether ``name`` is an open (active or waiting) status."""
        return self.kind(name).is_open

    def is_solved(self, name: str) -> bool:
        """Whether ``name`` is a solved or closed status."""
        return self.kind(name).is_solved


DEFAULT_STATUSES = StatusSet(
    statuses=(
        StatusDef(name="new", kind=StatusKind.ACTIVE, label="New"),
        StatusDef(name="open", kind=StatusKind.ACTIVE, label="Open"),
        StatusDef(name="pending", kind=StatusKind.WAITING, label="Waiting on customer"),
        StatusDef(name="on_hold", kind=StatusKind.WAITING, label="On hold"),
        StatusDef(name="solved", kind=StatusKind.SOLVED, label="Solved"),
        StatusDef(name="closed", kind=StatusKind.CLOSED, label="Closed"),
    ),
    initial="new",
)
"""new and open are active, pending (waiting on the customer) and on_hold are waiting, solved, closed."""

_statuses: ContextVar[StatusSet] = ContextVar("crmcore_ticket_statuses", default=DEFAULT_STATUSES)


def current_statuses() -> StatusSet:
    """The status set tickets are checked against: `DEFAULT_STATUSES` unless `ticket_statuses` set one."""
    return _statuses.get()


@contextmanager
def ticket_statuses(statuses: StatusSet) -> Iterator[None]:
    """Check tickets built, assigned or moved inside the block against ``statuses``.

    A context variable (as `crmcore.customers.phone_region`), so threads and async tasks each keep
    their own; a host with its own statuses wraps its ticket code (or the facade does) in it.
    """
    if not isinstance(statuses, StatusSet):
        raise ValidationError("statuses", f"must be a StatusSet, not {type(statuses).__name__}")
    token = _statuses.set(statuses)
    try:
        yield
    finally:
        _statuses.reset(token)


@attrs.frozen(kw_only=True)
class TicketConfig:
    """Ticket settings a host writes (round-trips through `crmcore.serialization`)."""

    statuses: StatusSet = checked(instance_of(StatusSet), default=DEFAULT_STATUSES)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _status(value: Any, path: str) -> str:
    name = _status_name(value, path)
    current_statuses().get(name, path)
    return name


def _body(value: Any, path: str) -> str:
    body: str = text(max_length=50_000, strip=False)(value, path)
    if not body.strip():
        raise ValidationError(path, "is required")
    return body


class AuthorRole(enum.Enum):
    """Who wrote a comment; only a public comment by an agent counts as the first response."""

    AGENT = "agent"
    CUSTOMER = "customer"
    SYSTEM = "system"
    """Automation (acknowledgements, macros run by rules)."""


@attrs.frozen(kw_only=True)
class Comment:
    """One comment on a ticket; ``public`` ones are visible to the customer, others are internal notes."""

    author: str = checked(check_id)
    body: str = checked(_body)
    at: datetime = checked(utc_datetime)
    public: bool = checked(instance_of(bool), default=True)
    role: AuthorRole = checked(one_of(AuthorRole), default=AuthorRole.AGENT)
    id: str = checked(check_id, factory=new_id)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class StatusChange:
    """A ticket moved from one status to another at ``at``, by ``by`` (None: automation)."""

    at: datetime = checked(utc_datetime)
    from_status: str = checked(_status_name)
    to_status: str = checked(_status_name)
    by: str | None = checked(optional(check_id), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(path, f"must be a non-negative integer, got {value!r}")
    return value


def _positive(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(path, f"must be a positive integer, got {value!r}")
    return value


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Ticket:
    """A customer's request, from its first message to its solution.

    ``status`` is a name of the status set in effect (`current_statuses`). Change it with
    `change_status`, which keeps ``status_history``, ``solved_at`` and ``reopen_count`` right; add
    comments with `add_comment`, which sets ``first_response_at``. Both return a new ticket.
    The ticket was in its first status (the first change's ``from_status``, else ``status``)
    from ``created_at`` on.
    """

    customer_id: str = checked(check_id)
    subject: str = checked(text(max_length=300, required=True))
    id: str = checked(check_id, factory=new_id)
    contact_id: str | None = checked(optional(check_id), default=None)
    channel: TicketChannel = checked(one_of(TicketChannel), default=TicketChannel.WEB_FORM)
    description: str = checked(text(max_length=50_000, strip=False), default="")
    priority: TicketPriority = checked(one_of(TicketPriority), default=TicketPriority.NORMAL)
    type: TicketType = checked(one_of(TicketType), default=TicketType.QUESTION)
    tags: Sequence[str] = checked(tags_check, default=())
    status: str = checked(_status, factory=lambda: current_statuses().initial)
    assignee: str | None = checked(optional(check_id), default=None)
    team: str | None = checked(optional(check_id), default=None)
    comments: Sequence[Comment] = checked(tuple_of(instance_of(Comment)), default=())
    status_history: Sequence[StatusChange] = checked(tuple_of(instance_of(StatusChange)), default=())
    first_response_at: datetime | None = checked(optional(utc_datetime), default=None)
    solved_at: datetime | None = checked(optional(utc_datetime), default=None)
    reopen_count: int = checked(_count, default=0)
    sla_policy: str | None = checked(optional(text(max_length=100, required=True)), default=None)
    """The SLA policy the ticket is pinned to (`crmcore.service.SlaPolicies.apply`), with ``sla_version``."""
    sla_version: int | None = checked(optional(_positive), default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless history, status and comments agree (stores call it)."""
        errors: list[FieldError] = []
        if (self.sla_policy is None) != (self.sla_version is None):
            errors.append(FieldError("sla_version", "and sla_policy must be both set (pinned) or both empty"))
        history = self.status_history
        for i in range(1, len(history)):
            if history[i].at < history[i - 1].at:
                errors.append(FieldError(f"status_history[{i}].at", "is earlier than the change before it"))
            if history[i].from_status != history[i - 1].to_status:
                errors.append(
                    FieldError(
                        f"status_history[{i}].from_status",
                        f"is {history[i].from_status!r}, the change before it went to "
                        f"{history[i - 1].to_status!r}",
                    )
                )
        if history and history[-1].to_status != self.status:
            errors.append(
                FieldError("status", f"is {self.status!r}, the last change went to {history[-1].to_status!r}")
            )
        seen: dict[str, int] = {}
        for i, comment in enumerate(self.comments):
            first = seen.setdefault(comment.id, i)
            if first != i:
                errors.append(FieldError(f"comments[{i}].id", f"repeats the id of comment {first}"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def is_open(self) -> bool:
        """Whether the ticket still needs work, by the status set in effect."""
        return current_statuses().is_open(self.status)

    def change_status(self, to: str, at: datetime, by: str | None = None) -> Ticket:
        """This ticket moved to status ``to`` at ``at`` (a new ticket; this one is unchanged).

        The change is appended to ``status_history``. Entering a solved or closed status from an
        open one sets ``solved_at``; going from a solved status back to an open one counts a
        reopen and clears ``solved_at``. Moving to the current status returns an unchanged copy.

        Raises:
            ValidationError: ``to`` is not in the status set in effect, ``at`` is naive or earlier
                than the last change, ``by`` is not an id (all reported together).
            TransitionError: the ticket is closed (closed is final; open a follow-up ticket).
        """
        statuses = current_statuses()
        errors: list[FieldError] = []
        target: StatusDef | None = None
        when: datetime | None = None
        try:
            target = statuses.get(_status_name(to, "to"), "to")
        except ValidationError as exc:
            errors.extend(exc.errors)
        try:
            when = utc_datetime(at, "at")
        except ValidationError as exc:
            errors.extend(exc.errors)
        try:
            who = optional(check_id)(by, "by")
        except ValidationError as exc:
            errors.extend(exc.errors)
        last = self.status_history[-1].at if self.status_history else None
        if when is not None and last is not None and when < last:
            errors.append(
                FieldError("at", f"is before the ticket's last status change at {last.isoformat()}")
            )
        if errors:
            raise ValidationError.from_errors(errors)
        assert target is not None and when is not None
        current = statuses.get(self.status)
        if target.name == current.name:
            return attrs.evolve(self)
        if current.kind is StatusKind.CLOSED:
            raise TransitionError(
                f"ticket {self.id!r} is closed ({current.name!r}): closed tickets cannot change status"
            )
        solved_at, reopens = self.solved_at, self.reopen_count
        if current.kind.is_open and target.kind.is_solved:
            solved_at = when
        elif current.kind.is_solved and target.kind.is_open:
            solved_at, reopens = None, reopens + 1
        change = StatusChange(at=when, from_status=current.name, to_status=target.name, by=who)
        return attrs.evolve(
            self,
            status=target.name,
            status_history=(*self.status_history, change),
            solved_at=solved_at,
            reopen_count=reopens,
        )

    def add_comment(
        self,
        author: str,
        body: str,
        at: datetime,
        *,
        public: bool = True,
        role: AuthorRole = AuthorRole.AGENT,
        id: str | None = None,
    ) -> Ticket:
        """This ticket with a comment added (a new ticket; this one is unchanged).

        The first public comment by an agent sets ``first_response_at``; internal notes, the
        customer's own messages and automation's do not.

        Raises:
            ValidationError: a bad author id, an empty body, a naive ``at`` (all reported together).
        """
        comment = Comment(author=author, body=body, at=at, public=public, role=role, id=id or new_id())
        first = self.first_response_at
        if first is None and comment.public and comment.role is AuthorRole.AGENT:
            first = comment.at
        return attrs.evolve(self, comments=(*self.comments, comment), first_response_at=first)

    @property
    def public_comments(self) -> tuple[Comment, ...]:
        """The comments the customer can see, in order."""
        return tuple(c for c in self.comments if c.public)


TICKET_FIELDS = FieldSet.of(
    "Ticket",
    [
        *record_fields(),
        FieldDef("customer_id", FieldType.TEXT, lambda t: t.customer_id, nullable=False),
        FieldDef("contact_id", FieldType.TEXT, lambda t: t.contact_id),
        FieldDef("subject", FieldType.TEXT, lambda t: t.subject, nullable=False),
        enum_field("channel", TicketChannel),
        enum_field("priority", TicketPriority),
        enum_field("type", TicketType),
        FieldDef("status", FieldType.TEXT, lambda t: t.status, nullable=False),
        FieldDef("assignee", FieldType.TEXT, lambda t: t.assignee),
        FieldDef("team", FieldType.TEXT, lambda t: t.team),
        FieldDef("tags", FieldType.TEXT_LIST, lambda t: t.tags, nullable=False),
        FieldDef("first_response_at", FieldType.DATETIME, lambda t: t.first_response_at),
        FieldDef("solved_at", FieldType.DATETIME, lambda t: t.solved_at),
        FieldDef("reopen_count", FieldType.INTEGER, lambda t: t.reopen_count, nullable=False),
        FieldDef("sla_policy", FieldType.TEXT, lambda t: t.sla_policy),
        FieldDef("sla_version", FieldType.INTEGER, lambda t: t.sla_version),
    ],
    json={"custom": lambda t: t.custom},
)
"""The fields of `Ticket` that conditions, ``find`` and ``order_by`` can use.

``status`` has no fixed choices: hosts may define their own `StatusSet`.
"""


def _score(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError(path, f"must be an integer from 1 to 5, got {value!r}")
    return value


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class SatisfactionSurvey:
    """A CSAT survey about one ticket: sent at ``sent_at``, answered with a 1-5 ``score`` (or not yet).

    Its own aggregate, so answering never conflicts with agents working on the ticket.
    """

    ticket_id: str = checked(check_id)
    customer_id: str = checked(check_id)
    sent_at: datetime = checked(utc_datetime)
    id: str = checked(check_id, factory=new_id)
    score: int | None = checked(_score, default=None)
    comment: str = checked(text(max_length=5_000, strip=False), default="")
    answered_at: datetime | None = checked(optional(utc_datetime), default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless score and answer time go together, the answer after sending."""
        errors: list[FieldError] = []
        if (self.score is None) != (self.answered_at is None):
            errors.append(FieldError("score", "and answered_at must be both set (answered) or both empty"))
        if self.answered_at is not None and self.answered_at < self.sent_at:
            errors.append(FieldError("answered_at", "is before sent_at"))
        if self.comment and self.answered_at is None:
            errors.append(FieldError("comment", "needs an answer (score and answered_at)"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def answered(self) -> bool:
        """Whether the customer has answered."""
        return self.score is not None

    def answer(self, score: int, at: datetime, comment: str = "") -> SatisfactionSurvey:
        """This survey answered with ``score`` (1-5) at ``at`` (a new survey; this one is unchanged).

        Raises:
            ValidationError: a score outside 1-5, a naive ``at`` or one before ``sent_at``.
            TransitionError: the survey was answered already.
        """
        if self.answered:
            raise TransitionError(f"survey {self.id!r} was answered already")
        return attrs.evolve(self, score=score, answered_at=at, comment=comment)


SURVEY_FIELDS = FieldSet.of(
    "SatisfactionSurvey",
    [
        *record_fields(),
        FieldDef("ticket_id", FieldType.TEXT, lambda s: s.ticket_id, nullable=False),
        FieldDef("customer_id", FieldType.TEXT, lambda s: s.customer_id, nullable=False),
        FieldDef("score", FieldType.INTEGER, lambda s: s.score),
        FieldDef("sent_at", FieldType.DATETIME, lambda s: s.sent_at, nullable=False),
        FieldDef("answered_at", FieldType.DATETIME, lambda s: s.answered_at),
    ],
    json={"custom": lambda s: s.custom},
)
"""The fields of `SatisfactionSurvey` that conditions, ``find`` and ``order_by`` can use."""
