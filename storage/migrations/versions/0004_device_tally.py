"""device tallies: counts by state and by open-threat classifications, per group, kept by triggers

Revision ID: 0004
Revises: 0002 (0003, pending Slack previews, is on another branch: re-chain this onto it at merge)
Create Date: 2026-11-27 02:00:00

`enrollment` counted every device on each call (90 ms at 1,000,000 devices, 6-7 s with a group).
The database now keeps the counts itself (storage/models/tally.py): triggers on every table a count
depends on, so no code path can forget them. SQLite has row triggers only; on PostgreSQL the device,
threat and membership triggers are per statement over transition tables, so a sweep that moves 50,000
devices updates the tally in one grouped statement. The SQL is in storage/migrations/tally_0004.py,
frozen with this migration: later ones that change the tally write their own.

Beware: on SQLite, Alembic's batch mode rebuilds a table by copying it, which drops its triggers; a
later migration that batch-alters `device`, `threat`, `groupmembership`, `directoryuser` or
`classification` must create this migration's triggers again (tests/storage/test_tally.py notices).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.migrations import tally_0004 as sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "device",
        sa.Column("open_classifications", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column("classification", sa.Column("bit", sa.BigInteger(), nullable=True))
    classification = sa.table("classification", sa.column("name", sa.String), sa.column("bit", sa.BigInteger))
    bind = op.get_bind()
    names = bind.execute(sa.select(classification.c.name).order_by(classification.c.name)).scalars().all()
    for index, name in enumerate(names):
        op.execute(classification.update().where(classification.c.name == name).values(bit=1 << index))
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.alter_column("bit", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index(batch_op.f("ix_classification_bit"), ["bit"], unique=True)
    # covering, so SQLite's planner prefers it to ix_threat_status_class_device for one device's threats
    op.drop_index("ix_threat_device_status", table_name="threat")
    op.create_index("ix_threat_device_status_class", "threat", ["device_id", "status", "classification"])
    op.create_table(
        "devicetally",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("activation_status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("protection_status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "activation_status", "protection_status"),
    )
    op.create_table(
        "openthreattally",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("open_classifications", sa.BigInteger(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "open_classifications"),
    )
    op.create_table(
        "tallypause", sa.Column("id", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id")
    )
    dialect = bind.dialect.name
    bits = sql.SQLITE_BITS if dialect == "sqlite" else sql.PG_BITS
    op.execute(f"UPDATE device SET open_classifications = {bits} WHERE id IN (SELECT device_id FROM threat)")
    sql.fill(op.execute)
    sql.create(op.execute, dialect)


def downgrade() -> None:
    sql.drop(op.execute, op.get_bind().dialect.name)
    op.drop_index("ix_threat_device_status_class", table_name="threat")
    op.create_index("ix_threat_device_status", "threat", ["device_id", "status"])
    op.drop_table("tallypause")
    op.drop_table("openthreattally")
    op.drop_table("devicetally")
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_classification_bit"))
        batch_op.drop_column("bit")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("open_classifications")
