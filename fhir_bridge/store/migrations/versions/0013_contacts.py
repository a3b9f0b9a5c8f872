"""contacts: a care manager's check-ins with their minutes, for the monthly minutes report

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("encounter_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("care_manager_id", sa.String(length=200), nullable=True),
        sa.Column("care_manager_name", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("encounter_id"),
    )
    op.create_index("ix_contacts_month", "contacts", ["month", "patient_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contacts_month", table_name="contacts")
    op.drop_table("contacts")
