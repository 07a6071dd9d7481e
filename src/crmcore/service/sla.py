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

import contextlib
import enum
import gc
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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

    def explain(self, zone: str | tzinfo | None = None) -> str:
        """A sentence for people: state, time used of the target, and what was not counted.

        Times are shown in ``zone`` (a zone name or tzinfo; default UTC, as stored), e.g. the
        calendar's zone for agents: ``status.explain(policy.calendar.timezone)``.
        """
        shown = _zone(zone)
        used = f"{_fmt(self.elapsed)} of {_fmt(self.target)} business time used"
        parts = [f"{self.metric.value.replace('_', ' ')}: {self.state.value.replace('_', ' ')}", used]
        if self.state is SlaState.BREACHED and self.due_at is not None:
            parts.append(f"due {self.due_at.astimezone(shown).isoformat(timespec='minutes')}")
        elif self.state in (SlaState.ON_TRACK, SlaState.WARNING) and self.due_at is not None:
            due = self.due_at.astimezone(shown).isoformat(timespec="minutes")
            parts.append(f"{_fmt(self.remaining)} left, due {due}")
        if self.paused:
            total = sum((p.end - p.start for p in self.paused), timedelta(0))
            names = sorted({p.status for p in self.paused})
            parts.append(f"not counted: {_fmt(total)} (wall clock) in {', '.join(names)}")
        return "; ".join(parts)


def _zone(zone: str | tzinfo | None) -> tzinfo:
    if zone is None:
        return UTC
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError("zone", f"{zone!r} is not a time zone name such as 'Europe/Berlin'") from None


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
        pause_gc: bool = False,
    ) -> list[SlaReport]:
        """`evaluate` for many tickets at one ``now`` (a queue view, a timer run, a report).

        ``customers`` maps customer ids to customers for policies whose conditions use them.
        Shares the work that depends only on ``now`` and the policies, so it is the fast way to
        evaluate thousands of tickets; explanations are left out unless asked for.

        ``pause_gc=True`` pauses Python's cyclic garbage collector during the loop (it is
        process-wide, so it is the host's choice): a big batch keeps a few new objects per
        ticket alive, which sets off full collections over the whole heap (a quarter of a
        100,000-ticket run); the replay builds no reference cycles, so nothing is lost.

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
        with _no_cycle_collection(pause_gc):
            for ticket in tickets:
                name, version = ticket.sla_policy, ticket.sla_version
                policy: SlaPolicy | None = None
                if version is not None and name is not None:
                    context = contexts.get((name, version))
                    if context is None:
                        policy = self.get(name, version)
                else:
                    policy = self.match(ticket, None if lookup is None else lookup(ticket.customer_id))
                    context = None if policy is None else contexts.get(policy.key)
                if ticket.created_at is None:
                    raise ValidationError(
                        f"tickets[{len(reports)}].created_at",
                        "is not set: store the ticket or give it a creation time",
                    )
                if context is None:
                    if policy is None:
                        reports.append(SlaReport(ticket_id=ticket.id, at=at, policy=None, version=None))
                        continue
                    context = contexts[policy.key] = _Context(policy, statuses, n, at, explain)
                reports.append(_replay(context, ticket))
        return reports


@contextlib.contextmanager
def _no_cycle_collection(pause: bool) -> Iterator[None]:
    """The cyclic garbage collector paused (if it runs) while a bulk run builds its reports.

    The reports keep about four new objects per ticket alive, so a run over 100,000 tickets sets
    off full collections that traverse every live object of the host process: a quarter to a third
    of the run. The replay builds no reference cycles, so reference counting frees all it drops; the
    collector resumes at the end, with nothing lost. Only a collector that was on is turned back on.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    return _replay(_Context(policy, current_statuses(), _us(at), at, explain), ticket)


_Goal = tuple[SlaMetric, int, int | None, timedelta]
"""A target compiled for replay: metric, goal and warning in microseconds, the target duration."""

_MAX_MEMO = 100_000
"""Due and warning times, and durations, remembered per policy in one bulk evaluation (some 10 MB each)."""

_Run = tuple[int, int, int, int]
"""``[a, b)`` spent in a running status, and the calendar positions of ``a`` and ``b``."""

_Period = tuple[int, int, str, int]
"""``[a, b)`` spent in status ``name`` of code ``code`` (0 runs, 1 pauses, 2 solved): for explanations."""

# Enum members as module constants for the per-ticket code: reading one off its class costs ~10x more.
_ON_TRACK, _WARNING, _PAUSED, _BREACHED, _MET = (
    SlaState.ON_TRACK,
    SlaState.WARNING,
    SlaState.PAUSED,
    SlaState.BREACHED,
    SlaState.MET,
)
_CUSTOMER, _AGENT = AuthorRole.CUSTOMER, AuthorRole.AGENT


class _Context:
    """What the replays of one policy at one ``now`` share: codes, calendar, positions, targets."""

    def __init__(self, policy: SlaPolicy, statuses: StatusSet, now: int, at: datetime, explain: bool) -> None:
        paused = policy.paused(statuses)
        self.policy = policy
        self.name, self.version = policy.key
        self.codes = {
            s.name: 2 if s.kind.is_solved else 1 if s.name in paused else 0 for s in statuses.statuses
        }
        self.statuses = statuses
        self.now = now
        self.at = at
        self.explain = explain
        self.engine = engine = policy.calendar._engine
        self.position: Callable[[int], int] = engine.position
        self.moments: dict[int, datetime] = {}  # see _moment
        self.durations: dict[int, timedelta] = {}  # elapsed times, shared like the moments
        self.zone: tzinfo = UTC  # results in UTC: local times in a DST fold never compare equal across zones
        self.position_now = engine.position(now)
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


def _refuse(statuses: StatusSet, name: str) -> NoReturn:
    statuses.get(name)  # raises, naming the valid statuses
    raise AssertionError(f"{name!r} has no code")  # pragma: no cover


def _replay(context: _Context, ticket: Ticket) -> SlaReport:
    """``ticket``'s report: its history as integer microseconds, replayed against the context's policy.

    One function with local variables, as it runs once per ticket in bulk evaluations.
    """
    now = context.now
    codes = context.codes
    explain = context.explain
    assert ticket.created_at is not None
    created = (ticket.created_at - _EPOCH) // _US
    if created > now:
        created = now
    history = ticket.status_history
    status = history[0].from_status if history else ticket.status
    code = codes.get(status)
    if code is None:
        _refuse(context.statuses, status)
    solves: list[int] = [created] if code == 2 else []
    position = context.position
    position_now = context.position_now
    runs: list[_Run] = []  # the stretches in running statuses, in order
    reached, reached_at = -1, 0  # where the last run ended, and its position
    periods: list[_Period] = []  # every stretch, only kept to explain
    start = created
    for change in history:
        t = (change.at - _EPOCH) // _US
        if t > now:
            break
        if t < start:
            t = start
        before = code
        if t > start:
            if before == 0:
                at = reached_at if start == reached else position(start)
                reached, reached_at = t, position_now if t == now else position(t)
                runs.append((start, t, at, reached_at))
            if explain:
                periods.append((start, t, status, before))
        status = change.to_status
        code = codes.get(status)
        if code is None:
            _refuse(context.statuses, status)
        if code == 2 and before != 2:
            solves.append(t)
        start = t
    if code == 0 and start < now:
        runs.append((start, now, reached_at if start == reached else position(start), position_now))
    if explain:
        periods.append((start, now, status, code))
    first_target, next_target, resolution_target = context.targets[ticket.priority]
    zone = context.zone
    memo: dict[int, int] = {now: position_now}
    explained = periods if explain else None
    created_at = _dt(created, zone)
    first_response = None
    first_response_at = ticket.first_response_at
    if first_response_at is not None:
        t = (first_response_at - _EPOCH) // _US
        if t <= now:
            first_response = t
    current: list[SlaStatus] = []
    earlier: tuple[SlaStatus, ...] = ()
    if first_target is not None:
        stop = first_response
        if solves and (stop is None or solves[0] < stop):
            stop = solves[0]
        current.append(_clock(context, runs, memo, code, explained, first_target, created, stop, created_at))
    if next_target is not None and first_response is not None:
        cycles = [
            _clock(context, runs, memo, code, explained, next_target, a, b, _dt(a, zone))
            for a, b in _reply_cycles(ticket, now, first_response, solves)
        ]
        if cycles:
            earlier = tuple(cycles[:-1])
            current.append(cycles[-1])
    if resolution_target is not None:
        stop = solves[-1] if code == 2 and solves else None
        current.append(
            _clock(context, runs, memo, code, explained, resolution_target, created, stop, created_at)
        )
    return _new_report(ticket.id, context.at, context.name, context.version, tuple(current), earlier)


def _reply_cycles(
    ticket: Ticket, now: int, first_response: int, solves: list[int]
) -> list[tuple[int, int | None]]:
    """(start, stop) of each next-response cycle up to now; stop None while it waits."""
    cycles: list[tuple[int, int | None]] = []
    waiting: int | None = None
    comments = [((c.at - _EPOCH) // _US, c.role) for c in ticket.comments if c.public]
    if len(comments) > 1:
        comments.sort(key=_when)
    for t, role in comments:
        if t > now:
            break
        if t <= first_response:
            continue
        if waiting is not None:
            solve = next((s for s in solves if waiting < s <= t), None)
            if solve is not None:
                cycles.append((waiting, solve))
                waiting = None
        if role is _CUSTOMER and waiting is None:
            waiting = t
        elif role is _AGENT and waiting is not None:
            cycles.append((waiting, t))
            waiting = None
    if waiting is not None:
        solve = next((s for s in solves if s > waiting), None)
        cycles.append((waiting, solve))
    return cycles


_when = operator.itemgetter(0)


def _clock(
    context: _Context,
    runs: list[_Run],
    memo: dict[int, int],
    current: int,
    periods: list[_Period] | None,
    target: _Goal,
    start: int,
    stop: int | None,
    started_at: datetime,
) -> SlaStatus:
    """One target's clock from ``start`` until ``stop`` (None: still going), as of the context's now.

    ``runs`` are the ticket's running stretches with their positions, ``memo`` positions already
    measured, ``current`` the code of the ticket's status now; ``periods`` every stretch when
    explaining, else None.
    """
    now = context.now
    end = now if stop is None or stop > now else stop
    metric, goal, warn, within = target
    elapsed = 0
    due = warned = None  # the calendar positions where the target and the warning are reached
    for a, b, pa, pb in runs:
        if b <= start or a >= end:
            continue
        if a < start:
            found = memo.get(start)
            if found is None:
                found = memo[start] = context.position(start)
            pa = found
        if b > end:
            found = memo.get(end)
            if found is None:
                found = memo[end] = context.position(end)
            pb = found
        piece = pb - pa
        if due is None and elapsed + piece >= goal:
            due = pa + goal - elapsed
        if warn is not None and warned is None and elapsed + piece >= warn:
            warned = pa + warn - elapsed
        elapsed += piece
    clock_runs = stop is None and current == 0
    stopped = stop is not None and stop <= now
    if clock_runs or stopped:
        if clock_runs:
            base = context.position_now
        else:
            found = memo.get(end)
            base = memo[end] = context.position(end) if found is None else found
        if due is None:
            due = base + goal - elapsed
        if warn is not None and warned is None:
            warned = base + warn - elapsed
    if stopped:
        state = _MET if elapsed <= goal else _BREACHED
    elif elapsed >= goal:
        state = _BREACHED
    elif not clock_runs:
        state = _PAUSED
    elif warn is not None and elapsed >= warn:
        state = _WARNING
    else:
        state = _ON_TRACK
    moments = context.moments
    due_at = warning_at = None
    if due is not None:
        due_at = moments.get(due)
        if due_at is None:
            due_at = _moment(context, due)
    if warned is not None:
        warning_at = moments.get(warned)
        if warning_at is None:
            warning_at = _moment(context, warned)
    counted: tuple[Span, ...] = ()
    paused: tuple[PausedSpan, ...] = ()
    if periods is not None:
        counted, paused = _explanation(context, periods, start, end)
    durations = context.durations
    used = durations.get(elapsed)
    if used is None:
        if len(durations) >= _MAX_MEMO:
            durations.clear()
        used = durations[elapsed] = elapsed * _US
    return _new_status(
        metric,
        within,
        state,
        started_at,
        _dt(end, context.zone) if stopped else None,
        due_at,
        warning_at,
        used,
        within - used,
        counted,
        paused,
    )


def _moment(context: _Context, position: int) -> datetime | None:
    """The instant the calendar reaches ``position``, memoized per context: tickets opened while the
    team is off duty share their start positions, hence their due and warning times."""
    found = context.engine.moment(position)
    if found is None:
        return None
    moments = context.moments
    if len(moments) >= _MAX_MEMO:
        moments.clear()
    moment = moments[position] = _dt(found, context.zone)
    return moment


def _explanation(
    context: _Context, periods: list[_Period], start: int, end: int
) -> tuple[tuple[Span, ...], tuple[PausedSpan, ...]]:
    """The business intervals counted in ``[start, end)`` and the stretches paused in it."""
    engine, zone = context.engine, context.zone
    running: list[tuple[int, int]] = []
    paused: list[tuple[int, int, str]] = []
    for a, b, name, code in periods:
        if b <= start or a >= end:
            continue
        if code == 0:
            running.append((max(a, start), min(b, end)))
        elif code == 1:
            paused.append((max(a, start), min(b, end), name))
    return (
        tuple(Span(start=_dt(x, zone), end=_dt(y, zone)) for a, b in running for x, y in engine.pieces(a, b)),
        tuple(PausedSpan(start=_dt(a, zone), end=_dt(b, zone), status=n) for a, b, n in paused),
    )


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...]:
    """The slot setters of frozen attrs class ``cls``, for a private constructor without keyword parsing.

    Only for classes whose ``__init__`` just stores its arguments: checked at import, so a field
    added later (or a validator, converter or post-init) fails loudly instead of going unset.
    """
    fields = attrs.fields(cls)
    if (
        tuple(f.name for f in fields) != names
        or any(f.validator is not None or f.converter is not None for f in fields)
        or hasattr(cls, "__attrs_post_init__")
    ):
        raise AssertionError(f"{cls.__name__} changed: update its fast constructor in sla.py")
    return tuple(cls.__dict__[name].__set__ for name in names)


(
    _set_metric,
    _set_target,
    _set_state,
    _set_started_at,
    _set_stopped_at,
    _set_due_at,
    _set_warning_at,
    _set_elapsed,
    _set_remaining,
    _set_counted,
    _set_paused,
) = _setters(
    SlaStatus,
    (
        "metric",
        "target",
        "state",
        "started_at",
        "stopped_at",
        "due_at",
        "warning_at",
        "elapsed",
        "remaining",
        "counted",
        "paused",
    ),
)
_set_ticket_id, _set_at, _set_policy, _set_version, _set_statuses, _set_history = _setters(
    SlaReport, ("ticket_id", "at", "policy", "version", "statuses", "history")
)


def _new_status(
    metric: SlaMetric,
    target: timedelta,
    state: SlaState,
    started_at: datetime,
    stopped_at: datetime | None,
    due_at: datetime | None,
    warning_at: datetime | None,
    elapsed: timedelta,
    remaining: timedelta,
    counted: tuple[Span, ...],
    paused: tuple[PausedSpan, ...],
) -> SlaStatus:
    """``SlaStatus(...)`` from positional arguments at half the cost (bulk runs build 100,000s)."""
    status: SlaStatus = object.__new__(SlaStatus)
    _set_metric(status, metric)
    _set_target(status, target)
    _set_state(status, state)
    _set_started_at(status, started_at)
    _set_stopped_at(status, stopped_at)
    _set_due_at(status, due_at)
    _set_warning_at(status, warning_at)
    _set_elapsed(status, elapsed)
    _set_remaining(status, remaining)
    _set_counted(status, counted)
    _set_paused(status, paused)
    return status


def _new_report(
    ticket_id: str,
    at: datetime,
    policy: str,
    version: int,
    statuses: tuple[SlaStatus, ...],
    history: tuple[SlaStatus, ...],
) -> SlaReport:
    """``SlaReport(...)`` from positional arguments, as `_new_status`."""
    report: SlaReport = object.__new__(SlaReport)
    _set_ticket_id(report, ticket_id)
    _set_at(report, at)
    _set_policy(report, policy)
    _set_version(report, version)
    _set_statuses(report, statuses)
    _set_history(report, history)
    return report


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
