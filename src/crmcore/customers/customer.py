"""The `Customer` aggregate: a person or a company, with contact points, tags and custom fields."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.customers.contact_points import (
    Address,
    Consent,
    ConsentChannel,
    EmailAddress,
    PhoneNumber,
    consents_check,
    one_primary,
    primary,
)
from crmcore.errors import ValidationError
from crmcore.ids import check_id, new_id
from crmcore.money import Money, check_currency
from crmcore.validation import (
    a_date,
    check_on_setattr,
    checked,
    custom_fields,
    instance_of,
    one_of,
    optional,
    run_checks,
    tags_check,
    text,
    utc_datetime,
    version_number,
)

__all__ = [
    "Address",
    "CUSTOMER_FIELDS",
    "Customer",
    "CustomerKind",
    "EmailAddress",
    "LifecycleStage",
    "PhoneNumber",
]


class CustomerKind(enum.Enum):
    """Whether a customer is a person or a company (an account)."""

    PERSON = "person"
    COMPANY = "company"


class LifecycleStage(enum.Enum):
    """Where a customer stands with the business; hosts move it as the relationship changes."""

    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    CHURNED = "churned"


def _credit_limit(value: Any, path: str) -> Money:
    limit: Money = instance_of(Money)(value, path)
    if limit.amount < 0:
        raise ValidationError(path, f"must not be negative, got {limit}")
    return limit


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Customer:
    """A person or a company the business sells to or serves.

    Every field is checked on construction and on assignment, and all problems are reported in
    one `ValidationError`. ``created_at`` and ``updated_at`` are stamped by the store when left
    empty; ``version`` is managed by the store for optimistic concurrency.
    """

    name: str = checked(text(max_length=300, required=True), default="")
    kind: CustomerKind = checked(one_of(CustomerKind), default=CustomerKind.PERSON)
    id: str = checked(check_id, factory=new_id)
    emails: Sequence[EmailAddress] = checked(one_primary(EmailAddress, "emails"), default=())
    phones: Sequence[PhoneNumber] = checked(one_primary(PhoneNumber, "phones"), default=())
    addresses: Sequence[Address] = checked(one_primary(Address, "addresses"), default=())
    tags: Sequence[str] = checked(tags_check, default=())
    owner: str | None = checked(optional(check_id), default=None)
    currency: str | None = checked(optional(check_currency), default=None)
    credit_limit: Money | None = checked(optional(_credit_limit), default=None)
    birthday: date | None = checked(optional(a_date), default=None)
    lifecycle_stage: LifecycleStage = checked(one_of(LifecycleStage), default=LifecycleStage.CUSTOMER)
    consents: Sequence[Consent] = checked(consents_check, default=())
    custom: dict[str, Any] = checked(custom_fields, factory=dict)  # JSON values, see JsonValue
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    @property
    def primary_email(self) -> str | None:
        """The primary email address (the flagged one, else the first)."""
        email = primary(self.emails)
        return email.address if email else None

    @property
    def primary_phone(self) -> str | None:
        """The primary phone number (the flagged one, else the first)."""
        phone = primary(self.phones)
        return phone.number if phone else None

    @property
    def primary_address(self) -> Address | None:
        """The primary address (the flagged one, else the first)."""
        address: Address | None = primary(self.addresses)
        return address

    def consent(self, channel: ConsentChannel | str) -> Consent | None:
        """The recorded consent for ``channel``, or None when none was recorded."""
        wanted = one_of(ConsentChannel)(channel, "channel")
        return next((c for c in self.consents if c.channel is wanted), None)

    def may_contact(self, channel: ConsentChannel | str) -> bool:
        """Whether consent for ``channel`` was recorded and granted (no record means no)."""
        found = self.consent(channel)
        return found is not None and found.granted

    @property
    def country(self) -> str | None:
        """Country of the primary address."""
        address = self.primary_address
        return address.country if address else None

    @property
    def city(self) -> str | None:
        """City of the primary address (None when empty)."""
        address = self.primary_address
        return (address.city or None) if address else None


CUSTOMER_FIELDS = FieldSet.of(
    "Customer",
    [
        *record_fields(),
        FieldDef("name", FieldType.TEXT, lambda c: c.name, nullable=False),
        enum_field("kind", CustomerKind),
        FieldDef("owner", FieldType.TEXT, lambda c: c.owner),
        FieldDef("currency", FieldType.TEXT, lambda c: c.currency),
        FieldDef("credit_limit", FieldType.MONEY, lambda c: c.credit_limit),
        FieldDef("birthday", FieldType.DATE, lambda c: c.birthday),
        enum_field("lifecycle_stage", LifecycleStage),
        FieldDef("email", FieldType.TEXT, lambda c: c.primary_email),
        FieldDef("phone", FieldType.TEXT, lambda c: c.primary_phone),
        FieldDef("country", FieldType.TEXT, lambda c: c.country),
        FieldDef("city", FieldType.TEXT, lambda c: c.city),
        FieldDef("tags", FieldType.TEXT_LIST, lambda c: c.tags, nullable=False),
    ],
    json={"custom": lambda c: c.custom},
)
"""The fields of `Customer` that conditions, ``find`` and ``order_by`` can use."""
