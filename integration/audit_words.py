"""An audit entry in words, as `audit` shows it: `connector heartbeat: 60 → 30 minutes`,
`notify threat-medium email: off → on`. JSON keeps the structured `before`/`after`."""

from collections.abc import Callable
from typing import Any

from integration.actions import Action
from storage.models import AuditEntry
from storage.states import AuditOutcome

Values = dict[str, Any]


def describe(entry: AuditEntry) -> str:
    before, after = entry.before or {}, entry.after or {}
    if entry.outcome == AuditOutcome.DENIED:
        attempted = after.get("command") or entry.action
        return f"{entry.action}: refused `{attempted}`"
    words = _WORDS.get(entry.action)
    return words(before, after) if words else _generic(entry.action, before, after)


def _value(value: Any, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if isinstance(value, list):
        return ", ".join(f'"{v}"' for v in value) or "none"
    return f"{value}{unit}"


def _field(label: str, key: str, unit: str = "") -> Callable[[Values, Values], str]:
    return lambda before, after: f"{label}: {_value(before.get(key))} → {_value(after.get(key), unit)}"


def _groups(before: Values, after: Values) -> str:
    old, new = before.get("groups") or [], after.get("groups") or []
    added = [g for g in new if g not in old]
    removed = [g for g in old if g not in new]
    parts = [f"added {_value(added)}"] if added else []
    parts += [f"removed {_value(removed)}"] if removed else []
    return f"connector enrollment groups: {'; '.join(parts) or 'unchanged'}"


def _risk(before: Values, after: Values) -> str:
    changes = [
        f"{name} {_value(old)} → {_value(after.get(name))}"
        for name, old in before.items()
        if name != "policy"
    ]
    if "policy" in before:
        changes.append(f"policy noncompliant at {before['policy']} → {after.get('policy')}")
    impact = after.get("impact") or {}
    effect = (
        f" ({_value(impact.get('newly_noncompliant'))} devices turned noncompliant, "
        f"{_value(impact.get('newly_compliant'))} compliant; "
        f"{_value(impact.get('open_threats'))} open threats re-rated)"
        if impact
        else ""
    )
    return f"risk: {', '.join(changes) or 'nothing'}{effect}"


def _notify(before: Values, after: Values) -> str:
    changes = [
        f"{category} {channel}: {_value(enabled)} → {_value(not enabled)}"
        for category, channels in sorted(before.items())
        for channel, enabled in sorted((channels or {}).items())
        if (after.get(category) or {}).get(channel) != enabled
    ]
    return "notify " + ("; ".join(changes) or "unchanged")


def _disconnected_days(before: Values, after: Values) -> str:
    return (
        f"disconnected status: {_value(before.get('disconnected_days'))} → "
        f"{_value(after.get('disconnected_days'))} days ({_value(after.get('disconnected'))} devices "
        f"turned disconnected, {_value(after.get('reconnected'))} protected again)"
    )


def _generic(action: str, before: Values, after: Values) -> str:
    keys = [*before, *(k for k in after if k not in before)]
    changes = [f"{key} {_value(before.get(key))} → {_value(after.get(key))}" for key in keys]
    return f"{action}: {'; '.join(changes) or 'done'}"


_WORDS: dict[str, Callable[[Values, Values], str]] = {
    Action.CONNECTOR_HEARTBEAT: _field("connector heartbeat", "heartbeat_minutes", " minutes"),
    Action.CONNECTOR_ERROR_EMAIL: _field("connector error e-mail", "error_email"),
    Action.CONNECTOR_DEVICE_SYNC: _field("connector device status sync", "device_status_sync"),
    Action.CONNECTOR_THREAT_SYNC: _field("connector threat status sync", "threat_status_sync"),
    Action.CONNECTOR_GROUP_ADD: _groups,
    Action.CONNECTOR_GROUP_REMOVE: _groups,
    Action.DISCONNECTED_DAYS: _disconnected_days,
    Action.SUBSCRIPTION_TENANT: _field("subscription tenant", "tenant_id"),
    Action.SUBSCRIPTION_FULL_GROUP: _field("subscription full-access group", "full_access_group_id"),
    Action.SUBSCRIPTION_RESTRICTED_GROUP: _field(
        "subscription restricted-access group", "restricted_access_group_id"
    ),
    Action.CONSENT: lambda before, after: f"subscription consent: granted by {after.get('by')}",
    Action.RISK_SET: _risk,
    Action.RISK_RESET: _risk,
    Action.POLICY_SET: _risk,
    Action.NOTIFY: _notify,
    Action.NOTIFY_QUIET: lambda before, after: (
        f"notify quiet hours: {_value(before.get('quiet')).replace('none', 'off')} → "
        f"{_value(after.get('quiet')).replace('none', 'off')}"
    ),
    Action.NOTIFY_TEST: lambda before, after: "notify test",
    Action.DEMO_SEED: lambda before, after: (
        f"demo tenant seeded: {_value(after.get('users'))} users, {_value(after.get('devices'))} devices "
        f"(seed {after.get('seed')})"
    ),
    Action.DEMO_THREAT: lambda before, after: (
        f"demo threat: {_value(after.get('count'))} × {after.get('classification')} on {after.get('device')}"
    ),
}
