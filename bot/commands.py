"""The typed commands the grammar produces; each says what permission it needs and whether it changes
anything (changes run in a write transaction, and refused changes are audited)."""

from dataclasses import dataclass
from typing import ClassVar

from integration.access import Permission
from integration.levels import RiskLevel


@dataclass(frozen=True)
class Command:
    permission: ClassVar[Permission] = Permission.READ
    changes: ClassVar[bool] = False
    what: ClassVar[str] = "use this command"  # completes "you cannot …"

    def needs(self) -> Permission:
        return self.permission


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


@dataclass(frozen=True)
class RiskReset(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change risk levels"
    classification: str | None  # None: all
    confirmed: bool = False


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


@dataclass(frozen=True)
class ConnectorGroup(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change enrollment groups"
    add: bool
    name: str


@dataclass(frozen=True)
class ConnectorSync(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change the connector's state sync"
    which: str  # device | threat
    on: bool


@dataclass(frozen=True)
class EnrollmentSettingsShow(Command):
    what = "see enrollment settings"


@dataclass(frozen=True)
class EnrollmentSettingsSet(Command):
    permission = Permission.CHANGE
    changes = True
    what = "change enrollment settings"
    disconnected_days: int


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


@dataclass(frozen=True)
class SubscriptionConsent(Command):
    permission = Permission.CONSENT
    changes = True
    what = "grant consent"


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


@dataclass(frozen=True)
class NotifyQuiet(Command):
    changes = True
    what = "have notification settings"
    span: tuple[str, str] | None


@dataclass(frozen=True)
class Audit(Command):
    permission = Permission.CHANGE  # full access only
    what = "read the audit log"
    limit: int = 10
