"""Who may do what: console roles from group membership, and the consent gate (DESIGN.md §5)."""

from dataclasses import dataclass
from enum import Enum, StrEnum

from sqlalchemy import and_, bindparam, or_
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four entities
from sqlmodel import Session, col

from integration.errors import ConsentRequired, PermissionDenied
from integration.text import neutralise
from integration.validation import is_email, show
from storage.models import DirectoryGroup, DirectoryUser, GroupMembership, Subscription
from storage.prepared import Prepared


class UnknownUser(PermissionDenied):
    """The e-mail address is not a directory user's, so nothing can be allowed."""


class Role(StrEnum):
    FULL = "full"
    RESTRICTED = "restricted"
    NONE = "none"


class Permission(Enum):
    """What a command needs, from least to most."""

    ANYONE = "anyone"  # help
    OWN = "own"  # status me: any directory user, once consent is granted
    READ = "read"  # full or restricted
    CHANGE = "change"  # full
    SUBSCRIPTION = "subscription"  # full, or a global administrator (bootstrap)
    CONSENT = "consent"  # a global administrator


@dataclass(frozen=True)
class Actor:
    id: str
    email: str
    display_name: str
    is_global_admin: bool
    role: Role


CONSENT_INSTRUCTIONS = (
    "Lookout MES has not been granted consent for this tenant yet, so the console is closed "
    "(as in Lookout, every sign-in fails until then). A directory global administrator must run "
    "`subscription consent`. Until then only `help` and `subscription …` work."
)


# Built once: constructing a statement costs more than running it (status is answered in about a
# millisecond, and Slack's ack waits for it). Columns, not the Subscription entity: loading an ORM
# object tripled the cost of this query.
_SIGN_IN = Prepared(
    sa_select(
        col(Subscription.full_access_group_id),
        col(Subscription.restricted_access_group_id),
        col(Subscription.consent_granted),
        col(DirectoryUser.id),
        col(DirectoryUser.email),
        col(DirectoryUser.display_name),
        col(DirectoryUser.is_global_admin),
        col(GroupMembership.group_id),
    )
    .select_from(DirectoryUser)
    .join(Subscription, col(Subscription.id) == 1)
    .outerjoin(
        GroupMembership,
        and_(
            col(GroupMembership.user_id) == DirectoryUser.id,
            or_(
                col(GroupMembership.group_id) == Subscription.full_access_group_id,
                col(GroupMembership.group_id) == Subscription.restricted_access_group_id,
            ),
        ),
    )
    .where(col(DirectoryUser.email) == bindparam("address"))
)


@dataclass(frozen=True)
class ConsoleAccess:
    """What the subscription says about console access (the part of `Subscription` sign-in needs)."""

    full_access_group_id: str | None
    restricted_access_group_id: str | None
    consent_granted: bool


def sign_in(session: Session, email: str) -> tuple[Actor, ConsoleAccess]:
    """The directory user behind an e-mail address with their console role, and the subscription's
    access settings that decided it — one query."""
    address = email.strip().lower()
    if not is_email(address):  # also keeps NUL and other control characters away from the database
        raise UnknownUser(f"`{show(email)}` is not an e-mail address; act as a directory user's address.")
    rows = _SIGN_IN.all(session, {"address": address})
    if not rows:
        raise UnknownUser(
            f"`{show(email)}` is not a user in the directory, so mesbot cannot tell what you may do. "
            "Check the address, or ask an admin to sync the directory."
        )
    full, restricted, consent, user_id, user_email, display_name, is_global_admin, _ = rows[0]
    groups = {row[-1] for row in rows if row[-1] is not None}
    if full in groups:
        role = Role.FULL
    elif restricted in groups:
        role = Role.RESTRICTED
    else:
        role = Role.NONE
    actor = Actor(user_id, user_email, display_name, is_global_admin, role)
    return actor, ConsoleAccess(full, restricted, consent)


def authorize(
    session: Session, actor: Actor, needs: Permission, subscription: ConsoleAccess, what: str
) -> None:
    """Raise `ConsentRequired` or `PermissionDenied` (with how to fix it) unless `actor` may."""
    if needs is Permission.ANYONE:
        return
    if needs is Permission.CONSENT:
        if not actor.is_global_admin:
            raise PermissionDenied(
                f"Only a directory global administrator can {what}; you are not one. "
                "Ask a global administrator to run `subscription consent`."
            )
        return
    if needs is Permission.SUBSCRIPTION:
        if actor.role is not Role.FULL and not actor.is_global_admin:
            raise PermissionDenied(
                f"Only full-access users or a directory global administrator can {what}."
                + _how_to_get(session, subscription, Role.FULL)
            )
        return
    if not subscription.consent_granted:
        raise ConsentRequired(CONSENT_INSTRUCTIONS)
    if needs is Permission.OWN:
        return
    if needs is Permission.READ and actor.role in (Role.FULL, Role.RESTRICTED):
        return
    if needs is Permission.CHANGE and actor.role is Role.FULL:
        return
    if actor.role is Role.RESTRICTED:
        raise PermissionDenied(
            f"You have restricted (read-only) access, so you cannot {what}."
            + _how_to_get(session, subscription, Role.FULL)
        )
    raise PermissionDenied(
        f"You have no Lookout console access, so you cannot {what}; you can use `status me` and `help`."
        + _how_to_get(session, subscription, Role.FULL if needs is Permission.CHANGE else None)
    )


def _how_to_get(session: Session, subscription: ConsoleAccess, role: Role | None) -> str:
    ids = (
        [subscription.full_access_group_id]
        if role is Role.FULL
        else [subscription.full_access_group_id, subscription.restricted_access_group_id]
    )
    names = [_group_label(session, gid) for gid in ids if gid]
    if not names:
        return " No console access group is configured yet (`subscription set full-group GUID`)."
    return f" Ask an admin to add you to {' or '.join(names)}."


def _group_label(session: Session, group_id: str) -> str:
    group = session.get(DirectoryGroup, group_id)
    # the name comes from the directory: shown, never obeyed (a newline must not forge a line)
    return f'"{neutralise(group.name)}"' if group else f"the group {neutralise(group_id)}"
