"""sources: a device's Intune identity and Intune's view of it (issue 9)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:40:00

`external_id` is Lookout's `device.info.external_id`, the Intune managed device id that joins Lookout's
device to Graph's `managedDevice`. The `intune_*` columns hold what Graph last said about the device
(complianceState, partnerReportedThreatState) so `status` can show both views and flag a disagreement.

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


def downgrade() -> None:
    op.drop_index("ix_device_external_id", table_name="device")
    for column in ("intune_seen_at", "intune_threat_state", "intune_compliance", "external_id"):
        op.drop_column("device", column)
