"""service levels: each wearer's own contacts (the charter's contact 1 and 2), first views of alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wearer_contacts",
        sa.Column("wearer_id", sa.String(length=36), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.ForeignKeyConstraint(["wearer_id"], ["wearers.id"]),
        sa.PrimaryKeyConstraint("wearer_id", "rank"),
    )
    with op.batch_alter_table("wearer_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wearer_contacts_contact_id"), ["contact_id"], unique=False)
    op.create_table(
        "alert_views",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("alert_id", "actor"),
    )


def downgrade() -> None:
    op.drop_table("alert_views")
    with op.batch_alter_table("wearer_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wearer_contacts_contact_id"))
    op.drop_table("wearer_contacts")
