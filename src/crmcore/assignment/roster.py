"""Who can take work right now: members, their availability and capacity, and their open work.

A `Roster` is data the host builds for each routing (or batch): its users (`Member`) and the
open work each holds (``loads``, counted by the host or the shell from its store). The engine
reads it and never changes it; `Roster.with_assignment` gives the roster after one more item.
"""

from __future__ import annotations

import enum
from datetime import datetime
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


_REMEMBERED = 10_000
"""How many (user, now) availability answers a roster keeps before it starts afresh."""


@attrs.frozen(kw_only=True)
class Roster:
    """The users who may be assigned work and the open work each holds (``loads``, default 0).

    Availability per ``now`` is remembered, so routing a batch at one instant reads each
    member's calendar once.
    """

    members: tuple[Member, ...] = checked(tuple_of(instance_of(Member)), default=())
    loads: dict[str, int] = checked(_loads, factory=dict)
    _by_user: dict[str, Member] = attrs.field(init=False, repr=False, eq=False)
    _seen: dict[tuple[str, datetime], Skipped | None] = attrs.field(init=False, repr=False, eq=False)

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
        object.__setattr__(self, "_seen", {})

    def member(self, user: str) -> Member | None:
        """The member ``user``, or None if they are not on the roster."""
        return self._by_user.get(user)

    def load(self, user: str) -> int:
        """The open work ``user`` holds (0 unless ``loads`` says otherwise)."""
        return self.loads.get(user, 0)

    def unavailable(self, user: str, now: datetime) -> Skipped | None:
        """Why ``user`` cannot take work at ``now`` (load aside), or None if they can."""
        key = (user, now)
        try:
            return self._seen[key]
        except KeyError:
            pass
        member = self._by_user.get(user)
        if member is None:
            found: Skipped | None = Skipped(
                user=user, reason=SkipReason.NOT_ON_ROSTER, detail=f"{user!r} is not on the roster"
            )
        else:
            found = member.unavailable(now)
        if len(self._seen) >= _REMEMBERED:
            self._seen.clear()
        self._seen[key] = found
        return found

    def at_capacity(self, user: str) -> Skipped | None:
        """Why ``user`` cannot take more work (their capacity is reached), or None."""
        member = self._by_user.get(user)
        capacity = None if member is None else member.capacity
        if capacity is None:
            return None
        load = self.loads.get(user, 0)
        if load < capacity:
            return None
        return Skipped(
            user=user, reason=SkipReason.AT_CAPACITY, detail=f"{user!r} is at capacity ({load} of {capacity} open)"
        )

    def with_assignment(self, user: str) -> Roster:
        """This roster after ``user`` took one more item (their load plus one)."""
        loads = dict(self.loads)
        loads[user] = loads.get(user, 0) + 1
        new = attrs.evolve(self, loads=loads)
        # Availability does not depend on loads: the new roster keeps what this one learnt.
        object.__setattr__(new, "_seen", self._seen)
        return new
