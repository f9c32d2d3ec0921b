"""detection: geofences, wearer thresholds, device reporting interval

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 20:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "geofences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("wearer_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("width_m", sa.Float(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.ForeignKeyConstraint(["wearer_id"], ["wearers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("geofences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_geofences_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_geofences_wearer_id"), ["wearer_id"], unique=False)
    with op.batch_alter_table("wearers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings", sa.Text(), nullable=True))
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_interval_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("expected_interval_s")
    with op.batch_alter_table("wearers", schema=None) as batch_op:
        batch_op.drop_column("settings")
    with op.batch_alter_table("geofences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_geofences_wearer_id"))
        batch_op.drop_index(batch_op.f("ix_geofences_org_id"))
    op.drop_table("geofences")
