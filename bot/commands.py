"""The typed commands the grammar produces; each says what permission it needs and whether it changes
anything (changes run in a write transaction, and refused changes are audited under the same
`action` name an applied one gets)."""

from dataclasses import dataclass
from typing import ClassVar

from integration import actions
from integration.access import Permission
from integration.actions import Action
from integration.levels import RiskLevel


@dataclass(frozen=True)
class Command:
    permission: ClassVar[Permission] = Permission.READ
    changes: ClassVar[bool] = False
    what: ClassVar[str] = "use this command"  # completes "you cannot …"

    def needs(self) -> Permission:
        return self.permission

    @property
    def action(self) -> Action | None:
        """The audit log's name for this change (None: a read, never audited)."""
        return None


@dataclass(frozen=True)
class Help(Command):
    permission = Permission.ANYONE
    topic: str | None = None


@dataclass(frozen=True)
class Status(Command):
    what = "look up other people's devices"
    target: str  # "me", an e-mail address or a device ID

    @property
    def is_me(self) -> bool:
        return self.target == "me"

    def needs(self) -> Permission:
        return Permission.OWN if self.is_me else Permission.READ


@dataclass(frozen=True)
class Enrollment(Command):
    what = "see enrollment status"
    state: str | None = None  # pending | disconnected
    group: str | None = None


@dataclass(frozen=True)
class RiskList(Command):
    what = "see risk levels"


@dataclass(frozen=True)
class RiskSet(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change risk levels"
    classification: str
    level: RiskLevel
    confirmed: bool = False

    @property
    def action(self) -> Action:
        return Action.RISK_SET


@dataclass(frozen=True)
class RiskReset(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change risk levels"
    classification: str | None  # None: all
    confirmed: bool = False

    @property
    def action(self) -> Action:
        return Action.RISK_RESET


@dataclass(frozen=True)
class PolicyShow(Command):
    what = "see the compliance policy"


@dataclass(frozen=True)
class PolicySet(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change the compliance policy"
    level: RiskLevel
    confirmed: bool = False

    @property
    def action(self) -> Action:
        return Action.POLICY_SET


@dataclass(frozen=True)
class ConnectorShow(Command):
    what = "see the connector"


@dataclass(frozen=True)
class ConnectorSet(Command):
    """`connector set heartbeat N` / `connector set error-email ADDRESS`."""

    permission = Permission.CHANGE
    changes = True
    what = "change the connector"
    field: str  # heartbeat_minutes | error_email
    value: int | str

    @property
    def action(self) -> Action:
        return actions.connector_field(self.field)


@dataclass(frozen=True)
class ConnectorGroup(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change enrollment groups"
    add: bool
    name: str

    @property
    def action(self) -> Action:
        return actions.group_change(self.add)


@dataclass(frozen=True)
class ConnectorSync(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change the connector's state sync"
    which: str  # device | threat
    on: bool

    @property
    def action(self) -> Action:
        return actions.connector_field(f"{self.which}_status_sync")


@dataclass(frozen=True)
class EnrollmentSettingsShow(Command):
    what = "see enrollment settings"


@dataclass(frozen=True)
class EnrollmentSettingsSet(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change enrollment settings"
    disconnected_days: int

    @property
    def action(self) -> Action:
        return Action.DISCONNECTED_DAYS


@dataclass(frozen=True)
class SubscriptionShow(Command):
    permission = Permission.SUBSCRIPTION
    what = "see the subscription"


@dataclass(frozen=True)
class SubscriptionSet(Command):
    permission = Permission.SUBSCRIPTION
    changes = True
    what = "change the subscription"
    which: str  # tenant | full-group | restricted-group
    value: str  # a GUID or "none" (validated by the rule)

    @property
    def action(self) -> Action:
        return actions.subscription_field(self.which)


@dataclass(frozen=True)
class SubscriptionConsent(Command):
    permission = Permission.CONSENT
    changes = True
    what = "grant consent"

    @property
    def action(self) -> Action:
        return Action.CONSENT


@dataclass(frozen=True)
class NotifyShow(Command):
    what = "have notification settings"


@dataclass(frozen=True)
class NotifySet(Command):
    changes = True
    what = "have notification settings"
    categories: tuple[str, ...]
    channels: tuple[str, ...]
    on: bool

    @property
    def action(self) -> Action:
        return Action.NOTIFY


@dataclass(frozen=True)
class NotifyQuiet(Command):
    changes = True
    what = "have notification settings"
    span: tuple[str, str] | None
    zone: str | None = None  # IANA name; None: the Slack profile's time zone, else UTC

    @property
    def action(self) -> Action:
        return Action.NOTIFY_QUIET


@dataclass(frozen=True)
class NotifyTest(Command):
    changes = True  # it queues the test messages
    what = "have notifications"

    @property
    def action(self) -> Action:
        return Action.NOTIFY_TEST


@dataclass(frozen=True)
class Audit(Command):
    permission = Permission.CHANGE  # full access only
    what = "read the audit log"
    limit: int = 10
