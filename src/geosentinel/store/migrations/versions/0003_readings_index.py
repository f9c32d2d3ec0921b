"""readings: one index, by wearer and time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:00:00

Every reading used to land in two indexes keyed by 36-character ids: (wearer, time) and (device, time).
Each one costs a page written per device and commit (about 20 µs of the writer's CPU per reading, see
bench/NOTES.md), and nothing reads readings by device: positions, a wearer's day and exports go by wearer.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index("ix_readings_device_time")


def downgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index("ix_readings_device_time", ["device_id", "time_us"], unique=False)
