"""Identifiers: 26-character ULID strings, sortable by creation time.

Ids are plain strings so hosts can store, log and pass them anywhere; the library makes them
(`new_id`) or accepts the host's own (`check_id`). Ids made in one process sort in creation order,
also within one millisecond.
"""

from __future__ import annotations

import os
import threading
import time
from typing import NewType

from crmcore.errors import ValidationError

__all__ = [
    "CustomerId",
    "EventId",
    "MAX_ID_LENGTH",
    "TenantId",
    "check_id",
    "id_time_ms",
    "new_id",
    "ulid",
]

CustomerId = NewType("CustomerId", str)
EventId = NewType("EventId", str)
TenantId = NewType("TenantId", str)

MAX_ID_LENGTH = 64
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def ulid(ms: int, random_bits: int) -> str:
    """The ULID for ``ms`` milliseconds since the epoch and an 80-bit random part.

    `new_id` uses it with the clock and ``os.urandom``; simulations and generated data sets pass
    a seeded random part to get reproducible ids that still sort by time.
    """
    if not 0 <= ms < 1 << 48:
        raise ValidationError("ms", f"must be from 0 to 2**48 - 1, got {ms}")
    if not 0 <= random_bits < 1 << _RANDOM_BITS:
        raise ValidationError("random_bits", f"must be from 0 to 2**80 - 1, got {random_bits}")
    value = (ms << _RANDOM_BITS) | random_bits
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds since the epoch, then 80 random bits.

    Within one millisecond the random part is incremented, so ids from one process are strictly
    increasing (the ULID monotonic rule).
    """
    global _last_ms, _last_random
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _last_random += 1
            if _last_random >= 1 << _RANDOM_BITS:  # astronomically unlikely: borrow the next ms
                ms += 1
                _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms = ms
        return ulid(ms, _last_random)


def id_time_ms(id: str) -> int:
    """The creation time (ms since the epoch) encoded in a library-made id."""
    if len(id) != 26 or any(c not in _ALPHABET for c in id):
        raise ValidationError("id", f"{id!r} is not a crmcore ULID")
    value = 0
    for c in id[:10]:
        value = value * 32 + _ALPHABET.index(c)
    return value


def check_id(value: object, field: str = "id") -> str:
    """Accept a host-supplied id: a non-empty string of at most 64 printable, non-space characters."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(field, f"must be at most {MAX_ID_LENGTH} characters")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ValidationError(field, f"{value!r} contains spaces or control characters")
    return value
