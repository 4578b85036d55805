"""`subscription …`: tenant and console access groups, and consent by a global administrator."""

from typing import Any

from bot.commands import SubscriptionConsent, SubscriptionSet, SubscriptionShow
from bot.handlers.context import Request
from bot.reply import Reply
from integration import subscription
from integration.text import neutralise as n


def show(command: SubscriptionShow, request: Request) -> Reply:
    return _reply(request, None)


def set_field(command: SubscriptionSet, request: Request) -> Reply:
    changed = subscription.set_field(
        request.session, command.which, command.value, actor=request.actor.email, at=request.now
    )
    return _reply(
        request, f"Updated {command.which}." if changed else f"{command.which} is already set that way."
    )


def consent(command: SubscriptionConsent, request: Request) -> Reply:
    granted = subscription.grant_consent(request.session, actor=request.actor.email, at=request.now)
    note = (
        "Consent granted: the console is open to the full-access and restricted-access groups."
        if granted
        else "Consent was already granted."
    )
    return _reply(request, note)


def _reply(request: Request, note: str | None) -> Reply:
    data = subscription.snapshot(request.session)
    consent = data["consent"]
    lines = [note] if note else []
    lines += [
        f"Tenant directory ID: {data['tenant_id'] or 'not set'}",
        f"Full-access group: {_group(data['full_access_group'])}",
        f"Restricted-access group: {_group(data['restricted_access_group'])}",
        f"Consent: granted by {n(consent['by'])} at {consent['at']}"
        if consent["granted"]
        else "Consent: not granted (a global administrator runs `subscription consent`)",
    ]
    return Reply(ok=True, text="\n".join(lines), data={"subscription": data}, command="subscription")


def _group(group: dict[str, Any] | None) -> str:
    if group is None:
        return "not set"
    if not group["name"]:
        return f"{group['id']} (not in the directory)"
    return f'"{n(group["name"])}" ({group["id"]})'
