"""The `Interaction` aggregate: one touch with a customer on any channel, for the timeline."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.errors import ValidationError
from crmcore.ids import check_id, new_id
from crmcore.validation import (
    check_on_setattr,
    checked,
    custom_fields,
    one_of,
    optional,
    run_checks,
    text,
    utc_datetime,
    version_number,
)

__all__ = ["Direction", "INTERACTION_FIELDS", "Interaction", "InteractionChannel"]


class InteractionChannel(enum.Enum):
    """Where a touch happened."""

    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    WEB_VISIT = "web_visit"
    IN_STORE = "in_store"


class Direction(enum.Enum):
    """Who started the touch: the customer (inbound) or the business (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


def _duration(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(path, f"must be a non-negative number of seconds, got {value!r}")
    return value


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Interaction:
    """A call, email, meeting, chat, social message, web visit or store visit with a customer.

    ``occurred_at`` is when it happened (the timeline's order), not when it was recorded.
    """

    customer_id: str = checked(check_id)
    occurred_at: datetime = checked(utc_datetime)
    channel: InteractionChannel = checked(one_of(InteractionChannel))
    direction: Direction = checked(one_of(Direction), default=Direction.OUTBOUND)
    id: str = checked(check_id, factory=new_id)
    contact_id: str | None = checked(optional(check_id), default=None)
    owner: str | None = checked(optional(check_id), default=None)
    subject: str = checked(text(max_length=300), default="")
    body: str = checked(text(max_length=20_000, strip=False), default="")
    outcome: str = checked(text(max_length=100), default="")
    """A short result such as ``"interested"``, ``"no answer"``, ``"meeting booked"``."""
    duration_seconds: int | None = checked(_duration, default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


INTERACTION_FIELDS = FieldSet.of(
    "Interaction",
    [
        *record_fields(),
        FieldDef("customer_id", FieldType.TEXT, lambda i: i.customer_id, nullable=False),
        FieldDef("contact_id", FieldType.TEXT, lambda i: i.contact_id),
        FieldDef("occurred_at", FieldType.DATETIME, lambda i: i.occurred_at, nullable=False),
        enum_field("channel", InteractionChannel),
        enum_field("direction", Direction),
        FieldDef("owner", FieldType.TEXT, lambda i: i.owner),
        FieldDef("subject", FieldType.TEXT, lambda i: i.subject, nullable=False),
        FieldDef("outcome", FieldType.TEXT, lambda i: i.outcome, nullable=False),
        FieldDef("duration_seconds", FieldType.INTEGER, lambda i: i.duration_seconds),
    ],
    json={"custom": lambda i: i.custom},
)
"""The fields of `Interaction` that conditions, ``find`` and ``order_by`` can use."""
