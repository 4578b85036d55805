"""Device counts the database keeps itself, so `enrollment` answers without counting every device.

Both tallies count every device (`group_id` "") and, separately, the devices of each directory group's
members. `DeviceTally`: how many devices are in each activation and protection state. `OpenThreatTally`:
of the activated, protected devices with an open threat, how many have each set of open-threat
classifications (`Device.open_classifications`) — a few thousand sets at most, so compliance under any
risk levels and policy is a sum over them. Triggers (migration 0004) keep both, and
`Device.open_classifications`, exact on every insert, update and delete of devices, threats, group
memberships, directory users and classifications, whichever code makes the change (storage/tally.py).
"""

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from storage.states import ActivationStatus, ProtectionStatus
from storage.types import StrEnumType

EVERY_DEVICE = ""  # the `group_id` of the counts over all devices


class DeviceTally(SQLModel, table=True):
    group_id: str = Field(primary_key=True)  # a DirectoryGroup id, or EVERY_DEVICE
    activation_status: ActivationStatus = Field(primary_key=True, sa_type=StrEnumType(ActivationStatus))
    protection_status: ProtectionStatus = Field(primary_key=True, sa_type=StrEnumType(ProtectionStatus))
    devices: int  # may reach 0 and stay: a row is not deleted when it empties


class OpenThreatTally(SQLModel, table=True):
    group_id: str = Field(primary_key=True)  # a DirectoryGroup id, or EVERY_DEVICE
    open_classifications: int = Field(primary_key=True, sa_type=BigInteger)  # never 0
    devices: int  # activated, protected devices with exactly these open classifications


class TallyPause(SQLModel, table=True):
    """A row here (only ever inside a bulk load's own transaction) makes the triggers skip their work;
    the loader stores its own counts before it commits (`storage.tally.paused`)."""

    id: int = Field(default=1, primary_key=True)
