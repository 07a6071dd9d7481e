"""Ids, clocks and the error tree."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crmcore import (
    AlreadyExists,
    ConcurrencyError,
    CrmError,
    FixedClock,
    NotFound,
    PermissionDenied,
    RuleError,
    StorageError,
    SystemClock,
    TransitionError,
    ValidationError,
    new_id,
)
from crmcore.clock import Clock, require_aware
from crmcore.errors import FieldError
from crmcore.ids import check_id, id_time_ms, ulid


def test_ids_sort_by_creation_even_within_a_millisecond() -> None:
    """10,000 ids made back to back are unique and strictly increasing."""
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)


def test_ids_from_threads_are_unique() -> None:
    """Ids made in several threads never collide."""
    out: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        made = [new_id() for _ in range(2000)]
        with lock:
            out.extend(made)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 8000


def test_id_encodes_its_time() -> None:
    """The first ten characters are the creation time in milliseconds."""
    before = int(datetime.now(UTC).timestamp() * 1000)
    ms = id_time_ms(new_id())
    assert before - 5 <= ms <= before + 1000
    with pytest.raises(ValidationError):
        id_time_ms("not-a-ulid")


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 65, "tab\there", 5, None])
def test_host_ids_are_checked(bad: object) -> None:
    """Host-supplied ids must be printable, space-free strings of at most 64 characters."""
    with pytest.raises(ValidationError) as caught:
        check_id(bad, "owner")
    assert caught.value.field == "owner"


def test_fixed_clock_moves_only_when_told() -> None:
    """FixedClock stands still, can be set and advanced; naive times are refused."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FixedClock(t0)
    assert isinstance(clock, Clock) and clock.now() == t0 == clock.now()
    assert clock.advance(timedelta(hours=2)) == t0 + timedelta(hours=2)
    clock.set(t0 - timedelta(days=1))
    assert clock.now() == t0 - timedelta(days=1)
    with pytest.raises(ValidationError, match="naive"):
        FixedClock(datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="naive"):
        clock.set(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    """SystemClock gives the current time in UTC."""
    now = SystemClock().now()
    assert now.tzinfo is UTC and abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_require_aware() -> None:
    """Aware datetimes in any zone pass; naive ones and non-datetimes are refused by field."""
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3)))
    assert require_aware(aware) is aware
    with pytest.raises(ValidationError, match="due_at: naive"):
        require_aware(datetime(2026, 1, 1), "due_at")
    with pytest.raises(ValidationError, match="must be a datetime"):
        require_aware("2026-01-01", "due_at")


def test_error_tree() -> None:
    """Every error is a CrmError; ValidationError is a ValueError and NotFound a LookupError."""
    for cls in (
        ValidationError,
        NotFound,
        ConcurrencyError,
        TransitionError,
        RuleError,
        PermissionDenied,
        StorageError,
        AlreadyExists,
    ):
        assert issubclass(cls, CrmError)
    assert issubclass(ValidationError, ValueError) and issubclass(NotFound, LookupError)


def test_validation_error_lists_every_problem() -> None:
    """field/reason name the first problem; errors hold all; prefixed() nests the paths."""
    err = ValidationError("name", "is required", more=[FieldError("emails[0].address", "not an email")])
    assert (err.field, err.reason) == ("name", "is required")
    assert str(err) == "name: is required; emails[0].address: not an email"
    nested = err.prefixed("customer")
    assert [e.path for e in nested.errors] == ["customer.name", "customer.emails[0].address"]
    with pytest.raises(ValueError, match="at least one"):
        ValidationError.from_errors([])


def test_transition_error_lists_unmet_requirements() -> None:
    """TransitionError carries every unmet requirement and shows them in its message."""
    err = TransitionError(
        "cannot move to 'Proposal'", ["requires field 'amount'", "requires field 'close_date'"]
    )
    assert err.unmet == ("requires field 'amount'", "requires field 'close_date'")
    assert "amount" in str(err) and "close_date" in str(err)


def test_ulid_encodes_time_and_random_part() -> None:
    """ulid() is the one encoder: new_id uses it, its time decodes back, out-of-range parts are refused."""
    ms, bits = 1_700_000_000_123, (1 << 80) - 1
    made = ulid(ms, bits)
    assert len(made) == 26 and id_time_ms(made) == ms and made.endswith("Z" * 16)
    assert ulid(0, 0) == "0" * 26
    assert ulid(ms, 1) < ulid(ms, 2) < ulid(ms + 1, 0)
    assert id_time_ms(new_id()) >= ms
    with pytest.raises(ValidationError, match="random_bits"):
        ulid(ms, 1 << 80)
    with pytest.raises(ValidationError, match="ms"):
        ulid(-1, 0)
