"""notifier: job runs, compliance flips, stored values, quiet-hours zone, outbox fold key

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 05:40:00

Columns are added with plain ALTER TABLE (no batch mode): on SQLite a batch rebuild would drop the
tally triggers of migration 0004 (and neither table here has any).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "jobrun",
        sa.Column("name", _TEXT(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_started_at", _TIME(timezone=True), nullable=True),
        sa.Column("last_finished_at", _TIME(timezone=True), nullable=True),
        sa.Column("last_outcome", _TEXT(), nullable=True),
        sa.Column("last_detail", _TEXT(), nullable=True),
        sa.Column("last_success_at", _TIME(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "complianceflip",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _TIME(timezone=True), nullable=False),
        sa.Column("device_id", _TEXT(), nullable=False),
        sa.Column("owner_email", _TEXT(), nullable=False),
        sa.Column("became", _TEXT(), nullable=False),
        sa.Column("why", _TEXT(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_complianceflip_at", "complianceflip", ["at"], unique=False)
    op.create_table(
        "storedvalue",
        sa.Column("name", _TEXT(), nullable=False),
        sa.Column("value", _TEXT(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.add_column("quiethours", sa.Column("zone", _TEXT(), server_default="UTC", nullable=False))
    op.add_column("outboxmessage", sa.Column("fold_key", _TEXT(), nullable=True))
    op.create_index("ix_outbox_fold", "outboxmessage", ["fold_key", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_fold", table_name="outboxmessage")
    with op.batch_alter_table("outboxmessage") as batch_op:
        batch_op.drop_column("fold_key")
    with op.batch_alter_table("quiethours") as batch_op:
        batch_op.drop_column("zone")
    op.drop_table("storedvalue")
    op.drop_index("ix_complianceflip_at", table_name="complianceflip")
    op.drop_table("complianceflip")
    op.drop_table("jobrun")
