"""The demo directory: groups, users (the fixed identities among them) and memberships, drawn in order.

What the fleet needs afterwards — who may own devices, and each owner's groups — is kept compactly
(one byte of group bits per owner). Users are loaded sorted by e-mail with ascending ids, so both of
their indexes (and each group's memberships) are appended to in order rather than at random; "All Staff"
(everyone) is filled by the database from the users, not row by row from here.
"""

import random
from dataclasses import dataclass
from typing import Any

from integration.demo import data
from integration.demo.draws import ascending_guids, guid, pick
from storage.bulk import Loader, table_of
from storage.models import DirectoryGroup, DirectoryUser, GroupMembership

BATCH = 20_000
GROUPS = (data.FULL_GROUP, data.RESTRICTED_GROUP, data.PILOT_GROUP, data.MOBILE_GROUP, *data.OTHER_GROUPS)
FIXED = (  # e-mail, name, global admin, groups
    (data.ADMIN, "Ada Admin", True, (data.FULL_GROUP, data.PILOT_GROUP)),
    (data.ANALYST, "Anil Analyst", False, (data.RESTRICTED_GROUP, data.PILOT_GROUP)),
    (data.ALICE, "Alice Andersson", False, (data.PILOT_GROUP,)),
)
MIN_USERS = len(FIXED)
_BIT = {name: 1 << n for n, name in enumerate(GROUPS)}  # eight groups: one byte per user
_OWNING = _BIT[data.PILOT_GROUP] | _BIT[data.MOBILE_GROUP]  # enrollment groups: their users own devices


@dataclass(frozen=True)
class Directory:
    group_ids: dict[str, str]  # name → id
    owners: list[str]  # e-mails of the users in an enrollment group (who may own devices), fixed first
    owner_groups: bytearray  # per owner: the groups they are in, as bits of GROUPS

    def groups_of(self, bits: int) -> list[str]:
        """The ids of the groups in a byte of `owner_groups`."""
        return [self.group_ids[name] for name in GROUPS if bits & _BIT[name]]


def build(loader: Loader, rng: random.Random, users: int) -> Directory:
    """Draw and load the groups, `users` users (at least the three fixed ones) and their memberships."""
    group_ids = {name: guid(rng) for name in GROUPS}
    loader.load(DirectoryGroup, ("id", "name"), [(gid, name) for name, gid in group_ids.items()])
    people = [(email, name, admin, _bits(groups)) for email, name, admin, groups in FIXED]
    first_names, last_names, others = data.FIRST_NAMES, data.LAST_NAMES, data.OTHER_GROUPS[1:]
    for n in range(len(FIXED), users):
        first, last = pick(rng, first_names), pick(rng, last_names)
        bits = _BIT[data.ALL_STAFF]
        roll = rng.random()
        if roll < 0.90:
            bits |= _BIT[data.PILOT_GROUP if roll < 0.06 else data.MOBILE_GROUP]
        if rng.random() < 0.3:
            bits |= _BIT[pick(rng, others)]
        people.append((f"{first}.{last}.{n}@{data.DOMAIN}".lower(), f"{first} {last}", False, bits))
    people.sort()
    owners, owner_groups = [email for email, *_ in FIXED], bytearray(_bits(g) for *_, g in FIXED)
    fixed = {email for email, *_ in FIXED}
    user_rows: list[tuple[Any, ...]] = []
    membership_rows: list[tuple[str, str]] = []
    listed = [(name, group_ids[name], _BIT[name]) for name in GROUPS if name != data.ALL_STAFF]
    for (email, name, admin, bits), user_id in zip(people, ascending_guids(rng, users), strict=True):
        user_rows.append((user_id, email, name, admin))
        membership_rows.extend((group_id, user_id) for _, group_id, bit in listed if bits & bit)
        if bits & _OWNING and email not in fixed:
            owners.append(email)
            owner_groups.append(bits)
        if len(user_rows) >= BATCH:
            _load(loader, user_rows, membership_rows)
            user_rows, membership_rows = [], []  # new lists: the loader may still be writing the old
    _load(loader, user_rows, membership_rows)
    memberships, directory_users = table_of(GroupMembership).name, table_of(DirectoryUser).name
    loader.execute(
        f"INSERT INTO {memberships} (group_id, user_id) SELECT '{group_ids[data.ALL_STAFF]}', id "
        f"FROM {directory_users}"
    )
    return Directory(group_ids, owners, owner_groups)


def _bits(groups: tuple[str, ...]) -> int:
    return sum(_BIT[group] for group in {data.ALL_STAFF, *groups})


def _load(loader: Loader, users: list[tuple[Any, ...]], memberships: list[tuple[str, str]]) -> None:
    loader.load(DirectoryUser, ("id", "email", "display_name", "is_global_admin"), users)
    loader.load(GroupMembership, ("group_id", "user_id"), memberships)
