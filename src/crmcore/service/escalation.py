"""Escalation rules: what happens to a ticket when one of its SLA targets warns or is breached.

An `EscalationRule` names the SLA events it reacts to (`EscalationTrigger`: warning or breached,
for one metric or any), an optional condition over `SLA_FIELDS` (the ticket and its customer) and
the actions to take, in order: reassign, raise the priority, add tags, notify. `EscalationRules`
holds rules in order; for each event the first rule that matches wins and the others are not
looked at. `EscalationRules.escalate` is pure: it returns the new ticket and the events to record
(`TicketEscalated`, and one `EscalationNotice` per notification, which the host delivers).

The SLA timer runner emits each warning and breach exactly once and calls `escalate` once per
event, so escalating needs no memory of its own; calling it twice for one event applies the rule
twice (a priority raised one step goes up two).
"""

from __future__ import annotations

import enum
import string
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

import attrs

from crmcore.conditions import Condition, check_condition, evaluate
from crmcore.customers.customer import Customer
from crmcore.errors import FieldError, ValidationError
from crmcore.events import DomainEvent
from crmcore.ids import check_id
from crmcore.service.sla import SLA_FIELDS, SlaBreached, SlaEvent, SlaMetric, SlaSubject, SlaWarning
from crmcore.service.ticket import Ticket, TicketPriority
from crmcore.validation import (
    checked,
    instance_of,
    one_of,
    optional,
    run_checks,
    tags_check,
    text,
    tuple_of,
    utc_datetime,
)

__all__ = [
    "ActionKind",
    "Escalation",
    "EscalationAction",
    "EscalationNotice",
    "EscalationRule",
    "EscalationRules",
    "EscalationTrigger",
    "FieldChange",
    "PLACEHOLDERS",
    "TicketEscalated",
    "TriggerKind",
]

PLACEHOLDERS = (
    "assignee",
    "customer_id",
    "due_at",
    "kind",
    "metric",
    "policy",
    "priority",
    "rule",
    "subject",
    "team",
    "ticket_id",
)
"""The names a notification message may use, as ``{name}`` (``{{`` and ``}}`` for literal braces)."""

_PRIORITIES = list(TicketPriority)


class TriggerKind(enum.Enum):
    """Which SLA event starts an escalation."""

    WARNING = "warning"
    BREACHED = "breached"


@attrs.frozen(kw_only=True)
class EscalationTrigger:
    """Matches SLA events of ``kind`` for ``metric`` (None: any metric)."""

    kind: TriggerKind = checked(one_of(TriggerKind))
    metric: SlaMetric | None = checked(optional(one_of(SlaMetric)), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def matches(self, kind: TriggerKind, metric: SlaMetric) -> bool:
        """Whether an event of ``kind`` for ``metric`` sets this trigger off."""
        return self.kind is kind and (self.metric is None or self.metric is metric)


class ActionKind(enum.Enum):
    """What an `EscalationAction` does; each kind uses its own fields (see `EscalationAction`)."""

    REASSIGN = "reassign"
    RAISE_PRIORITY = "raise_priority"
    ADD_TAGS = "add_tags"
    NOTIFY = "notify"


_USES = {
    ActionKind.REASSIGN: {"user", "team"},
    ActionKind.RAISE_PRIORITY: {"priority"},
    ActionKind.ADD_TAGS: {"tags"},
    ActionKind.NOTIFY: {"recipients", "message"},
}


def _recipient(value: Any, path: str) -> str:
    name: str = text(max_length=100, required=True)(value, path)
    if name in ("assignee", "team"):
        return name
    prefix, colon, ident = name.partition(":")
    if not colon or prefix not in ("user", "team"):
        raise ValidationError(path, f"{name!r} must be 'assignee', 'team', 'user:<id>' or 'team:<id>'")
    check_id(ident, path)
    return name


def _template(message: str, path: str) -> list[FieldError]:
    """Problems with ``message`` as a template: unknown names, specs, conversions, stray braces."""
    try:
        parts = list(string.Formatter().parse(message))
    except ValueError as exc:
        return [FieldError(path, f"is not a valid template ({exc}); write {{{{ and }}}} for literal braces")]
    errors: list[FieldError] = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            errors.append(
                FieldError(path, f"{{{name}}} is not a placeholder; use one of {', '.join(PLACEHOLDERS)}")
            )
        elif spec or conversion:
            errors.append(FieldError(path, f"{{{name}}} takes no format spec or conversion"))
    return errors


@attrs.frozen(kw_only=True)
class EscalationAction:
    """One thing an escalation does; build it with the class methods, which name each kind's fields.

    - ``reassign(user=, team=)``: set the assignee and/or the team. A team without a user puts the
      ticket in that team's queue: the assignee is cleared.
    - ``raise_priority(to=None)``: raise to ``to``, or one step up when None; never lowers, and
      urgent stays urgent.
    - ``add_tags(*tags)``: add tags to the ticket.
    - ``notify(recipients, message)``: an `EscalationNotice` the host delivers. Recipients are
      ``"user:<id>"``, ``"team:<id>"``, ``"assignee"`` and ``"team"`` (the ticket's own, resolved
      when the action runs, after the rule's earlier actions). ``message`` may use `PLACEHOLDERS`.

    Raises:
        ValidationError: when built: a field the kind does not use, a reassign without user or
            team, a notify without recipients, a message with unknown placeholders (all at once).
    """

    kind: ActionKind = checked(one_of(ActionKind))
    user: str | None = checked(optional(check_id), default=None)
    team: str | None = checked(optional(check_id), default=None)
    priority: TicketPriority | None = checked(optional(one_of(TicketPriority)), default=None)
    tags: tuple[str, ...] = checked(tags_check, default=())
    recipients: tuple[str, ...] = checked(tuple_of(_recipient, unique=True), default=())
    message: str = checked(text(max_length=2000, strip=False), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        uses = _USES[self.kind]
        errors = [
            FieldError(a.name, f"is not used by a {self.kind.value!r} action")
            for a in attrs.fields(EscalationAction)
            if a.name != "kind" and a.name not in uses and getattr(self, a.name) != a.default
        ]
        if self.kind is ActionKind.REASSIGN and self.user is None and self.team is None:
            errors.append(FieldError("user", "or team is required to reassign"))
        if self.kind is ActionKind.ADD_TAGS and not self.tags:
            errors.append(FieldError("tags", "must hold at least one tag"))
        if self.kind is ActionKind.NOTIFY:
            if not self.recipients:
                errors.append(FieldError("recipients", "must name at least one recipient"))
            if not self.message.strip():
                errors.append(FieldError("message", "is required"))
            errors.extend(_template(self.message, "message"))
        if errors:
            raise ValidationError.from_errors(errors)

    @classmethod
    def reassign(cls, *, user: str | None = None, team: str | None = None) -> EscalationAction:
        """Give the ticket to ``user`` and/or ``team`` (a team alone clears the assignee)."""
        return cls(kind=ActionKind.REASSIGN, user=user, team=team)

    @classmethod
    def raise_priority(cls, to: TicketPriority | str | None = None) -> EscalationAction:
        """Raise the priority to ``to`` (None: one step up); never lowers it."""
        return cls(kind=ActionKind.RAISE_PRIORITY, priority=None if to is None else TicketPriority(to))

    @classmethod
    def add_tags(cls, *tags: str) -> EscalationAction:
        """Add ``tags`` to the ticket."""
        return cls(kind=ActionKind.ADD_TAGS, tags=tags)

    @classmethod
    def notify(cls, recipients: Iterable[str], message: str) -> EscalationAction:
        """Send ``message`` (a template over `PLACEHOLDERS`) to ``recipients``."""
        return cls(kind=ActionKind.NOTIFY, recipients=tuple(recipients), message=message)


@attrs.frozen(kw_only=True)
class EscalationRule:
    """When one of ``triggers`` fires and ``condition`` (over `SLA_FIELDS`; None: always) holds, take
    ``actions`` in order.

    Raises:
        ValidationError: when built: no triggers, no actions, a condition on unknown fields.
    """

    name: str = checked(text(max_length=100, required=True))
    triggers: tuple[EscalationTrigger, ...] = checked(tuple_of(instance_of(EscalationTrigger)))
    actions: tuple[EscalationAction, ...] = checked(tuple_of(instance_of(EscalationAction)))
    condition: Condition | None = checked(optional(instance_of(Condition)), default=None)
    description: str = checked(text(max_length=1000), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        if not self.triggers:
            errors.append(FieldError("triggers", "must hold at least one trigger"))
        if not self.actions:
            errors.append(FieldError("actions", "must hold at least one action"))
        if self.condition is not None:
            try:
                check_condition(self.condition, SLA_FIELDS)
            except ValidationError as exc:
                errors.extend(
                    FieldError("condition" + e.path.removeprefix("where"), e.reason) for e in exc.errors
                )
        if errors:
            raise ValidationError.from_errors(errors)

    def matches(self, kind: TriggerKind, metric: SlaMetric, subject: SlaSubject, now: datetime) -> bool:
        """Whether an event of ``kind`` for ``metric`` on ``subject`` escalates by this rule."""
        if not any(t.matches(kind, metric) for t in self.triggers):
            return False
        return self.condition is None or evaluate(self.condition, subject, SLA_FIELDS, now)


@attrs.frozen(kw_only=True)
class FieldChange:
    """A ticket field an escalation changed, old and new value as plain text (tags joined by ", ")."""

    field: str
    old: str | None
    new: str | None


@attrs.frozen(kw_only=True)
class TicketEscalated(DomainEvent):
    """Rule ``rule`` escalated the ticket on an SLA ``trigger`` for ``metric``; ``changes`` lists what
    it changed (empty when the rule only notified)."""

    event_type: ClassVar[str] = "ticket.escalated"
    rule: str
    trigger: TriggerKind
    metric: SlaMetric
    cycle: str
    changes: tuple[FieldChange, ...] = ()


@attrs.frozen(kw_only=True)
class EscalationNotice(DomainEvent):
    """A message for the host to deliver to ``recipients`` (``"user:<id>"`` or ``"team:<id>"``)."""

    event_type: ClassVar[str] = "ticket.escalation_notice"
    rule: str
    recipients: tuple[str, ...]
    message: str


@attrs.frozen(kw_only=True)
class Escalation:
    """What `EscalationRules.escalate` decided: the rule that matched (None: none did), the ticket
    after its actions (the same ticket if none matched), the events to record and why."""

    rule: str | None
    ticket: Ticket
    events: tuple[DomainEvent, ...] = ()
    reason: str = ""

    @property
    def changes(self) -> tuple[FieldChange, ...]:
        """The ticket fields changed (save the ticket when there are any)."""
        return next((e.changes for e in self.events if isinstance(e, TicketEscalated)), ())


def _rules(value: Any, path: str) -> tuple[EscalationRule, ...]:
    rules: tuple[EscalationRule, ...] = tuple_of(instance_of(EscalationRule))(value, path)
    return rules


_TRACKED = ("assignee", "team", "priority", "tags")


def _plain(ticket: Ticket, name: str) -> str | None:
    value = getattr(ticket, name)
    if isinstance(value, TicketPriority):
        return value.value
    if name == "tags":
        return ", ".join(value)
    return None if value is None else str(value)


@attrs.frozen(kw_only=True)
class EscalationRules:
    """Escalation rules in order: for each SLA event the first rule that matches wins.

    Raises:
        ValidationError: when built: two rules with one name.
    """

    rules: tuple[EscalationRule, ...] = checked(_rules, default=())

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                errors.append(FieldError(f"rules[{i}].name", f"{rule.name!r} is used by an earlier rule"))
            seen.add(rule.name)
        if errors:
            raise ValidationError.from_errors(errors)

    def match(
        self, ticket: Ticket, event: SlaEvent, now: datetime, customer: Customer | None = None
    ) -> EscalationRule | None:
        """The first rule that ``event`` on ``ticket`` sets off, None if none does (checks as `escalate`)."""
        at, kind = _check(ticket, event, now)
        if kind is None:
            return None
        subject = SlaSubject(ticket=ticket, customer=customer)
        return next((r for r in self.rules if r.matches(kind, event.metric, subject, at)), None)

    def escalate(
        self, ticket: Ticket, event: SlaEvent, now: datetime, customer: Customer | None = None
    ) -> Escalation:
        """Apply the first rule ``event`` sets off to ``ticket`` (pure: the caller saves and records).

        Conditions see ``ticket`` as passed (the current copy, not the one at the event's time)
        and ``customer``. Met events and events no rule matches leave the ticket as it is. Apply
        it once per event: the SLA timer runner fires each warning and breach once.

        Raises:
            ValidationError: ``now`` is naive, ``event`` is not an SLA event, or it is about
                another ticket (``event.aggregate_id``); all reported together.
        """
        at, kind = _check(ticket, event, now)
        if kind is None:
            return Escalation(rule=None, ticket=ticket, reason=f"{event.event_type} events do not escalate")
        noun = "breach" if kind is TriggerKind.BREACHED else "warning"
        what = f"{event.metric.value.replace('_', ' ')} {noun}"
        subject = SlaSubject(ticket=ticket, customer=customer)
        rule = next((r for r in self.rules if r.matches(kind, event.metric, subject, at)), None)
        if rule is None:
            return Escalation(rule=None, ticket=ticket, reason=f"no escalation rule matches the {what}")
        return _apply(rule, ticket, event, kind, at, what)


_KINDS = ((SlaBreached, TriggerKind.BREACHED), (SlaWarning, TriggerKind.WARNING))


def _check(ticket: Ticket, event: SlaEvent, now: datetime) -> tuple[datetime, TriggerKind | None]:
    errors: list[FieldError] = []
    at = None
    try:
        at = utc_datetime(now, "now")
    except ValidationError as exc:
        errors.extend(exc.errors)
    if not isinstance(event, SlaEvent):
        errors.append(FieldError("event", f"must be an SLA event, not {type(event).__name__}"))
    elif event.aggregate_id != ticket.id:
        errors.append(
            FieldError(
                "event.aggregate_id",
                f"is {event.aggregate_id!r}, not the ticket's id {ticket.id!r}: "
                "escalate the ticket the event is about",
            )
        )
    if errors:
        raise ValidationError.from_errors(errors)
    assert at is not None
    return at, next((k for cls, k in _KINDS if isinstance(event, cls)), None)


def _apply(
    rule: EscalationRule, ticket: Ticket, event: SlaEvent, kind: TriggerKind, at: datetime, what: str
) -> Escalation:
    current = ticket
    notes: list[str] = []
    notices: list[EscalationNotice] = []
    for action in rule.actions:
        if action.kind is ActionKind.REASSIGN:
            assignee = action.user if action.user is not None or action.team is None else None
            current = attrs.evolve(current, assignee=assignee, team=action.team or current.team)
        elif action.kind is ActionKind.RAISE_PRIORITY:
            rank = _PRIORITIES.index(current.priority)
            wanted = action.priority or _PRIORITIES[min(rank + 1, len(_PRIORITIES) - 1)]
            if _PRIORITIES.index(wanted) > rank:
                current = attrs.evolve(current, priority=wanted)
            else:
                notes.append(f"priority stays {current.priority.value} (never lowered)")
        elif action.kind is ActionKind.ADD_TAGS:
            current = attrs.evolve(current, tags=(*current.tags, *action.tags))
        else:
            recipients, skipped = _resolve(action.recipients, current)
            notes.extend(f"{name} skipped: the ticket has none" for name in skipped)
            if recipients:
                message = action.message.format_map(_values(rule, current, event, kind))
                notices.append(
                    EscalationNotice(
                        aggregate_id=ticket.id,
                        occurred_at=at,
                        rule=rule.name,
                        recipients=recipients,
                        message=message,
                    )
                )
            else:
                notes.append("notification dropped: no recipient")
    changes = tuple(
        FieldChange(field=name, old=_plain(ticket, name), new=_plain(current, name))
        for name in _TRACKED
        if _plain(ticket, name) != _plain(current, name)
    )
    escalated = TicketEscalated(
        aggregate_id=ticket.id,
        occurred_at=at,
        rule=rule.name,
        trigger=kind,
        metric=event.metric,
        cycle=event.cycle,
        changes=changes,
    )
    done = [f"{c.field} {c.old or 'none'} -> {c.new or 'none'}" for c in changes]
    done += [f"notified {', '.join(n.recipients)}" for n in notices]
    reason = f"rule {rule.name!r} escalates the {what}: " + "; ".join(done + notes or ["nothing to change"])
    return Escalation(rule=rule.name, ticket=current, events=(escalated, *notices), reason=reason)


def _resolve(names: tuple[str, ...], ticket: Ticket) -> tuple[tuple[str, ...], list[str]]:
    """Recipients as ``user:<id>``/``team:<id>`` (deduplicated, in order) and the names with no one."""
    out: list[str] = []
    skipped: list[str] = []
    for name in names:
        if name == "assignee":
            resolved = None if ticket.assignee is None else f"user:{ticket.assignee}"
        elif name == "team":
            resolved = None if ticket.team is None else f"team:{ticket.team}"
        else:
            resolved = name
        if resolved is None:
            skipped.append(name)
        elif resolved not in out:
            out.append(resolved)
    return tuple(out), skipped


def _values(rule: EscalationRule, ticket: Ticket, event: SlaEvent, kind: TriggerKind) -> dict[str, str]:
    """The placeholder values: plain strings, so rendering cannot reach attributes or code."""
    return {
        "assignee": ticket.assignee or "",
        "customer_id": ticket.customer_id,
        "due_at": "" if event.due_at is None else event.due_at.isoformat(timespec="minutes"),
        "kind": kind.value,
        "metric": event.metric.value.replace("_", " "),
        "policy": event.policy,
        "priority": ticket.priority.value,
        "rule": rule.name,
        "subject": ticket.subject,
        "team": ticket.team or "",
        "ticket_id": ticket.id,
    }
