"""Clocks: the shell reads time from a `Clock`; engines take ``now`` as an argument instead."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from crmcore.errors import ValidationError

__all__ = [
    "Clock",
    "EPOCH",
    "FixedClock",
    "MICROS_PER_DAY",
    "SystemClock",
    "epoch_micros",
    "from_epoch_micros",
    "require_aware",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch, aware: the origin of `epoch_micros`."""
MICROS_PER_DAY = 86_400_000_000
"""Microseconds in a UTC day: ``epoch_micros(t) // MICROS_PER_DAY`` is ``t``'s UTC day number."""


def require_aware(value: object, field: str = "datetime") -> datetime:
    """Return ``value`` if it is a timezone-aware datetime; a naive one is refused.

    Naive datetimes are ambiguous (whose 9 o'clock?), so crmcore never guesses a zone.
    """
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            field,
            f"naive datetime {value.isoformat()} refused: give it a time zone (e.g. tzinfo=UTC)",
        )
    return value


def epoch_micros(value: datetime) -> int:
    """Whole microseconds from the Unix epoch to the aware ``value``: an exact, zone-free integer.

    Compact columns (rollups, arrays for models) hold instants this way; `from_epoch_micros`
    gives the UTC datetime back.
    """
    return (require_aware(value) - EPOCH) // _MICROSECOND


def from_epoch_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the Unix epoch (inverse of `epoch_micros`)."""
    return EPOCH + timedelta(microseconds=micros)


_MICROSECOND = timedelta(microseconds=1)


@runtime_checkable
class Clock(Protocol):
    """Where the shell gets the current time; swap in `FixedClock` for tests and simulations."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until told to move: deterministic tests and simulations."""

    def __init__(self, at: datetime) -> None:
        self._now = require_aware(at, "at")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time the clock was set to."""
        return self._now

    def set(self, at: datetime) -> None:
        """Move the clock to ``at`` (may go backwards, to replay history)."""
        aware = require_aware(at, "at")
        with self._lock:
            self._now = aware

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        with self._lock:
            self._now += delta
            return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"
