"""sources: a device's Intune identity and Intune's view of it; the severities the source reports (issue 9)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:40:00

`external_id` is Lookout's `device.info.external_id`, the Intune managed device id that joins Lookout's
device to Graph's `managedDevice`. The `intune_*` columns hold what Graph last said about the device
(complianceState, partnerReportedThreatState) so `status` can show both views and flag a disagreement.

`reportedseverity` keeps, per classification, the severity the source last reported (Lookout's console
policy as its threats show it), for policy drift (DESIGN §8).

Columns are added with plain ALTER TABLE (no batch mode): on SQLite a batch rebuild of `device` would
drop the tally triggers of migration 0004.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = storage.types.UTCDateTime


def upgrade() -> None:
    op.add_column("device", sa.Column("external_id", _TEXT(), nullable=True))
    op.add_column("device", sa.Column("intune_compliance", _TEXT(), nullable=True))
    op.add_column("device", sa.Column("intune_threat_state", _TEXT(), nullable=True))
    op.add_column("device", sa.Column("intune_seen_at", _TIME(timezone=True), nullable=True))
    op.create_index("ix_device_external_id", "device", ["external_id"], unique=False)
    op.create_table(
        "reportedseverity",
        sa.Column("classification", _TEXT(), nullable=False),
        sa.Column("risk", _TEXT(), nullable=False),
        sa.Column("seen_at", _TIME(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("classification"),
    )


def downgrade() -> None:
    op.drop_table("reportedseverity")
    op.drop_index("ix_device_external_id", table_name="device")
    for column in ("intune_seen_at", "intune_threat_state", "intune_compliance", "external_id"):
        op.drop_column("device", column)
