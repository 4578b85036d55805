"""`status me|EMAIL|DEVICE_ID`: a device's state, compliance, open threats, and why it is blocked."""

from typing import Any

from bot.commands import Status
from bot.handlers.context import Request
from bot.reply import Reply
from integration import devices, tenant
from integration.devices import DeviceStatus
from integration.errors import NotFound
from integration.text import neutralise as n
from integration.validation import show
from storage.states import ProtectionStatus


def handle(command: Status, request: Request) -> Reply:
    session = request.session
    policy = tenant.policy_level(session)
    if "@" in command.target or command.is_me:
        email = request.actor.email if command.is_me else command.target
        found = devices.by_owner(session, email, policy)
        subject = "You have" if command.is_me else f"{email} has"
    else:
        one = devices.by_id(session, command.target, policy)
        if one is None:
            raise NotFound(
                f"No device has the ID `{show(command.target)}`. "
                "Check the ID, or look up its owner by e-mail."
            )
        found, subject = [one], ""
    # the threshold is only quoted for a disconnected device: skip the query otherwise
    disconnected = any(s.device.protection_status == ProtectionStatus.DISCONNECTED for s in found)
    days = tenant.disconnected_days(session) if disconnected else 0
    rows = [_device_data(status, devices.reason(status, policy, days)) for status in found]
    if not found:
        text = (
            f"{subject} no devices in Lookout. "
            "Devices appear (as pending) once the owner is in an enrollment group."
        )
    else:
        count = f"{len(found)} device{'s' if len(found) != 1 else ''}"
        header = f"{subject} {count}:" if subject else "Device:"
        text = "\n".join([header, *(_device_text(row) for row in rows)])
    return Reply(ok=True, text=text, data={"devices": rows}, command="status")


def _device_data(status: DeviceStatus, reason: str) -> dict[str, Any]:
    d = status.device
    return {
        "id": d.id,
        "name": d.name,
        "owner": d.owner_email,
        "platform": d.platform,
        "activation": d.activation_status,
        "protection": d.protection_status,
        "security": status.security,
        "compliance": status.compliance,
        "reason": reason,
        "last_checkin": tenant.stamp(d.checkin_time),
        "open_threats": [
            {
                "id": t.threat.id,
                "classification": t.threat.classification,
                "risk": t.risk.value,
                "detected_at": tenant.stamp(t.threat.detected_at),
                "app": t.threat.app_name,
            }
            for t in status.open_threats
        ],
        "intune": _intune_data(status),
    }


def _intune_data(status: DeviceStatus) -> dict[str, Any] | None:
    """Intune's view (Lookout mode; None until Graph has reported the device, and in the demo)."""
    view = status.intune
    if view is None:
        return None
    return {
        "compliance": view.compliance,
        "threat_state": view.threat_state,
        "seen_at": tenant.stamp(view.seen_at),
        "sync_lag": view.sync_lag is not None,
        "disagreement": view.sync_lag,
        "note": view.note,
    }


def _device_text(row: dict[str, Any]) -> str:
    """Every value from the source is neutralised here: a newline in a device name must not start a
    line of its own (front ends neutralise each line, so they cannot catch that)."""
    lines = [
        f"• {n(row['name'] or 'Unnamed device')} · {n(row['platform'])} · {n(row['id'])}",
        f"  {n(row['activation'].lower())}, {n(row['protection'].lower())}, "
        f"{n(row['security'].lower())} → {row['compliance'].upper()} · "
        f"last check-in {row['last_checkin'] or 'never'}",
        f"  {n(row['reason'])}",
    ]
    intune = row["intune"]
    if intune is not None:
        when = f"Intune last reported {intune['seen_at']}" if intune["seen_at"] else "never reported"
        said, threat = n(intune["compliance"]), n(intune["threat_state"])
        lines.append(f"  Intune: {said}, threat level from Lookout {threat} ({when})")
        if intune["sync_lag"]:
            lines.append(f"  ⚠ Intune has not caught up (sync lag): {n(intune['disagreement'])}.")
        if intune["note"]:
            lines.append(f"  {intune['note']}")
    for threat in row["open_threats"]:
        app = f' "{n(threat["app"])}"' if threat["app"] else ""
        lines.append(
            f"  - {n(threat['classification'])} ({threat['risk']}){app} detected {threat['detected_at']}"
        )
    return "\n".join(lines)
