"""The connector's periodic work (DESIGN §8): heartbeat, enrollment scan, disconnected sweep.

Each function runs in the caller's transaction and returns a one-line summary for `jobs` and the log.
Failures they find become connector errors (integration/connector_errors.py), announced once.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from integration import connector_errors, credentials, drift, enrollment, sync, tenant
from integration.alerts import AlertPolicy
from integration.errors import NotFound
from integration.sync import DeviceReport
from integration.tenant import stamp
from storage.models import Device, DirectoryGroup, DirectoryUser, EnrollmentGroup, GroupMembership
from storage.states import ActivationStatus, Platform

MISSED_HEARTBEAT = "heartbeat:missed"
_PENDING_NAMESPACE = uuid.UUID("6f1d0c52-4f7e-4e0b-9a52-0c9b1f6d2a10")


@dataclass(frozen=True)
class AppKey:
    """The Lookout application key, for its age check (integration/credentials.py)."""

    key: str = field(repr=False)  # the secret itself: never logged, only hashed
    created: date | None = None


def heartbeat(session: Session, now: datetime, *, app_key: AppKey | None = None) -> str:
    """Record this period's heartbeat; a gap longer than two periods is a connector error. Each
    heartbeat also brings the policy-drift errors in step with the catalogue (a `risk set` may have
    made or mended drift) and, in Lookout mode, checks the application key's age."""
    connector = tenant.connector(session)
    period = timedelta(minutes=connector.heartbeat_minutes)
    last = connector.last_heartbeat
    missed = last is not None and now - last > 2 * period
    if missed:
        assert last is not None
        connector_errors.record(
            session,
            MISSED_HEARTBEAT,
            f"Missed heartbeats: none between {stamp(last)} and {stamp(now)} "
            f"(expected every {connector.heartbeat_minutes} minutes). Was the worker down?",
            now,
        )
    else:
        connector_errors.resolve(session, MISSED_HEARTBEAT, now)
    connector.last_heartbeat = now
    session.add(connector)
    notes = [f"heartbeat recorded{' after a gap (connector error)' if missed else ''}"]
    if drifts := drift.check(session, now):
        notes.append(f"{len(drifts)} classification(s) drift from Lookout's console policy")
    if app_key is not None:
        expires = credentials.check_key(session, app_key.key, app_key.created, now)
        notes.append(f"Lookout application key expires {stamp(expires)}")
    return "; ".join(notes)


def enrollment_scan(session: Session, now: datetime, policy: AlertPolicy | None = None) -> str:
    """Members of the enrollment groups without a device become pending devices; a group the directory
    does not have is a connector error (naming the group that differs only in case, if any)."""
    names = list(session.exec(select(EnrollmentGroup.name)).all())
    groups: list[DirectoryGroup] = []
    for name in names:
        fingerprint = f"enrollment-group:{name}"
        try:
            groups.append(enrollment.find_group(session, name))
        except NotFound as error:
            connector_errors.record(session, fingerprint, f"Enrollment group: {error}", now)
        else:
            connector_errors.resolve(session, fingerprint, now)
    if not groups:
        return f"no enrollment group to scan ({len(names)} configured, none found)"
    members = (
        select(DirectoryUser.id, DirectoryUser.email)
        .join(GroupMembership, col(GroupMembership.user_id) == DirectoryUser.id)
        .where(col(GroupMembership.group_id).in_([g.id for g in groups]))
        .where(~select(Device.id).where(Device.owner_email == DirectoryUser.email).exists())
        .distinct()
        .order_by(col(DirectoryUser.id))
    )
    reports = [
        DeviceReport(
            id=str(uuid.uuid5(_PENDING_NAMESPACE, user_id)),
            owner_email=email,
            platform=Platform.IOS if uuid.uuid5(_PENDING_NAMESPACE, user_id).int % 2 else Platform.ANDROID,
            activation_status=ActivationStatus.PENDING,
            enrolled_at=now,
        )
        for user_id, email in session.exec(members).all()
    ]
    applied = sync.apply(session, reports, now=now, policy=policy)
    return f"{len(groups)} group(s) scanned, {applied.devices_added} member(s) added as pending devices"


def disconnected_sweep(session: Session, now: datetime) -> str:
    days = tenant.enrollment_settings(session).disconnected_days
    result = enrollment.sweep(session, now, days)
    return (
        f"{result.disconnected} disconnected, {result.reconnected} reconnected "
        f"(after {days} days without a check-in), {result.flips} compliance flip(s)"
    )
