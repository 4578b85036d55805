"""The "Turn off these alerts" button of a Slack alert. Its value is a signed token naming the
recipient and the category (`notifications.unsubscribe.make_token`, channel `slack`: the scheme of the
mail's one-click link); a click turns that category off on Slack only when the clicking Slack user's
directory e-mail is the token's user, so a forwarded or shared
alert cannot turn off someone else's alerts, and a forged value changes nothing. The change is the
user's own `notify CATEGORY off slack` (audited); a click is applied once (its `trigger_id` is claimed
in the change's transaction, so a replayed request changes nothing)."""

import asyncio
import enum
import logging
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from sqlmodel import select

from bot.reply import Reply
from bot.slack.actions import Click, answer_click, parse_click
from bot.slack.answer import Ack
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices
from integration import audit, preferences
from integration.actions import Action
from notifications import unsubscribe
from notifications.slack_blocks import TURN_OFF_ACTION
from storage import claims
from storage.engine import Store
from storage.errors import StoreError
from storage.models import DirectoryUser
from storage.states import AuditOutcome

log = logging.getLogger(__name__)
FORGED = "That button is not one mesbot made; nothing was changed."
NOT_YOURS = (
    "This button turns off alerts for the person the alert was sent to, not for you; nothing was changed. "
    "`{command} notify` shows your own."
)
REPLAYED = "This click was already handled; nothing more was changed."


class Result(enum.Enum):
    APPLIED = "applied"
    NOT_YOURS = "not yours"
    REPLAYED = "replayed"


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(TURN_OFF_ACTION)
    async def on_turn_off(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(turn_off(services, body))


async def turn_off(services: SlackServices, body: dict[str, Any]) -> None:
    click = parse_click(body)
    if click is None or click.trigger_id is None:
        log.warning("ignored a turn-off click without response_url, user, trigger_id or value")
        return
    await answer_click(services, click, _turn_off, "turn off alerts")


async def _turn_off(services: SlackServices, click: Click) -> tuple[Reply, bool]:
    """The reply to show, and whether it replaces the alert."""
    command = services.settings.slash_command
    key = await asyncio.to_thread(services.alert_key)
    read = unsubscribe.read_token(key, click.value)
    named = read[:2] if read is not None and read[2] == "slack" else None  # a mail link's: mail only
    try:
        email = await services.identity.email(click.user_id)
    except UnknownSlackUser as error:
        return Reply.refused(str(error)), False
    store, now = services.console.store, services.console.clock.now()
    if named is None:
        await asyncio.to_thread(_audit_denied, services, email, None, now)
        return Reply.refused(FORGED), False
    user_id, category = named
    once = f"alert-off:{click.trigger_id}"
    result = await asyncio.to_thread(apply, store, user_id, category, email, once, now)
    if result is Result.NOT_YOURS:
        await asyncio.to_thread(_audit_denied, services, email, category, now)
        return Reply.refused(NOT_YOURS.format(command=command)), False
    if result is Result.REPLAYED:
        return Reply(ok=True, text=REPLAYED), False
    text = f"Turned off {category} on Slack. `{command} notify {category} on slack` turns it back on."
    return Reply(ok=True, text=text), True


def apply(store: Store, user_id: str, category: str, email: str, once: str, at: datetime) -> Result:
    """Turn `category` off on Slack for `user_id`, when `email` is that user's, once for `once`."""
    with store.write() as session:
        user = session.exec(select(DirectoryUser).where(DirectoryUser.email == email)).first()
        if user is None or user.id != user_id:
            return Result.NOT_YOURS
        if not claims.claim_in(session, once, at):
            return Result.REPLAYED
        preferences.set_preferences(session, user_id, (category,), ("slack",), False, actor=email, at=at)
    return Result.APPLIED


def _audit_denied(services: SlackServices, email: str, category: str | None, at: datetime) -> None:
    attempt = {"turn_off": category or "(forged button)", "channel": "slack"}
    change = audit.Change(Action.NOTIFY, None, attempt)
    try:
        with services.console.store.write() as session:
            audit.record(session, at=at, actor=email, change=change, outcome=AuditOutcome.DENIED)
    except StoreError as error:  # the refusal still reaches the user
        log.warning("denied turn-off by %s not audited: %s", email, error)
