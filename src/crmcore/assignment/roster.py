"""Who can take work right now: members, their availability and capacity, and their open work.

A `Roster` is data the host builds for each routing (or batch): its users (`Member`) and the
open work each holds (``loads``, counted by the host or the shell from its store). The engine
reads it and never changes it; `Roster.with_assignment` gives the roster after one more item.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id
from crmcore.service.calendar import BusinessCalendar
from crmcore.validation import checked, instance_of, optional, run_checks, tuple_of, utc_datetime

__all__ = ["Member", "Roster", "SkipReason", "Skipped"]


class SkipReason(enum.Enum):
    """Why a member of a target was not chosen."""

    NOT_ON_ROSTER = "not_on_roster"
    INACTIVE = "inactive"
    OUT_OF_OFFICE = "out_of_office"
    OFF_HOURS = "off_hours"
    """Their business calendar is closed at ``now``."""
    AT_CAPACITY = "at_capacity"


@attrs.frozen(kw_only=True)
class Skipped:
    """A user passed over for one subject, and why (``detail`` says it in words)."""

    user: str
    reason: SkipReason
    detail: str


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(path, f"must be true or false, not {type(value).__name__}")
    return value


def _capacity(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValidationError(path, f"must be an integer from 0 to 1000000 or None (no limit), got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class Member:
    """A user who can be assigned work, with what decides whether they can take it now.

    A member is available when ``active``, not ``out_of_office``, not away (``now`` before
    ``away_until``), inside their ``calendar``'s business hours (when they have one) and below
    their ``capacity`` of open items (None: no limit).
    """

    user: str = checked(check_id)
    active: bool = checked(_flag, default=True)
    out_of_office: bool = checked(_flag, default=False)
    away_until: datetime | None = checked(optional(utc_datetime), default=None)
    """Out of office until this instant (exclusive); a period the host records ahead of time."""
    calendar: BusinessCalendar | None = checked(optional(instance_of(BusinessCalendar)), default=None)
    capacity: int | None = checked(_capacity, default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def unavailable(self, now: datetime) -> Skipped | None:
        """Why this member cannot take work at ``now`` regardless of load, or None if they can."""
        if not self.active:
            return Skipped(user=self.user, reason=SkipReason.INACTIVE, detail=f"{self.user!r} is inactive")
        if self.out_of_office:
            return Skipped(
                user=self.user, reason=SkipReason.OUT_OF_OFFICE, detail=f"{self.user!r} is out of office"
            )
        if self.away_until is not None and now < self.away_until:
            return Skipped(
                user=self.user,
                reason=SkipReason.OUT_OF_OFFICE,
                detail=f"{self.user!r} is out of office until {self.away_until.isoformat()}",
            )
        if self.calendar is not None and not self.calendar.is_open(now):
            return Skipped(
                user=self.user,
                reason=SkipReason.OFF_HOURS,
                detail=f"{self.user!r} is off hours ({self.calendar.timezone} calendar closed)",
            )
        return None


_LOOKAHEAD = timedelta(days=8)


def _member_window(member: Member, now: datetime) -> tuple[Skipped | None, datetime, datetime | None]:
    """(member.unavailable(now), and from when until when that answer holds: [start, end)).

    An end of None: the answer holds from ``start`` on. Lets a roster answer for later instants
    without reading the member's calendar again until its business hours open or close.
    """
    answer = member.unavailable(now)
    end: datetime | None = None
    if answer is not None and answer.reason is SkipReason.OUT_OF_OFFICE and not member.out_of_office:
        end = member.away_until
    elif member.active and not member.out_of_office and member.calendar is not None:
        calendar = member.calendar
        if answer is None:
            pieces = calendar.intervals(now, now + _LOOKAHEAD)
            end = pieces[0][1] if pieces else now
        else:
            try:
                end = calendar.next_open(now)
            except ValidationError:  # never opens again
                end = None
    return answer, now, end


def _loads(value: Any, path: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict of user id to open items, not {type(value).__name__}")
    errors: list[FieldError] = []
    for user, load in value.items():
        try:
            check_id(user, path)
        except ValidationError as exc:
            errors.extend(exc.errors)
        else:
            if isinstance(load, bool) or not isinstance(load, int) or load < 0:
                errors.append(FieldError(f"{path}.{user}", f"must be a non-negative integer, got {load!r}"))
    if errors:
        raise ValidationError.from_errors(errors)
    return dict(value)


_REMEMBERED = 1000
"""How many groups of members (queues) a roster remembers the availability of."""
_Window = tuple[Skipped | None, datetime, datetime | None]
"""An availability answer and the span [start, end) it holds for (end None: from start on)."""
_Group = tuple[tuple[str, ...], tuple[Skipped, ...], datetime, datetime | None]
"""A group's available members, the others, and the span their answers hold for."""


@attrs.frozen(kw_only=True)
class Roster:
    """The users who may be assigned work and the open work each holds (``loads``, default 0).

    A roster remembers for how long each availability answer holds (until a calendar opens or
    closes, until an absence ends), for members and for queues' groups of members, so routing
    many subjects reads a calendar once per change rather than once per subject.
    """

    members: tuple[Member, ...] = checked(tuple_of(instance_of(Member)), default=())
    loads: dict[str, int] = checked(_loads, factory=dict)
    _by_user: dict[str, Member] = attrs.field(init=False, repr=False, eq=False)
    _capacities: dict[str, int] = attrs.field(init=False, repr=False, eq=False)
    _windows: dict[str, _Window] = attrs.field(init=False, repr=False, eq=False)
    _groups: dict[tuple[str, ...], _Group] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        by_user: dict[str, Member] = {}
        errors: list[FieldError] = []
        for i, member in enumerate(self.members):
            if member.user in by_user:
                errors.append(FieldError(f"members[{i}].user", f"{member.user!r} is on the roster twice"))
            by_user[member.user] = member
        if errors:
            raise ValidationError.from_errors(errors)
        object.__setattr__(self, "_by_user", by_user)
        capacities = {m.user: m.capacity for m in self.members if m.capacity is not None}
        object.__setattr__(self, "_capacities", capacities)
        object.__setattr__(self, "_windows", {})
        object.__setattr__(self, "_groups", {})

    def member(self, user: str) -> Member | None:
        """The member ``user``, or None if they are not on the roster."""
        return self._by_user.get(user)

    def load(self, user: str) -> int:
        """The open work ``user`` holds (0 unless ``loads`` says otherwise)."""
        return self.loads.get(user, 0)

    def unavailable(self, user: str, now: datetime) -> Skipped | None:
        """Why ``user`` cannot take work at ``now`` (load aside), or None if they can."""
        return self._window(user, now)[0]

    def _window(self, user: str, now: datetime) -> _Window:
        window = self._windows.get(user)
        if window is not None:
            start, end = window[1], window[2]
            if start <= now and (end is None or now < end):
                return window
        member = self._by_user.get(user)
        if member is None:
            answer = Skipped(
                user=user, reason=SkipReason.NOT_ON_ROSTER, detail=f"{user!r} is not on the roster"
            )
            window = (answer, now, None)
        else:
            window = _member_window(member, now)
        self._windows[user] = window
        return window

    def blocked(self, user: str, now: datetime) -> Skipped | None:
        """Why ``user`` cannot take work at ``now``: unavailable or at capacity; None if they can."""
        why = self.unavailable(user, now)
        if why is None and user in self._capacities:
            return self.at_capacity(user)
        return why

    def sort_out(self, users: tuple[str, ...], now: datetime) -> tuple[list[str], list[Skipped]]:
        """(those of ``users`` who can take work at ``now``, in order; the others, each with why).

        A group's availability is remembered for as long as each member's holds; capacities are
        applied on every call (loads change).
        """
        group = self._groups.get(users)
        if group is None or not (group[2] <= now and (group[3] is None or now < group[3])):
            available: list[str] = []
            skipped: list[Skipped] = []
            start: datetime | None = None
            end: datetime | None = None
            for user in users:
                why, since, until = self._window(user, now)
                start = since if start is None else max(start, since)
                if until is not None:
                    end = until if end is None else min(end, until)
                if why is None:
                    available.append(user)
                else:
                    skipped.append(why)
            if len(self._groups) >= _REMEMBERED:
                self._groups.clear()
            group = (tuple(available), tuple(skipped), now if start is None else start, end)
            self._groups[users] = group
        available_users, unavailable = group[0], group[1]
        capacities = self._capacities
        if not capacities:
            return list(available_users), list(unavailable)
        free: list[str] = []
        full = list(unavailable)
        for user in available_users:
            if user in capacities and (why := self.at_capacity(user)) is not None:
                full.append(why)
            else:
                free.append(user)
        return free, full

    def at_capacity(self, user: str) -> Skipped | None:
        """Why ``user`` cannot take more work (their capacity is reached), or None."""
        capacity = self._capacities.get(user)
        if capacity is None:
            return None
        load = self.loads.get(user, 0)
        if load < capacity:
            return None
        return Skipped(
            user=user,
            reason=SkipReason.AT_CAPACITY,
            detail=f"{user!r} is at capacity ({load} of {capacity} open)",
        )

    def with_assignment(self, user: str) -> Roster:
        """This roster after ``user`` took one more item (their load plus one).

        Cheap enough to call after every decision of a batch: nothing is checked again (only one
        load grows), and what this roster learnt of availability is shared (loads do not change it).
        """
        loads = dict(self.loads)
        loads[user] = loads.get(user, 0) + 1
        new: Roster = object.__new__(Roster)
        for name, value in (
            ("members", self.members),
            ("loads", loads),
            ("_by_user", self._by_user),
            ("_capacities", self._capacities),
            ("_windows", self._windows),
            ("_groups", self._groups),
        ):
            object.__setattr__(new, name, value)
        return new
