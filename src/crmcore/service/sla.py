"""SLA policies: targets per ticket, measured in business time, recomputed from the ticket's history.

An `SlaPolicy` applies to tickets matching its condition (first match wins in `SlaPolicies`) and
sets targets for first response, next response and resolution, per priority. `SlaPolicies.evaluate`
returns an `SlaReport`: per target its state, due time, business time used and left, and the
business intervals counted and the paused intervals not counted, so an agent can see why a ticket
is late. Nothing is accumulated: every evaluation replays the status history and comments.

The rules, stated once (docs/sla.md explains them with examples):

- A clock runs while the ticket is in a status that is neither a pause status of the policy nor
  solved/closed; it counts only the policy calendar's business time. Pauses are therefore measured
  in the same business time: a pause never gives wall-clock time back.
- First response: from ``created_at`` to the first public agent comment, or to the first solve.
- Next response: after the first response, each public customer comment starts a cycle that the
  next public agent comment (or a solve) ends.
- Resolution: from ``created_at`` until the ticket is solved; a reopen continues the same clock.
- A clock that reaches its target while running is breached at that moment; one that stops at or
  before its target is met.
- Priority: targets are those of the ticket's current priority, measured from each clock's start.
  Raising the priority mid-ticket therefore shortens every running target retroactively (it may
  breach at once); lowering it lengthens them. The policy itself is pinned when first applied.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

import attrs

from crmcore.conditions import Condition, FieldDef, FieldSet, FieldType, check_condition, evaluate
from crmcore.customers.customer import Customer
from crmcore.errors import FieldError, RuleError, ValidationError
from crmcore.events import DomainEvent
from crmcore.service.calendar import BusinessCalendar
from crmcore.service.ticket import (
    TICKET_FIELDS,
    AuthorRole,
    StatusKind,
    StatusSet,
    Ticket,
    TicketPriority,
    current_statuses,
)
from crmcore.validation import (
    checked,
    instance_of,
    one_of,
    optional,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
)

__all__ = [
    "PausedSpan",
    "SLA_FIELDS",
    "SlaBreached",
    "SlaEvent",
    "SlaMet",
    "SlaMetric",
    "SlaPolicies",
    "SlaPolicy",
    "SlaReport",
    "SlaState",
    "SlaStatus",
    "SlaSubject",
    "SlaTarget",
    "SlaWarning",
    "Span",
    "evaluate_policy",
    "event_key",
    "fired_keys",
    "next_check",
    "sla_events",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MINUTE = 60_000_000


class SlaMetric(enum.Enum):
    """What an SLA target measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaState(enum.Enum):
    """Where a target stands.

    ``on_track`` and ``warning`` run, ``paused`` waits, ``met`` and ``breached`` are final for the
    cycle; a running clock past its target is ``breached`` already.
    """

    ON_TRACK = "on_track"
    WARNING = "warning"
    PAUSED = "paused"
    BREACHED = "breached"
    MET = "met"


def _minutes(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10 * 365 * 24 * 60:
        raise ValidationError(path, f"must be a whole number of minutes from 1 to ten years, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class SlaTarget:
    """``metric`` must be reached within ``minutes`` of business time, for ``priority`` (None: any)."""

    metric: SlaMetric = checked(one_of(SlaMetric))
    minutes: int = checked(_minutes)
    priority: TicketPriority | None = checked(optional(one_of(TicketPriority)), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    @property
    def within(self) -> timedelta:
        """The target as a duration of business time."""
        return timedelta(minutes=self.minutes)

    @classmethod
    def hours(
        cls, metric: SlaMetric | str, hours: int, priority: TicketPriority | str | None = None
    ) -> SlaTarget:
        """A target of whole business ``hours`` (a shorthand for ``minutes=hours * 60``)."""
        return cls(
            metric=SlaMetric(metric),
            minutes=hours * 60,
            priority=None if priority is None else TicketPriority(priority),
        )


@attrs.frozen(kw_only=True)
class SlaSubject:
    """What a policy condition sees: the ticket and, when the host passes it, its customer."""

    ticket: Ticket
    customer: Customer | None = None


def _ticket_field(fd: FieldDef) -> FieldDef:
    get = fd.get
    return attrs.evolve(fd, get=lambda s: get(s.ticket))


def _customer_getter(name: str, default: Any) -> Any:
    def get(s: SlaSubject) -> Any:
        return default if s.customer is None else getattr(s.customer, name)

    return get


SLA_FIELDS = FieldSet.of(
    "Ticket",
    [
        *(_ticket_field(fd) for fd in TICKET_FIELDS.fields.values()),
        FieldDef("customer_tags", FieldType.TEXT_LIST, _customer_getter("tags", ()), nullable=False),
        FieldDef(
            "customer_kind", FieldType.TEXT, lambda s: None if s.customer is None else s.customer.kind.value
        ),
        FieldDef(
            "customer_lifecycle_stage",
            FieldType.TEXT,
            lambda s: None if s.customer is None else s.customer.lifecycle_stage.value,
        ),
    ],
    json={
        "custom": lambda s: s.ticket.custom,
        "customer_custom": lambda s: {} if s.customer is None else s.customer.custom,
    },
)
"""Fields SLA policy conditions can use: every ticket field, plus ``customer_tags``, ``customer_kind``,
``customer_lifecycle_stage`` and ``customer_custom.<key>`` (empty when no customer is passed)."""


def _policy_name(value: Any, path: str) -> str:
    name: str = text(max_length=100, required=True)(value, path)
    return name


def _version(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(path, f"must be a positive integer, got {value!r}")
    return value


def _percent(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
        raise ValidationError(path, f"must be a whole percentage from 1 to 99 (or None), got {value!r}")
    return value


def _status_names(value: Any, path: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names: tuple[str, ...] = tuple_of(text(max_length=40, required=True))(value, path)
    return names


@attrs.frozen(kw_only=True)
class SlaPolicy:
    """Targets for the tickets that match ``condition`` (None: every ticket), in ``calendar``'s business time.

    ``pause_statuses`` stop every clock while a ticket sits in them (None: the statuses of kind
    ``waiting`` in the status set in effect). ``warning_percent``: a warning once that share of a
    target is used (None: no warnings). ``version`` tells revisions of one policy apart: a ticket
    keeps the version it was pinned to (`SlaPolicies.apply`) until the host re-applies.

    Raises:
        ValidationError: when built: no targets, two targets for one metric and priority, a
            condition on unknown fields, pause statuses that are not in the status set in effect
            or that are solved statuses.
    """

    name: str = checked(_policy_name)
    targets: tuple[SlaTarget, ...] = checked(tuple_of(instance_of(SlaTarget)))
    version: int = checked(_version, default=1)
    condition: Condition | None = checked(optional(instance_of(Condition)), default=None)
    calendar: BusinessCalendar = checked(instance_of(BusinessCalendar), factory=BusinessCalendar.always_open)
    pause_statuses: tuple[str, ...] | None = checked(_status_names, default=None)
    warning_percent: int | None = checked(_percent, default=80)
    description: str = checked(text(max_length=1000), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        if not self.targets:
            errors.append(FieldError("targets", "must hold at least one target"))
        seen: set[tuple[SlaMetric, TicketPriority | None]] = set()
        for i, target in enumerate(self.targets):
            key = (target.metric, target.priority)
            if key in seen:
                which = "any priority" if target.priority is None else f"priority {target.priority.value!r}"
                errors.append(
                    FieldError(f"targets[{i}]", f"repeats the {target.metric.value} target for {which}")
                )
            seen.add(key)
        if self.condition is not None:
            try:
                check_condition(self.condition, SLA_FIELDS)
            except ValidationError as exc:
                errors.extend(FieldError(f"condition.{e.path}".rstrip("."), e.reason) for e in exc.errors)
        statuses = current_statuses()
        for i, name in enumerate(self.pause_statuses or ()):
            if name not in statuses.names:
                errors.append(
                    FieldError(
                        f"pause_statuses[{i}]",
                        f"{name!r} is not one of {', '.join(map(repr, statuses.names))}",
                    )
                )
            elif statuses.kind(name).is_solved:
                errors.append(
                    FieldError(f"pause_statuses[{i}]", f"{name!r} is a solved status: solving stops clocks")
                )
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def key(self) -> tuple[str, int]:
        """``(name, version)``: what a ticket is pinned to."""
        return (self.name, self.version)

    def target_for(self, metric: SlaMetric, priority: TicketPriority) -> SlaTarget | None:
        """The target for ``metric`` at ``priority``: the one for that priority, else the one for any."""
        fallback = None
        for target in self.targets:
            if target.metric is metric:
                if target.priority is priority:
                    return target
                if target.priority is None:
                    fallback = target
        return fallback

    def paused(self, statuses: StatusSet) -> frozenset[str]:
        """The status names that pause this policy's clocks under ``statuses``."""
        if self.pause_statuses is not None:
            return frozenset(self.pause_statuses)
        return frozenset(s.name for s in statuses.statuses if s.kind is StatusKind.WAITING)

    def matches(self, ticket: Ticket, customer: Customer | None = None) -> bool:
        """Whether this policy's condition holds for ``ticket`` (and its ``customer``)."""
        if self.condition is None:
            return True
        return evaluate(self.condition, SlaSubject(ticket=ticket, customer=customer), SLA_FIELDS)


@attrs.frozen(kw_only=True)
class Span:
    """A stretch of time ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        """Its wall-clock length."""
        return self.end - self.start


@attrs.frozen(kw_only=True)
class PausedSpan:
    """A stretch of wall-clock time the ticket sat in pause status ``status``; not counted."""

    start: datetime
    end: datetime
    status: str


@attrs.frozen(kw_only=True)
class SlaStatus:
    """One target of one ticket at one moment: where it stands and why.

    ``elapsed`` is the business time counted, ``remaining`` the target minus that (negative when
    overdue). ``due_at`` is when the target is (or was) reached if the clock keeps running: None
    while paused. ``warning_at`` likewise for the warning threshold. ``counted`` are the business
    intervals that make up ``elapsed``; ``paused`` the wall-clock stretches in pause statuses.
    """

    metric: SlaMetric
    target: timedelta
    state: SlaState
    started_at: datetime
    stopped_at: datetime | None
    due_at: datetime | None
    warning_at: datetime | None
    elapsed: timedelta
    remaining: timedelta
    counted: tuple[Span, ...] = ()
    paused: tuple[PausedSpan, ...] = ()

    @property
    def cycle(self) -> str:
        """A key naming this clock run: the metric and its start (next response has several)."""
        return f"{self.metric.value}@{self.started_at.astimezone(UTC).isoformat()}"

    def explain(self) -> str:
        """A sentence for people: state, time used of the target, and what was not counted."""
        used = f"{_fmt(self.elapsed)} of {_fmt(self.target)} business time used"
        parts = [f"{self.metric.value.replace('_', ' ')}: {self.state.value.replace('_', ' ')}", used]
        if self.state is SlaState.BREACHED and self.due_at is not None:
            parts.append(f"due {self.due_at.isoformat(timespec='minutes')}")
        elif self.state in (SlaState.ON_TRACK, SlaState.WARNING) and self.due_at is not None:
            parts.append(f"{_fmt(self.remaining)} left, due {self.due_at.isoformat(timespec='minutes')}")
        if self.paused:
            total = sum((p.end - p.start for p in self.paused), timedelta(0))
            names = sorted({p.status for p in self.paused})
            parts.append(f"not counted: {_fmt(total)} (wall clock) in {', '.join(names)}")
        return "; ".join(parts)


def _fmt(value: timedelta) -> str:
    minutes = abs(value) // timedelta(minutes=1)
    sign = "-" if value < timedelta(0) else ""
    hours, mins = divmod(minutes, 60)
    return f"{sign}{hours}h {mins:02d}m" if hours else f"{sign}{mins}m"


@attrs.frozen(kw_only=True)
class SlaReport:
    """Every SLA target of one ticket at ``at``: ``statuses`` holds the current clock of each target
    that has started, ``history`` the finished earlier next-response cycles."""

    ticket_id: str
    at: datetime
    policy: str | None
    version: int | None
    statuses: tuple[SlaStatus, ...] = ()
    history: tuple[SlaStatus, ...] = ()

    def status(self, metric: SlaMetric | str) -> SlaStatus | None:
        """The current status of ``metric``, None if it has no target or has not started."""
        wanted = SlaMetric(metric)
        return next((s for s in self.statuses if s.metric is wanted), None)

    @property
    def breached(self) -> bool:
        """Whether any current target is breached."""
        return any(s.state is SlaState.BREACHED for s in self.statuses)

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest due time among the running targets (None if none is running)."""
        due = [
            s.due_at
            for s in self.statuses
            if s.state in (SlaState.ON_TRACK, SlaState.WARNING) and s.due_at is not None
        ]
        return min(due, default=None)


@attrs.frozen(kw_only=True)
class SlaEvent(DomainEvent):
    """Base of the SLA events: which ticket (``aggregate_id``), target, cycle and policy."""

    metric: SlaMetric
    cycle: str
    policy: str
    version: int
    due_at: datetime | None = None


@attrs.frozen(kw_only=True)
class SlaWarning(SlaEvent):
    """A running target used its warning share at ``occurred_at``."""

    event_type: ClassVar[str] = "ticket.sla_warning"


@attrs.frozen(kw_only=True)
class SlaBreached(SlaEvent):
    """A target was breached at ``occurred_at`` (its due time)."""

    event_type: ClassVar[str] = "ticket.sla_breached"


@attrs.frozen(kw_only=True)
class SlaMet(SlaEvent):
    """A target was met at ``occurred_at``, with ``remaining`` business time to spare."""

    event_type: ClassVar[str] = "ticket.sla_met"
    remaining: timedelta = timedelta(0)


def _policy_list(value: Any, path: str) -> tuple[SlaPolicy, ...]:
    policies: tuple[SlaPolicy, ...] = tuple_of(instance_of(SlaPolicy))(value, path)
    return policies


@attrs.frozen(kw_only=True)
class SlaPolicies:
    """The SLA policies in force, in order (first match wins), plus ``retired`` versions that tickets
    pinned earlier still use.

    Raises:
        ValidationError: when built: two current policies with one name, or one (name, version)
            twice across current and retired.
    """

    policies: tuple[SlaPolicy, ...] = checked(_policy_list)
    retired: tuple[SlaPolicy, ...] = checked(_policy_list, default=())
    _by_key: dict[tuple[str, int], SlaPolicy] = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        names: set[str] = set()
        for i, policy in enumerate(self.policies):
            if policy.name in names:
                errors.append(FieldError(f"policies[{i}].name", f"{policy.name!r} is in force twice"))
            names.add(policy.name)
        by_key: dict[tuple[str, int], SlaPolicy] = {}
        for path, group in (("policies", self.policies), ("retired", self.retired)):
            for i, policy in enumerate(group):
                if policy.key in by_key and by_key[policy.key] != policy:
                    errors.append(
                        FieldError(
                            f"{path}[{i}]",
                            f"{policy.name!r} version {policy.version} is defined twice, differently",
                        )
                    )
                by_key.setdefault(policy.key, policy)
        if errors:
            raise ValidationError.from_errors(errors)
        object.__setattr__(self, "_by_key", by_key)

    def get(self, name: str, version: int) -> SlaPolicy:
        """Policy ``name`` at ``version``.

        Raises:
            RuleError: no such version is in force or retired (keep old versions in ``retired``).
        """
        found = self._by_key.get((name, version))
        if found is None:
            raise RuleError(
                f"SLA policy {name!r} version {version} is neither in force nor retired: "
                "keep the versions tickets are pinned to in SlaPolicies.retired"
            )
        return found

    def match(self, ticket: Ticket, customer: Customer | None = None) -> SlaPolicy | None:
        """The first policy in force whose condition ``ticket`` meets, None if none does."""
        return next((p for p in self.policies if p.matches(ticket, customer)), None)

    def policy_for(self, ticket: Ticket, customer: Customer | None = None) -> SlaPolicy | None:
        """The policy ``ticket`` is pinned to, or (not pinned) the one it matches now."""
        if ticket.sla_policy is not None and ticket.sla_version is not None:
            return self.get(ticket.sla_policy, ticket.sla_version)
        return self.match(ticket, customer)

    def apply(self, ticket: Ticket, customer: Customer | None = None, *, reapply: bool = False) -> Ticket:
        """``ticket`` pinned to the policy it matches (a new ticket; unchanged if pinned already).

        ``reapply=True`` matches again against the policies in force, e.g. after the ticket changed
        or a policy got a new version; a ticket that matches nothing is unpinned.
        """
        if ticket.sla_policy is not None and not reapply:
            return ticket
        policy = self.match(ticket, customer)
        name, version = (None, None) if policy is None else policy.key
        if (name, version) == (ticket.sla_policy, ticket.sla_version):
            return ticket
        return attrs.evolve(ticket, sla_policy=name, sla_version=version)

    def evaluate(
        self,
        ticket: Ticket,
        now: datetime,
        customer: Customer | None = None,
        *,
        explain: bool = True,
    ) -> SlaReport:
        """Every target of ``ticket`` as of ``now``, replayed from its history (later changes ignored).

        ``explain=False`` leaves out the counted and paused intervals (faster, for bulk runs).

        Raises:
            ValidationError: ``now`` is naive, or the ticket has no ``created_at`` (store it first).
            RuleError: the ticket is pinned to a policy version that is not kept.
        """
        policy = self.policy_for(ticket, customer)
        return evaluate_policy(policy, ticket, now, explain=explain)

    def evaluate_many(
        self,
        tickets: Iterable[Ticket],
        now: datetime,
        customers: Mapping[str, Customer] | None = None,
        *,
        explain: bool = False,
    ) -> list[SlaReport]:
        """`evaluate` for many tickets at one ``now`` (a queue view, a timer run, a report).

        ``customers`` maps customer ids to customers for policies whose conditions use them.
        Shares the work that depends only on ``now`` and the policies, so it is the fast way to
        evaluate thousands of tickets; explanations are left out unless asked for.

        Raises:
            ValidationError: ``now`` is naive, or a ticket has no ``created_at``.
            RuleError: a ticket is pinned to a policy version that is not kept.
        """
        at = utc_datetime(now, "now")
        n = _us(at)
        statuses = current_statuses()
        contexts: dict[tuple[str, int], _Context] = {}
        reports: list[SlaReport] = []
        lookup = customers.get if customers is not None else None
        for ticket in tickets:
            if ticket.sla_version is not None and ticket.sla_policy is not None:
                policy: SlaPolicy | None = self.get(ticket.sla_policy, ticket.sla_version)
            else:
                policy = self.match(ticket, None if lookup is None else lookup(ticket.customer_id))
            if ticket.created_at is None:
                raise ValidationError(
                    f"tickets[{len(reports)}].created_at",
                    "is not set: store the ticket or give it a creation time",
                )
            if policy is None:
                reports.append(SlaReport(ticket_id=ticket.id, at=at, policy=None, version=None))
                continue
            context = contexts.get(policy.key)
            if context is None:
                context = contexts[policy.key] = _Context(policy, statuses, n, at, explain)
            reports.append(_Replay(context, ticket).report())
        return reports


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _US


def _dt(micros: int, zone: tzinfo = UTC) -> datetime:
    moment = _EPOCH + micros * _US
    return moment if zone is UTC else moment.astimezone(zone)


def evaluate_policy(
    policy: SlaPolicy | None, ticket: Ticket, now: datetime, *, explain: bool = True
) -> SlaReport:
    """`SlaPolicies.evaluate` for a known policy (None: a report without statuses)."""
    at = utc_datetime(now, "now")
    if ticket.created_at is None:
        raise ValidationError("created_at", "is not set: store the ticket or give it a creation time")
    if policy is None:
        return SlaReport(ticket_id=ticket.id, at=at, policy=None, version=None)
    return _Replay(_Context(policy, current_statuses(), _us(at), at, explain), ticket).report()


_Goal = tuple[SlaMetric, int, int | None, timedelta]
"""A target compiled for replay: metric, goal and warning in microseconds, the target duration."""


class _Context:
    """What the replays of one policy at one ``now`` share: codes, calendar, positions, targets."""

    def __init__(self, policy: SlaPolicy, statuses: StatusSet, now: int, at: datetime, explain: bool) -> None:
        paused = policy.paused(statuses)
        self.policy = policy
        self.codes = {
            s.name: 2 if s.kind.is_solved else 1 if s.name in paused else 0 for s in statuses.statuses
        }
        self.statuses = statuses
        self.now = now
        self.at = at
        self.explain = explain
        self.engine = policy.calendar._engine
        self.zone: tzinfo = policy.calendar.zone if explain else UTC
        self.position_now = self.engine.position(now)
        percent = policy.warning_percent
        self.targets: dict[TicketPriority, list[_Goal | None]] = {}
        for priority in TicketPriority:
            goals: list[_Goal | None] = []
            for metric in SlaMetric:
                target = policy.target_for(metric, priority)
                if target is None:
                    goals.append(None)
                    continue
                goal = target.minutes * _MINUTE
                warn = None if percent is None else goal * percent // 100
                goals.append((metric, goal, warn, target.within))
            self.targets[priority] = goals


class _Replay:
    """One ticket's history as integer microseconds, replayed against one policy."""

    def __init__(self, context: _Context, ticket: Ticket) -> None:
        self.context = context
        self.ticket = ticket
        now = self.now = context.now
        self.positions: dict[int, int] = {now: context.position_now}
        codes = context.codes
        assert ticket.created_at is not None
        created = _us(ticket.created_at)
        self.created = created if created < now else now
        history = ticket.status_history
        first = history[0].from_status if history else ticket.status
        # periods: (start, end, status, code) covering [created, now]
        periods: list[tuple[int, int, str, int]] = []
        start, status = self.created, first
        code = codes.get(status)
        if code is None:
            context.statuses.get(status)  # raises, naming the valid statuses
        self.solves: list[int] = [start] if code == 2 else []
        for change in history:
            t = _us(change.at)
            if t > now:
                break
            if t < start:
                t = start
            before = codes[status]
            if t > start:
                periods.append((start, t, status, before))
            start, status = t, change.to_status
            code = codes.get(status)
            if code is None:
                context.statuses.get(status)
            if code == 2 and before != 2:
                self.solves.append(t)
        periods.append((start, now, status, codes[status]))
        self.periods = periods
        self.current = periods[-1][3]

    def position(self, t: int) -> int:
        """Business time from the calendar index's origin to ``t`` (memoized per replay)."""
        found = self.positions.get(t)
        if found is None:
            found = self.positions[t] = self.context.engine.position(t)
        return found

    def report(self) -> SlaReport:
        ticket, context = self.ticket, self.context
        first_target, next_target, resolution_target = context.targets[ticket.priority]
        current: list[SlaStatus] = []
        history: list[SlaStatus] = []
        first_response = self._first_agent_reply()
        if first_target is not None:
            stop = first_response
            if self.solves and (stop is None or self.solves[0] < stop):
                stop = self.solves[0]
            current.append(self._status(first_target, self.created, stop))
        target = next_target
        if target is not None and first_response is not None:
            cycles = self._reply_cycles(first_response)
            statuses = [self._status(target, start, stop) for start, stop in cycles]
            if statuses:
                history.extend(statuses[:-1])
                current.append(statuses[-1])
        if resolution_target is not None:
            stop = self.solves[-1] if self.current == 2 and self.solves else None
            current.append(self._status(resolution_target, self.created, stop))
        policy = context.policy
        return SlaReport(
            ticket_id=ticket.id,
            at=context.at,
            policy=policy.name,
            version=policy.version,
            statuses=tuple(current),
            history=tuple(history),
        )

    def _first_agent_reply(self) -> int | None:
        first = self.ticket.first_response_at
        if first is not None:
            t = _us(first)
            return t if t <= self.now else None
        return None

    def _reply_cycles(self, first_response: int) -> list[tuple[int, int | None]]:
        """(start, stop) of each next-response cycle up to now; stop None while it waits."""
        cycles: list[tuple[int, int | None]] = []
        waiting: int | None = None
        comments = sorted(
            ((_us(c.at), c.role) for c in self.ticket.comments if c.public), key=lambda pair: pair[0]
        )
        for t, role in comments:
            if t > self.now:
                break
            if t <= first_response:
                continue
            if waiting is not None:
                solve = next((s for s in self.solves if waiting < s <= t), None)
                if solve is not None:
                    cycles.append((waiting, solve))
                    waiting = None
            if role is AuthorRole.CUSTOMER and waiting is None:
                waiting = t
            elif role is AuthorRole.AGENT and waiting is not None:
                cycles.append((waiting, t))
                waiting = None
        if waiting is not None:
            solve = next((s for s in self.solves if s > waiting), None)
            cycles.append((waiting, solve))
        return cycles

    def _status(self, target: _Goal, start: int, stop: int | None) -> SlaStatus:
        context = self.context
        engine = context.engine
        explain = context.explain
        now = self.now
        end = now if stop is None else min(stop, now)
        metric, goal, warn, within = target
        elapsed = 0
        due_at = warn_at = None
        running: list[tuple[int, int]] = []
        paused: list[tuple[int, int, str]] = []
        positions = self.positions
        for a, b, name, code in self.periods:
            if b <= start or a >= end:
                continue
            if code == 0:
                lo = a if a > start else start
                hi = b if b < end else end
                base = positions.get(lo)
                if base is None:
                    base = positions[lo] = engine.position(lo)
                top = positions.get(hi)
                if top is None:
                    top = positions[hi] = engine.position(hi)
                piece = top - base
                if due_at is None and elapsed + piece >= goal:
                    due_at = engine.moment(base + goal - elapsed)
                if warn is not None and warn_at is None and elapsed + piece >= warn:
                    warn_at = engine.moment(base + warn - elapsed)
                elapsed += piece
                if explain:
                    running.append((lo, hi))
            elif code == 1 and explain:
                paused.append((max(a, start), min(b, end), name))
        clock_runs = stop is None and self.current == 0
        stopped = stop is not None and stop <= now
        if clock_runs or stopped:
            base = self.position(now if clock_runs else end)
            if due_at is None:
                due_at = engine.moment(base + goal - elapsed)
            if warn is not None and warn_at is None:
                warn_at = engine.moment(base + warn - elapsed)
        if stopped:
            state = SlaState.MET if elapsed <= goal else SlaState.BREACHED
        elif elapsed >= goal:
            state = SlaState.BREACHED
        elif not clock_runs:
            state = SlaState.PAUSED
        elif warn is not None and elapsed >= warn:
            state = SlaState.WARNING
        else:
            state = SlaState.ON_TRACK
        zone = context.zone
        counted: tuple[Span, ...] = ()
        if explain:
            counted = tuple(
                Span(start=_dt(x, zone), end=_dt(y, zone)) for a, b in running for x, y in engine.pieces(a, b)
            )
        return SlaStatus(
            metric=metric,
            target=within,
            state=state,
            started_at=_dt(start, zone),
            stopped_at=_dt(end, zone) if stopped else None,
            due_at=None if due_at is None else _dt(due_at, zone),
            warning_at=None if warn_at is None else _dt(warn_at, zone),
            elapsed=elapsed * _US,
            remaining=(goal - elapsed) * _US,
            counted=counted,
            paused=tuple(PausedSpan(start=_dt(a, zone), end=_dt(b, zone), status=n) for a, b, n in paused),
        )


def _add(engine: Any, t: int, remaining: int) -> int | None:
    """``engine.add``, or None when the calendar never opens long enough again (nothing is ever due)."""
    try:
        result: int = engine.add(t, remaining)
    except ValidationError:
        return None
    return result


def _earliest(*times: int | None) -> int | None:
    present = [t for t in times if t is not None]
    return min(present, default=None)


def sla_events(report: SlaReport, fired: Iterable[str]) -> list[SlaEvent]:
    """The SLA events ``report`` implies that are not in ``fired`` (keys from `event_key`), oldest first.

    A warning or breach moment that passed while the clock ran gives its event (also if the
    clock has stopped since, so a late run still reports it); a target stopped in time gives
    `SlaMet`. Pure: the timer runner passes the keys it stored, so each event fires once.
    """
    if report.policy is None or report.version is None:
        return []
    done = set(fired)
    out: list[SlaEvent] = []
    for status in (*report.history, *report.statuses):
        common: dict[str, Any] = {
            "aggregate_id": report.ticket_id,
            "metric": status.metric,
            "cycle": status.cycle,
            "policy": report.policy,
            "version": report.version,
            "due_at": status.due_at,
        }
        limit = report.at if status.stopped_at is None else status.stopped_at
        if (
            status.warning_at is not None
            and status.warning_at <= limit
            and event_key(status, "warning") not in done
        ):
            out.append(SlaWarning(occurred_at=status.warning_at, **common))
        breached = status.state is SlaState.BREACHED and status.due_at is not None
        if breached and status.due_at is not None and event_key(status, "breached") not in done:
            out.append(SlaBreached(occurred_at=status.due_at, **common))
        met = status.state is SlaState.MET and status.stopped_at is not None
        if met and status.stopped_at is not None and event_key(status, "met") not in done:
            out.append(SlaMet(occurred_at=status.stopped_at, remaining=status.remaining, **common))
    out.sort(key=lambda e: e.occurred_at)
    return out


def event_key(status: SlaStatus | SlaEvent, kind: str) -> str:
    """The key under which the timer runner remembers that ``kind`` fired for this clock run."""
    return f"{status.cycle}:{kind}"


def next_check(report: SlaReport, fired: Iterable[str]) -> datetime | None:
    """When ``report``'s ticket next needs a look: its earliest future warning or due time not yet fired.

    None when no clock is running (paused, stopped or no policy): the host's next change to the
    ticket re-tracks it.
    """
    done = set(fired)
    moments: list[datetime] = []
    for status in report.statuses:
        if status.state not in (SlaState.ON_TRACK, SlaState.WARNING):
            continue
        warning = status.warning_at
        if warning is not None and warning > report.at and event_key(status, "warning") not in done:
            moments.append(warning)
        if status.due_at is not None and status.due_at > report.at:
            moments.append(status.due_at)
    return min(moments, default=None)


def fired_keys(events: Sequence[SlaEvent]) -> list[str]:
    """The keys `sla_events` checks, for the events given."""
    kinds = {SlaWarning: "warning", SlaBreached: "breached", SlaMet: "met"}
    return [f"{e.cycle}:{kinds[type(e)]}" for e in events]
