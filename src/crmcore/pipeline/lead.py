"""The `Lead` aggregate: a prospect not yet qualified into a customer and an opportunity.

A lead keeps what sales learns before conversion: who (name, title, contact data), which company
(name, industry, size, region), where it came from (source, campaign), its status and owner.
Conversion (`crmcore.pipeline.convert_lead`) records the customer, contact and opportunity it
became, and the lead stays as the history of how the deal started.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.customers.contact_points import EmailAddress, PhoneNumber
from crmcore.errors import FieldError, TransitionError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.validation import (
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
    "LEAD_FIELDS",
    "Lead",
    "LeadStatus",
]


class LeadStatus(enum.Enum):
    """Where a lead stands: ``new``, being ``working``, ``nurturing`` (not ready), ``qualified``
    (ready to convert; conversion keeps this status and sets ``converted_at``), or
    ``disqualified`` (with a reason)."""

    NEW = "new"
    WORKING = "working"
    NURTURING = "nurturing"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"


def _size(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000_000:
        raise ValidationError(path, f"must be a number of employees from 1 to 10,000,000, got {value!r}")
    return value


def _country(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 2 or not value.isalpha() or not value.isupper():
        raise ValidationError(path, f"must be an ISO 3166 alpha-2 code such as 'DE', got {value!r}")
    return value


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Lead:
    """A prospect: a person at a company, from a source, owned by a rep, in a `LeadStatus`.

    ``disqualified_reason`` is required exactly when the status is ``disqualified``. The
    ``converted_*`` fields are set together by conversion. ``last_touched_at`` is the last time
    the owner worked the lead (a call, an email); reassignment rules read it.
    """

    name: str = checked(text(max_length=300, required=True))
    id: str = checked(check_id, factory=new_id)
    company: str = checked(text(max_length=300), default="")
    title: str = checked(text(max_length=200), default="")
    email: EmailAddress | None = checked(optional(instance_of(EmailAddress)), default=None)
    phone: PhoneNumber | None = checked(optional(instance_of(PhoneNumber)), default=None)
    source: str = checked(text(max_length=100), default="")
    """Where the lead came from: ``web``, ``referral``, ``event``, ... (free text, so hosts name theirs)."""
    campaign: str | None = checked(optional(text(max_length=100, required=True)), default=None)
    industry: str = checked(text(max_length=100), default="")
    company_size: int | None = checked(_size, default=None)
    """Employees at the lead's company."""
    country: str | None = checked(_country, default=None)
    region: str = checked(text(max_length=100), default="")
    status: LeadStatus = checked(one_of(LeadStatus), default=LeadStatus.NEW)
    disqualified_reason: str = checked(text(max_length=500), default="")
    owner: str | None = checked(optional(check_id), default=None)
    assigned_at: datetime | None = checked(optional(utc_datetime), default=None)
    last_touched_at: datetime | None = checked(optional(utc_datetime), default=None)
    tags: Sequence[str] = checked(tags_check, default=())
    converted_at: datetime | None = checked(optional(utc_datetime), default=None)
    converted_customer_id: str | None = checked(optional(check_id), default=None)
    converted_contact_id: str | None = checked(optional(check_id), default=None)
    converted_opportunity_id: str | None = checked(optional(check_id), default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless status, reason and conversion fields agree (stores call it)."""
        errors: list[FieldError] = []
        disqualified = self.status is LeadStatus.DISQUALIFIED
        if disqualified and not self.disqualified_reason:
            errors.append(FieldError("disqualified_reason", "is required for a disqualified lead"))
        if not disqualified and self.disqualified_reason:
            errors.append(FieldError("disqualified_reason", "is only for disqualified leads"))
        converted = (self.converted_at, self.converted_customer_id)
        if (converted[0] is None) != (converted[1] is None):
            errors.append(FieldError("converted_at", "and converted_customer_id are set together"))
        if self.converted_at is not None and self.status is not LeadStatus.QUALIFIED:
            errors.append(FieldError("status", "must be qualified for a converted lead"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def converted(self) -> bool:
        """Whether the lead was converted into a customer (and usually an opportunity)."""
        return self.converted_at is not None

    def disqualify(self, reason: str) -> Lead:
        """This lead disqualified for ``reason`` (a new lead; this one is unchanged).

        Raises:
            ValidationError: an empty reason.
            TransitionError: the lead was converted already.
        """
        if self.converted:
            raise TransitionError(f"lead {self.id!r} was converted; it cannot be disqualified")
        return attrs.evolve(self, status=LeadStatus.DISQUALIFIED, disqualified_reason=reason)

    def qualify(self) -> Lead:
        """This lead qualified (ready to convert).

        Raises:
            TransitionError: the lead is disqualified (requalify it by moving it to ``working`` first).
        """
        if self.status is LeadStatus.DISQUALIFIED:
            raise TransitionError(f"lead {self.id!r} is disqualified: move it back to working first")
        return attrs.evolve(self, status=LeadStatus.QUALIFIED)


_get = operator.attrgetter

LEAD_FIELDS = FieldSet.of(
    "Lead",
    [
        *record_fields(),
        FieldDef("name", FieldType.TEXT, _get("name"), nullable=False),
        FieldDef("company", FieldType.TEXT, _get("company"), nullable=False),
        FieldDef("title", FieldType.TEXT, _get("title"), nullable=False),
        FieldDef("email", FieldType.TEXT, lambda x: None if x.email is None else x.email.address),
        FieldDef("phone", FieldType.TEXT, lambda x: None if x.phone is None else x.phone.number),
        FieldDef("source", FieldType.TEXT, _get("source"), nullable=False),
        FieldDef("campaign", FieldType.TEXT, _get("campaign")),
        FieldDef("industry", FieldType.TEXT, _get("industry"), nullable=False),
        FieldDef("company_size", FieldType.INTEGER, _get("company_size")),
        FieldDef("country", FieldType.TEXT, _get("country")),
        FieldDef("region", FieldType.TEXT, _get("region"), nullable=False),
        enum_field("status", LeadStatus),
        FieldDef("owner", FieldType.TEXT, _get("owner")),
        FieldDef("assigned_at", FieldType.DATETIME, _get("assigned_at")),
        FieldDef("last_touched_at", FieldType.DATETIME, _get("last_touched_at")),
        FieldDef("tags", FieldType.TEXT_LIST, _get("tags"), nullable=False),
        FieldDef("converted_at", FieldType.DATETIME, _get("converted_at")),
        FieldDef("converted_customer_id", FieldType.TEXT, _get("converted_customer_id")),
    ],
    json={"custom": lambda x: x.custom},
)
"""The fields of `Lead` that conditions, ``find``, ``order_by``, assignment rules and scoring can use."""
