"""links by server id: pull looks links up by the server's Type/id, page by page

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_links_server", "links", ["connection", "resource_type", "resource_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_links_server", table_name="links")
