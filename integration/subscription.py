"""The Lookout subscription: tenant, console access groups, and the global administrator's consent."""

from datetime import datetime
from typing import Any

from sqlmodel import Session

from integration import actions, audit, tenant
from integration.actions import Action
from integration.errors import InvalidInput
from integration.validation import guid
from storage.models import DirectoryGroup

FIELDS = {
    "tenant": ("tenant_id", "Tenant directory ID"),
    "full-group": ("full_access_group_id", "Full-access group object ID"),
    "restricted-group": ("restricted_access_group_id", "Restricted-access group object ID"),
}
OPTIONAL = {"restricted-group"}


def snapshot(session: Session) -> dict[str, Any]:
    sub = tenant.subscription(session)
    return {
        "tenant_id": sub.tenant_id,
        "full_access_group": _group(session, sub.full_access_group_id),
        "restricted_access_group": _group(session, sub.restricted_access_group_id),
        "consent": {
            "granted": sub.consent_granted,
            "by": sub.consent_by,
            "at": tenant.stamp(sub.consent_at),
        },
    }


def _group(session: Session, group_id: str | None) -> dict[str, str | None] | None:
    if group_id is None:
        return None
    group = session.get(DirectoryGroup, group_id)
    return {"id": group_id, "name": group.name if group else None}


def set_field(session: Session, which: str, text: str, *, actor: str, at: datetime) -> bool:
    """Set the tenant or an access group by GUID (`none` clears the optional restricted group)."""
    field, label = FIELDS[which]
    if text.strip().lower() == "none":
        if which not in OPTIONAL:
            raise InvalidInput(f"{label} is required and cannot be `none`; give a GUID.")
        value = None
    else:
        value = guid(label, text)
    sub = tenant.subscription(session)
    return audit.set_field(
        session, sub, field, value, action=actions.subscription_field(which), actor=actor, at=at
    )


def grant_consent(session: Session, *, actor: str, at: datetime) -> bool:
    """Record the global administrator's consent; False when it was already granted."""
    sub = tenant.subscription(session)
    if sub.consent_granted:
        return False
    sub.consent_granted, sub.consent_by, sub.consent_at = True, actor, at
    session.add(sub)
    audit.record(
        session,
        at=at,
        actor=actor,
        change=audit.Change(Action.CONSENT, {"granted": False}, {"granted": True, "by": actor}),
    )
    return True
