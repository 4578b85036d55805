"""The Intune connector's settings: heartbeat, enrollment groups, state sync, error e-mail."""

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from integration import actions, audit, connector_errors, tenant
from integration.actions import Action
from integration.enrollment import find_group
from integration.errors import InvalidInput
from integration.validation import show
from storage.models import EnrollmentGroup

SYNC_FIELDS = {"device": "device_status_sync", "threat": "threat_status_sync"}


def groups(session: Session) -> list[str]:
    return list(session.exec(select(EnrollmentGroup.name).order_by(col(EnrollmentGroup.added_at))).all())


def snapshot(session: Session) -> dict[str, Any]:
    """The connector as `connector` shows it (DESIGN.md §5), open errors included."""
    connector = tenant.connector(session)
    return {
        "heartbeat_minutes": connector.heartbeat_minutes,
        "enrollment_groups": groups(session),
        "device_status_sync": connector.device_status_sync,
        "threat_status_sync": connector.threat_status_sync,
        "error_email": connector.error_email,
        "state": connector.state,
        "last_heartbeat": tenant.stamp(connector.last_heartbeat),
        "errors": [
            {
                "fingerprint": e.fingerprint,
                "message": e.message,
                "count": e.count,
                "first_seen": tenant.stamp(e.first_seen),
                "last_seen": tenant.stamp(e.last_seen),
            }
            for e in connector_errors.open_errors(session)
        ],
    }


def set_field(session: Session, field: str, value: Any, *, actor: str, at: datetime) -> bool:
    """Set one connector field; returns False (and writes nothing) when it already had that value."""
    connector = tenant.connector(session)
    return audit.set_field(
        session, connector, field, value, action=actions.connector_field(field), actor=actor, at=at
    )


def set_sync(session: Session, which: str, on: bool, *, actor: str, at: datetime) -> bool:
    """Turn device or threat status sync on or off. Off is recorded as a connector error:
    Lookout requires both to be on, or Intune gets stale state."""
    changed = set_field(session, SYNC_FIELDS[which], on, actor=actor, at=at)
    fingerprint = f"sync-off:{which}"
    if on:
        connector_errors.resolve(session, fingerprint, at)
    elif changed:
        connector_errors.record(
            session,
            fingerprint,
            f"{which.capitalize()} status sync is off: Intune no longer gets Lookout's {which} state. "
            "Both syncs must be on.",
            at,
        )
    return changed


def add_group(session: Session, name: str, *, actor: str, at: datetime) -> str:
    group = find_group(session, name)  # exact name, or an error naming the case-variant
    if session.get(EnrollmentGroup, group.name) is not None:
        raise InvalidInput(f'"{show(group.name)}" is already an enrollment group.')
    before = groups(session)
    session.add(EnrollmentGroup(name=group.name, added_at=at))
    audit.record(
        session,
        at=at,
        actor=actor,
        change=audit.Change(
            Action.CONNECTOR_GROUP_ADD, {"groups": before}, {"groups": [*before, group.name]}
        ),
    )
    return group.name


def remove_group(session: Session, name: str, *, actor: str, at: datetime) -> str:
    row = session.get(EnrollmentGroup, name)
    if row is None:
        current = groups(session)
        near = [g for g in current if g.lower() == name.lower()]
        hint = f' Group names are case-sensitive: did you mean "{show(near[0])}"?' if near else ""
        listed = ", ".join(f'"{show(g)}"' for g in current) or "none"
        raise InvalidInput(f'"{show(name)}" is not an enrollment group (they are: {listed}).{hint}')
    before = groups(session)
    session.delete(row)
    audit.record(
        session,
        at=at,
        actor=actor,
        change=audit.Change(
            Action.CONNECTOR_GROUP_REMOVE,
            {"groups": before},
            {"groups": [g for g in before if g != name]},
        ),
    )
    return name
