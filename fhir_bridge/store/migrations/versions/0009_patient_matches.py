"""patient matches: the EHR's own Patient per connection, or why the patient is held

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_matches",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=True),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("connection", "patient_id"),
    )
    op.create_index(
        "ix_patient_matches_state", "patient_matches", ["connection", "state"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_patient_matches_state", table_name="patient_matches")
    op.drop_table("patient_matches")
