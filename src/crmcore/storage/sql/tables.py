"""crmcore's tables, on one `MetaData` a host can add to its own Alembic migrations.

Every table starts with ``tenant_id``: primary keys are (tenant_id, id) and every index leads with
it, so each query of one tenant stays inside that tenant's slice of every index.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, MetaData, Table

from crmcore.storage.sql.types import ExactDecimal, JsonDocument, Text, UtcDateTime

__all__ = [
    "assignment_queues",
    "contacts",
    "customers",
    "interactions",
    "metadata",
    "orders",
    "outbox",
    "sla_timers",
    "surveys",
    "tickets",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customers = Table(
    "crm_customers",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("kind", Text(16), nullable=False),
    Column("name", Text(300), nullable=False),
    Column("owner", Text(64)),
    Column("currency", Text(3)),
    Column("credit_limit_amount", ExactDecimal),
    Column("credit_limit_currency", Text(3)),
    Column("birthday", Date),
    Column("lifecycle_stage", Text(20), nullable=False),
    Column("email", Text(254), comment="primary email, for lookups"),
    Column("phone", Text(20), comment="primary phone (E.164), for lookups"),
    Column("country", Text(2), comment="country of the primary address"),
    Column("city", Text(100), comment="city of the primary address"),
    Column("emails", JsonDocument, nullable=False),
    Column("phones", JsonDocument, nullable=False),
    Column("addresses", JsonDocument, nullable=False),
    Column("tags", JsonDocument, nullable=False),
    Column("consents", JsonDocument, nullable=False),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "name"),
    Index(None, "tenant_id", "email"),
    Index(None, "tenant_id", "phone"),
    Index(None, "tenant_id", "created_at"),
)

contacts = Table(
    "crm_contacts",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("customer_id", Text(64), nullable=False, comment="the company the contact works for"),
    Column("name", Text(300), nullable=False),
    Column("title", Text(200), nullable=False),
    Column("roles", JsonDocument, nullable=False),
    Column("email", Text(254), comment="primary email, for lookups"),
    Column("phone", Text(20), comment="primary phone (E.164), for lookups"),
    Column("emails", JsonDocument, nullable=False),
    Column("phones", JsonDocument, nullable=False),
    Column("consents", JsonDocument, nullable=False),
    Column("owner", Text(64)),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "customer_id"),
    Index(None, "tenant_id", "email"),
)

interactions = Table(
    "crm_interactions",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("customer_id", Text(64), nullable=False),
    Column("contact_id", Text(64)),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("channel", Text(20), nullable=False),
    Column("direction", Text(10), nullable=False),
    Column("owner", Text(64)),
    Column("subject", Text(300), nullable=False),
    Column("body", Text(20_000), nullable=False),
    Column("outcome", Text(100), nullable=False),
    Column("duration_seconds", Integer),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "customer_id", "occurred_at"),
)

orders = Table(
    "crm_orders",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("customer_id", Text(64), nullable=False),
    Column("number", Text(64), nullable=False),
    Column("ordered_at", UtcDateTime, nullable=False),
    Column("status", Text(20), nullable=False),
    Column("counts", Boolean, nullable=False, comment="status counts as a purchase (for aggregates)"),
    Column("channel", Text(20), nullable=False),
    Column("currency", Text(3), nullable=False),
    Column("total_amount", ExactDecimal, nullable=False, comment="derived from the lines"),
    Column("total_minor", BigInteger, nullable=False, comment="total in minor units: exact SQL sums"),
    Column("discount_amount", ExactDecimal),
    Column("lines", JsonDocument, nullable=False),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "customer_id", "ordered_at"),
    Index(None, "tenant_id", "ordered_at"),
)

tickets = Table(
    "crm_tickets",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("customer_id", Text(64), nullable=False),
    Column("contact_id", Text(64)),
    Column("channel", Text(20), nullable=False),
    Column("subject", Text(300), nullable=False),
    Column("description", Text(50_000), nullable=False),
    Column("priority", Text(10), nullable=False),
    Column("type", Text(20), nullable=False),
    Column("status", Text(40), nullable=False),
    Column("assignee", Text(64)),
    Column("team", Text(64)),
    Column("first_response_at", UtcDateTime),
    Column("solved_at", UtcDateTime),
    Column("reopen_count", Integer, nullable=False),
    Column("sla_policy", Text(100)),
    Column("sla_version", Integer),
    Column("tags", JsonDocument, nullable=False),
    Column("comments", JsonDocument, nullable=False),
    Column("status_history", JsonDocument, nullable=False, comment="every status change, for SLA clocks"),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "customer_id"),
    Index(None, "tenant_id", "status", "priority"),
)

surveys = Table(
    "crm_surveys",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("ticket_id", Text(64), nullable=False),
    Column("customer_id", Text(64), nullable=False),
    Column("score", Integer),
    Column("comment", Text(5_000), nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime),
    Column("custom", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "customer_id"),
    Index(None, "tenant_id", "ticket_id"),
)

sla_timers = Table(
    "crm_sla_timers",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True, comment="the ticket's id"),
    Column("version", Integer, nullable=False),
    Column("next_check_at", UtcDateTime, comment="when the SLA runner must look next; null: no clock runs"),
    Column("fired", JsonDocument, nullable=False, comment="keys of the SLA events already recorded"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "next_check_at"),
)

assignment_queues = Table(
    "crm_assignment_queues",
    metadata,
    Column("tenant_id", Text(64), primary_key=True),
    Column("id", Text(64), primary_key=True, comment="the queue's name"),
    Column("version", Integer, nullable=False),
    Column("sequence", BigInteger, nullable=False, comment="the queue's latest turn number"),
    Column("members", JsonDocument, nullable=False, comment="each member's last turn, count and cycle turns"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "crm_outbox",
    metadata,
    Column(
        "position",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("tenant_id", Text(64), nullable=False),
    Column("event_id", Text(64), nullable=False),
    Column("event_type", Text(100), nullable=False),
    Column("aggregate_id", Text(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Index(None, "tenant_id", "position"),
    Index(None, "tenant_id", "aggregate_id"),  # events_about: export and erasure of one customer
    sqlite_autoincrement=True,  # positions are never reused, even after purge_tenant
)
