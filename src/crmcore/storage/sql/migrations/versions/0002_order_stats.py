"""The purchase-statistics rollup ``crm_order_stats``, filled from the orders already stored.

Customer summaries read one row per (customer, currency) from it instead of aggregating every
order; the order repository keeps it up to date from now on (see ``storage/sql/order_stats.py``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crmcore.storage.sql import order_stats
from crmcore.storage.sql import types as crm_types

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the rollup table, then aggregate every tenant's counted orders into it."""
    op.create_table(
        "crm_order_stats",
        sa.Column("tenant_id", crm_types.Text(64), nullable=False),
        sa.Column("customer_id", crm_types.Text(64), nullable=False),
        sa.Column("currency", crm_types.Text(3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column(
            "purchase_days", sa.Integer(), nullable=False, comment="distinct UTC days with a counted order"
        ),
        sa.Column("spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("first_day_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "first_order_micros", sa.BigInteger(), nullable=False, comment="microseconds since the Unix epoch"
        ),
        sa.Column(
            "last_order_micros", sa.BigInteger(), nullable=False, comment="microseconds since the Unix epoch"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", "currency", name=op.f("pk_crm_order_stats")),
        comment="rollup of counted orders per (customer, currency), kept by the order repository",
    )
    bind = op.get_bind()
    order_stats.rebuild(bind, bind.dialect.name)


def downgrade() -> None:
    """Drop the rollup (the orders it was computed from stay)."""
    op.drop_table("crm_order_stats")
