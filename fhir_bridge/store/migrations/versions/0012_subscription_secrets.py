"""subscription secrets: one hashed, rotatable secret per Subscription on an EHR

Revision ID: 0012
Revises: 0009 (0011 once the audit and API key migrations land)
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription_secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=2000), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index(
        "ix_subscription_secrets_connection",
        "subscription_secrets",
        ["connection", "resource_type"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_secrets_connection", table_name="subscription_secrets")
    op.drop_table("subscription_secrets")
