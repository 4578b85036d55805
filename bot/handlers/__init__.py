"""One handler per command: parse → typed command → handler (calls `integration`) → `Reply`."""

from collections.abc import Callable
from typing import Any

from bot import commands as c
from bot.handlers import audit, connector, enrollment, help, notify, risk, status, subscription
from bot.handlers.context import Request
from bot.reply import Reply

Handler = Callable[[Any, Request], Reply]

HANDLERS: dict[type[c.Command], Handler] = {
    c.Help: help.handle,
    c.Status: status.handle,
    c.Enrollment: enrollment.handle,
    c.EnrollmentSettingsShow: enrollment.show_settings,
    c.EnrollmentSettingsSet: enrollment.set_settings,
    c.RiskList: risk.risk_list,
    c.RiskSet: risk.risk_set,
    c.RiskReset: risk.risk_reset,
    c.PolicyShow: risk.policy_show,
    c.PolicySet: risk.policy_set,
    c.ConnectorShow: connector.show,
    c.ConnectorSet: connector.set_field,
    c.ConnectorGroup: connector.group,
    c.ConnectorSync: connector.sync,
    c.SubscriptionShow: subscription.show,
    c.SubscriptionSet: subscription.set_field,
    c.SubscriptionConsent: subscription.consent,
    c.NotifyShow: notify.show,
    c.NotifySet: notify.set_preferences,
    c.NotifyQuiet: notify.quiet,
    c.NotifyTest: notify.test,
    c.Audit: audit.handle,
}
