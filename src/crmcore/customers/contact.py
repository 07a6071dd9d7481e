"""The `Contact` aggregate: a person at a company customer, with roles and contact points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, record_fields
from crmcore.customers.contact_points import (
    Consent,
    ConsentChannel,
    EmailAddress,
    PhoneNumber,
    consents_check,
    one_primary,
    primary,
)
from crmcore.ids import check_id, new_id
from crmcore.validation import (
    check_on_setattr,
    checked,
    custom_fields,
    one_of,
    optional,
    run_checks,
    tags_check,
    text,
    utc_datetime,
    version_number,
)

__all__ = ["CONTACT_FIELDS", "Contact"]


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Contact:
    """A person the business deals with at a company customer (``customer_id``).

    ``roles`` are free labels such as ``"decision maker"`` or ``"billing"``, stored sorted.
    """

    customer_id: str = checked(check_id)
    name: str = checked(text(max_length=300, required=True), default="")
    id: str = checked(check_id, factory=new_id)
    title: str = checked(text(max_length=200), default="")
    roles: Sequence[str] = checked(tags_check, default=())
    emails: Sequence[EmailAddress] = checked(one_primary(EmailAddress, "emails"), default=())
    phones: Sequence[PhoneNumber] = checked(one_primary(PhoneNumber, "phones"), default=())
    consents: Sequence[Consent] = checked(consents_check, default=())
    owner: str | None = checked(optional(check_id), default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
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
        """The primary phone number in E.164 (the flagged one, else the first)."""
        phone = primary(self.phones)
        return phone.number if phone else None

    def may_contact(self, channel: ConsentChannel | str) -> bool:
        """Whether consent for ``channel`` was recorded and granted (no record means no)."""
        wanted = one_of(ConsentChannel)(channel, "channel")
        return any(c.channel is wanted and c.granted for c in self.consents)


CONTACT_FIELDS = FieldSet.of(
    "Contact",
    [
        *record_fields(),
        FieldDef("customer_id", FieldType.TEXT, lambda c: c.customer_id, nullable=False),
        FieldDef("name", FieldType.TEXT, lambda c: c.name, nullable=False),
        FieldDef("title", FieldType.TEXT, lambda c: c.title, nullable=False),
        FieldDef("roles", FieldType.TEXT_LIST, lambda c: c.roles, nullable=False),
        FieldDef("email", FieldType.TEXT, lambda c: c.primary_email),
        FieldDef("phone", FieldType.TEXT, lambda c: c.primary_phone),
        FieldDef("owner", FieldType.TEXT, lambda c: c.owner),
    ],
    json={"custom": lambda c: c.custom},
)
"""The fields of `Contact` that conditions, ``find`` and ``order_by`` can use."""
