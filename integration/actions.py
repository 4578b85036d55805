"""The audit log's action names, in one place: an applied change and a refused attempt at the
same command are recorded under the same name (`bot.commands` and the rules both use these)."""

from enum import StrEnum


class Action(StrEnum):
    RISK_SET = "risk.set"
    RISK_RESET = "risk.reset"
    POLICY_SET = "policy.set"
    CONNECTOR_HEARTBEAT = "connector.heartbeat_minutes"
    CONNECTOR_ERROR_EMAIL = "connector.error_email"
    CONNECTOR_DEVICE_SYNC = "connector.device_status_sync"
    CONNECTOR_THREAT_SYNC = "connector.threat_status_sync"
    CONNECTOR_GROUP_ADD = "connector.groups.add"
    CONNECTOR_GROUP_REMOVE = "connector.groups.remove"
    DISCONNECTED_DAYS = "enrollment.disconnected_days"
    SUBSCRIPTION_TENANT = "subscription.tenant"
    SUBSCRIPTION_FULL_GROUP = "subscription.full-group"
    SUBSCRIPTION_RESTRICTED_GROUP = "subscription.restricted-group"
    CONSENT = "subscription.consent"
    NOTIFY = "notify"
    NOTIFY_QUIET = "notify.quiet"
    NOTIFY_TEST = "notify.test"
    DEMO_SEED = "demo.seed"
    DEMO_THREAT = "demo.threat"


def connector_field(field: str) -> Action:
    """`heartbeat_minutes`, `error_email`, `device_status_sync`, `threat_status_sync`."""
    return Action(f"connector.{field}")


def subscription_field(which: str) -> Action:
    """`tenant`, `full-group`, `restricted-group`."""
    return Action(f"subscription.{which}")


def group_change(add: bool) -> Action:
    return Action.CONNECTOR_GROUP_ADD if add else Action.CONNECTOR_GROUP_REMOVE
