"""crmcore's tables as of its first release.

Tables: crm_assignment_queues, crm_contacts, crm_customers, crm_interactions, crm_leads,
crm_opportunities, crm_orders, crm_outbox, crm_quotes, crm_sla_timers, crm_surveys, crm_tickets.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crmcore.storage.sql import types as crm_types

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create every table, with its indexes (primary keys and indexes named by the naming convention)."""
    op.create_table(
        "crm_contacts",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "customer_id", crm_types.Text(64), nullable=False, comment="the company the contact works for"
        ),
        sa.Column("name", crm_types.Text(300), nullable=False),
        sa.Column("title", crm_types.Text(200), nullable=False),
        sa.Column("roles", crm_types.JsonDocument, nullable=False),
        sa.Column("email", crm_types.Text(254), nullable=True, comment="primary email, for lookups"),
        sa.Column("phone", crm_types.Text(20), nullable=True, comment="primary phone (E.164), for lookups"),
        sa.Column("emails", crm_types.JsonDocument, nullable=False),
        sa.Column("phones", crm_types.JsonDocument, nullable=False),
        sa.Column("consents", crm_types.JsonDocument, nullable=False),
        sa.Column("owner", crm_types.Text(64), nullable=True),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_contacts")),
    )
    op.create_index(
        op.f("ix_crm_contacts_tenant_id_customer_id"), "crm_contacts", ["tenant_id", "customer_id"]
    )
    op.create_index(op.f("ix_crm_contacts_tenant_id_email"), "crm_contacts", ["tenant_id", "email"])
    op.create_table(
        "crm_customers",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", crm_types.Text(16), nullable=False),
        sa.Column("name", crm_types.Text(300), nullable=False),
        sa.Column("owner", crm_types.Text(64), nullable=True),
        sa.Column("currency", crm_types.Text(3), nullable=True),
        sa.Column("credit_limit_amount", crm_types.ExactDecimal(), nullable=True),
        sa.Column("credit_limit_currency", crm_types.Text(3), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("lifecycle_stage", crm_types.Text(20), nullable=False),
        sa.Column("email", crm_types.Text(254), nullable=True, comment="primary email, for lookups"),
        sa.Column("phone", crm_types.Text(20), nullable=True, comment="primary phone (E.164), for lookups"),
        sa.Column("country", crm_types.Text(2), nullable=True, comment="country of the primary address"),
        sa.Column("city", crm_types.Text(100), nullable=True, comment="city of the primary address"),
        sa.Column("emails", crm_types.JsonDocument, nullable=False),
        sa.Column("phones", crm_types.JsonDocument, nullable=False),
        sa.Column("addresses", crm_types.JsonDocument, nullable=False),
        sa.Column("tags", crm_types.JsonDocument, nullable=False),
        sa.Column("consents", crm_types.JsonDocument, nullable=False),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_customers")),
    )
    op.create_index(
        op.f("ix_crm_customers_tenant_id_created_at"), "crm_customers", ["tenant_id", "created_at"]
    )
    op.create_index(op.f("ix_crm_customers_tenant_id_email"), "crm_customers", ["tenant_id", "email"])
    op.create_index(op.f("ix_crm_customers_tenant_id_name"), "crm_customers", ["tenant_id", "name"])
    op.create_index(op.f("ix_crm_customers_tenant_id_phone"), "crm_customers", ["tenant_id", "phone"])
    op.create_table(
        "crm_interactions",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("contact_id", crm_types.Text(64), nullable=True),
        sa.Column("occurred_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("channel", crm_types.Text(20), nullable=False),
        sa.Column("direction", crm_types.Text(10), nullable=False),
        sa.Column("owner", crm_types.Text(64), nullable=True),
        sa.Column("subject", crm_types.Text(300), nullable=False),
        sa.Column("body", crm_types.Text(20000), nullable=False),
        sa.Column("outcome", crm_types.Text(100), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_interactions")),
    )
    op.create_index(
        op.f("ix_crm_interactions_tenant_id_customer_id_occurred_at"),
        "crm_interactions",
        ["tenant_id", "customer_id", "occurred_at"],
    )
    op.create_table(
        "crm_orders",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("number", crm_types.Text(64), nullable=False),
        sa.Column("ordered_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("status", crm_types.Text(20), nullable=False),
        sa.Column(
            "counts", sa.Boolean(), nullable=False, comment="status counts as a purchase (for aggregates)"
        ),
        sa.Column("channel", crm_types.Text(20), nullable=False),
        sa.Column("currency", crm_types.Text(3), nullable=False),
        sa.Column("total_amount", crm_types.ExactDecimal(), nullable=False, comment="derived from the lines"),
        sa.Column(
            "total_minor", sa.BigInteger(), nullable=False, comment="total in minor units: exact SQL sums"
        ),
        sa.Column("discount_amount", crm_types.ExactDecimal(), nullable=True),
        sa.Column("lines", crm_types.JsonDocument, nullable=False),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_orders")),
    )
    op.create_index(
        op.f("ix_crm_orders_tenant_id_customer_id_ordered_at"),
        "crm_orders",
        ["tenant_id", "customer_id", "ordered_at"],
    )
    op.create_index(op.f("ix_crm_orders_tenant_id_ordered_at"), "crm_orders", ["tenant_id", "ordered_at"])
    op.create_table(
        "crm_outbox",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("event_id", crm_types.Text(64), nullable=False),
        sa.Column("event_type", crm_types.Text(100), nullable=False),
        sa.Column("aggregate_id", crm_types.Text(64), nullable=False),
        sa.Column("occurred_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("payload", crm_types.JsonDocument, nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_crm_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_crm_outbox_tenant_id_position"), "crm_outbox", ["tenant_id", "position"])
    op.create_index(op.f("ix_crm_outbox_tenant_id_aggregate_id"), "crm_outbox", ["tenant_id", "aggregate_id"])

    op.create_table(
        "crm_surveys",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ticket_id", crm_types.Text(64), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", crm_types.Text(5000), nullable=False),
        sa.Column("sent_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("answered_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_surveys")),
    )
    op.create_index(op.f("ix_crm_surveys_tenant_id_customer_id"), "crm_surveys", ["tenant_id", "customer_id"])
    op.create_index(op.f("ix_crm_surveys_tenant_id_ticket_id"), "crm_surveys", ["tenant_id", "ticket_id"])
    op.create_table(
        "crm_tickets",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("contact_id", crm_types.Text(64), nullable=True),
        sa.Column("channel", crm_types.Text(20), nullable=False),
        sa.Column("subject", crm_types.Text(300), nullable=False),
        sa.Column("description", crm_types.Text(50000), nullable=False),
        sa.Column("priority", crm_types.Text(10), nullable=False),
        sa.Column("type", crm_types.Text(20), nullable=False),
        sa.Column("status", crm_types.Text(40), nullable=False),
        sa.Column("assignee", crm_types.Text(64), nullable=True),
        sa.Column("team", crm_types.Text(64), nullable=True),
        sa.Column("first_response_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("solved_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("sla_policy", crm_types.Text(100), nullable=True),
        sa.Column("sla_version", sa.Integer(), nullable=True),
        sa.Column("tags", crm_types.JsonDocument, nullable=False),
        sa.Column("comments", crm_types.JsonDocument, nullable=False),
        sa.Column(
            "status_history",
            crm_types.JsonDocument,
            nullable=False,
            comment="every status change, for SLA clocks",
        ),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_tickets")),
    )
    op.create_index(op.f("ix_crm_tickets_tenant_id_customer_id"), "crm_tickets", ["tenant_id", "customer_id"])
    op.create_index(
        op.f("ix_crm_tickets_tenant_id_status_priority"), "crm_tickets", ["tenant_id", "status", "priority"]
    )
    op.create_table(
        "crm_sla_timers",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False, comment="the ticket's id"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "next_check_at",
            crm_types.UtcDateTime(),
            nullable=True,
            comment="when the SLA runner must look next; null: no clock runs",
        ),
        sa.Column(
            "fired", crm_types.JsonDocument, nullable=False, comment="keys of the SLA events already recorded"
        ),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_sla_timers")),
    )
    op.create_index(
        op.f("ix_crm_sla_timers_tenant_id_next_check_at"), "crm_sla_timers", ["tenant_id", "next_check_at"]
    )

    op.create_table(
        "crm_assignment_queues",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False, comment="the queue's name"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False, comment="the queue's latest turn number"),
        sa.Column(
            "members",
            crm_types.JsonDocument,
            nullable=False,
            comment="each member's last turn, count and cycle turns",
        ),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_assignment_queues")),
    )

    op.create_table(
        "crm_leads",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", crm_types.Text(300), nullable=False),
        sa.Column("company", crm_types.Text(300), nullable=False),
        sa.Column("title", crm_types.Text(200), nullable=False),
        sa.Column("email", crm_types.Text(254), nullable=True, comment="the address as given, for queries"),
        sa.Column(
            "email_folded",
            crm_types.Text(254),
            nullable=True,
            comment="the address casefolded, for case-insensitive lookups",
        ),
        sa.Column("phone", crm_types.Text(20), nullable=True, comment="E.164"),
        sa.Column(
            "contact_points", crm_types.JsonDocument, nullable=False, comment="email and phone with labels"
        ),
        sa.Column("source", crm_types.Text(100), nullable=False),
        sa.Column("campaign", crm_types.Text(100), nullable=True),
        sa.Column("industry", crm_types.Text(100), nullable=False),
        sa.Column("company_size", sa.Integer(), nullable=True),
        sa.Column("country", crm_types.Text(2), nullable=True),
        sa.Column("region", crm_types.Text(100), nullable=False),
        sa.Column("status", crm_types.Text(20), nullable=False),
        sa.Column("disqualified_reason", crm_types.Text(500), nullable=False),
        sa.Column("owner", crm_types.Text(64), nullable=True),
        sa.Column("assigned_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column(
            "last_touched_at",
            crm_types.UtcDateTime(),
            nullable=True,
            comment="reassignment rules look for untouched leads",
        ),
        sa.Column("tags", crm_types.JsonDocument, nullable=False),
        sa.Column("converted_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column(
            "converted_customer_id",
            crm_types.Text(64),
            nullable=True,
            comment="the customer link (merge, export, erasure)",
        ),
        sa.Column("converted_contact_id", crm_types.Text(64), nullable=True),
        sa.Column("converted_opportunity_id", crm_types.Text(64), nullable=True),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_leads")),
    )
    op.create_index(
        op.f("ix_crm_leads_tenant_id_converted_customer_id"),
        "crm_leads",
        ["tenant_id", "converted_customer_id"],
    )
    op.create_index(op.f("ix_crm_leads_tenant_id_created_at"), "crm_leads", ["tenant_id", "created_at"])
    op.create_index(op.f("ix_crm_leads_tenant_id_email_folded"), "crm_leads", ["tenant_id", "email_folded"])
    op.create_index(
        op.f("ix_crm_leads_tenant_id_last_touched_at"), "crm_leads", ["tenant_id", "last_touched_at"]
    )
    op.create_index(op.f("ix_crm_leads_tenant_id_owner"), "crm_leads", ["tenant_id", "owner"])
    op.create_index(op.f("ix_crm_leads_tenant_id_status"), "crm_leads", ["tenant_id", "status"])
    op.create_table(
        "crm_opportunities",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", crm_types.Text(300), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("pipeline", crm_types.Text(100), nullable=False),
        sa.Column("stage", crm_types.Text(100), nullable=False),
        sa.Column("amount", crm_types.ExactDecimal(), nullable=True, comment="exact, as given (not rounded)"),
        sa.Column("currency", crm_types.Text(3), nullable=True, comment="the amount's currency"),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("owner", crm_types.Text(64), nullable=True),
        sa.Column("contact_id", crm_types.Text(64), nullable=True),
        sa.Column("lead_id", crm_types.Text(64), nullable=True),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("forecast_category", crm_types.Text(20), nullable=False),
        sa.Column("next_step", crm_types.Text(500), nullable=False),
        sa.Column("lost_reason", crm_types.Text(500), nullable=False),
        sa.Column("source", crm_types.Text(100), nullable=False),
        sa.Column("line_items", crm_types.JsonDocument, nullable=False),
        sa.Column(
            "stage_history",
            crm_types.JsonDocument,
            nullable=False,
            comment="every stage change, for velocity",
        ),
        sa.Column("stage_entered_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("closed_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("won", sa.Boolean(), nullable=True, comment="true won, false lost, null open"),
        sa.Column("tags", crm_types.JsonDocument, nullable=False),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_opportunities")),
    )
    op.create_index(
        op.f("ix_crm_opportunities_tenant_id_close_date"), "crm_opportunities", ["tenant_id", "close_date"]
    )
    op.create_index(
        op.f("ix_crm_opportunities_tenant_id_closed_at"), "crm_opportunities", ["tenant_id", "closed_at"]
    )
    op.create_index(
        op.f("ix_crm_opportunities_tenant_id_customer_id"), "crm_opportunities", ["tenant_id", "customer_id"]
    )
    op.create_index(op.f("ix_crm_opportunities_tenant_id_owner"), "crm_opportunities", ["tenant_id", "owner"])
    op.create_index(
        op.f("ix_crm_opportunities_tenant_id_pipeline_stage"),
        "crm_opportunities",
        ["tenant_id", "pipeline", "stage"],
    )
    op.create_table(
        "crm_quotes",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("id", crm_types.Text(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("number", crm_types.Text(64), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("opportunity_id", crm_types.Text(64), nullable=False),
        sa.Column("status", crm_types.Text(20), nullable=False),
        sa.Column("currency", crm_types.Text(3), nullable=False),
        sa.Column("total_amount", crm_types.ExactDecimal(), nullable=False, comment="derived from the lines"),
        sa.Column(
            "total_minor", sa.BigInteger(), nullable=False, comment="total in minor units: exact comparisons"
        ),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("sent_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("accepted_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("rejected_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("rejection_reason", crm_types.Text(500), nullable=False),
        sa.Column("expired_at", crm_types.UtcDateTime(), nullable=True),
        sa.Column("lines", crm_types.JsonDocument, nullable=False),
        sa.Column("custom", crm_types.JsonDocument, nullable=False),
        sa.Column("created_at", crm_types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", crm_types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_crm_quotes")),
    )
    op.create_index(op.f("ix_crm_quotes_tenant_id_customer_id"), "crm_quotes", ["tenant_id", "customer_id"])
    op.create_index(
        op.f("ix_crm_quotes_tenant_id_opportunity_id"), "crm_quotes", ["tenant_id", "opportunity_id"]
    )
    op.create_index(
        op.f("ix_crm_quotes_tenant_id_status_expires_on"), "crm_quotes", ["tenant_id", "status", "expires_on"]
    )


def downgrade() -> None:
    """Drop every table, with all data."""
    op.drop_table("crm_quotes")
    op.drop_table("crm_opportunities")
    op.drop_table("crm_leads")
    op.drop_table("crm_sla_timers")
    op.drop_table("crm_assignment_queues")
    op.drop_table("crm_tickets")
    op.drop_table("crm_surveys")
    op.drop_table("crm_outbox")
    op.drop_table("crm_orders")
    op.drop_table("crm_interactions")
    op.drop_table("crm_customers")
    op.drop_table("crm_contacts")
