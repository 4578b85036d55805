"""Confirm/Cancel of a previewed change. A click re-checks access, applies at most once (the button's
nonce is claimed in the change's own transaction), and refuses a preview that is stale or whose
impact has changed since it was shown."""

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.commands import PolicySet, RiskReset, RiskSet
from bot.grammar import parse
from bot.reply import Reply
from bot.slack import blocks
from bot.slack.answer import FAILED, Ack, render
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices
from integration.errors import MesbotError
from integration.tenant import stamp
from storage import claims

log = logging.getLogger(__name__)
CONFIRMABLE = (RiskSet, RiskReset, PolicySet)
PREVIEW_LIFETIME_SECONDS = 15 * 60
SLACK_ID = re.compile(r"[UW][A-Z0-9]{1,20}")  # safe to put in a <@…> mention
USED = "This preview was already confirmed or cancelled; nothing more was changed."
NOT_OURS = "That button is not one mesbot made; nothing was changed."


@dataclass(frozen=True)
class Pending:
    """What a Confirm button carries: the change, its one-time nonce, when and what was previewed."""

    command: str
    nonce: str
    issued: int
    impact: dict[str, int]

    @property
    def key(self) -> str:
        return f"confirm:{self.nonce}"


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(blocks.CONFIRM_ACTION)
    async def on_confirm(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(confirm(services, body))

    @app.action(blocks.CANCEL_ACTION)
    async def on_cancel(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(cancel(services, body))


def pending(value: str) -> Pending:
    """The button's value, checked to be a confirmed change mesbot offered."""
    try:
        data = json.loads(value)
        found = Pending(str(data["command"]), str(data["nonce"]), int(data["issued"]), dict(data["impact"]))
        parsed = parse(found.command)
    except (ValueError, KeyError, TypeError, MesbotError):
        raise MesbotError(NOT_OURS) from None
    if not isinstance(parsed, CONFIRMABLE) or not parsed.confirmed:
        raise MesbotError(NOT_OURS)
    return found


def _action(body: dict[str, Any]) -> tuple[str, str, str] | None:
    """(response_url, user ID, button value) of a click, or None for a malformed payload."""
    response_url, user, actions = (
        body.get("response_url"),
        body.get("user") or {},
        body.get("actions") or [{}],
    )
    if not isinstance(response_url, str) or not SLACK_ID.fullmatch(str(user.get("id", ""))):
        return None
    return response_url, user["id"], str(actions[0].get("value", ""))


async def confirm(services: SlackServices, body: dict[str, Any]) -> None:
    click = _action(body)
    if click is None:
        log.warning("ignored a confirm click without response_url or user")
        return
    response_url, user_id, value = click
    try:
        reply, replace = await _apply(services, user_id, value)
    except Exception:
        log.exception("confirm failed")
        reply, replace = Reply.refused(FAILED), False
    message = render(reply)
    message.pop("response_type")  # not allowed when replacing the original message
    if reply.data.get("applied") is True:
        message["blocks"].append(
            blocks.context(f"Applied by <@{user_id}> at {stamp(services.console.clock.now())}")
        )
    await services.respond(response_url, {"replace_original": replace, **message})
    if reply.data.get("applied") is True and services.settings.risk_announce_channel:
        await _announce(services, services.settings.risk_announce_channel, user_id, reply)


async def _apply(services: SlackServices, user_id: str, value: str) -> tuple[Reply, bool]:
    """The reply to show, and whether it replaces the preview."""
    try:
        change = pending(value)
    except MesbotError as error:
        return Reply.refused(str(error)), False
    if time.time() - change.issued > PREVIEW_LIFETIME_SECONDS:
        return Reply.refused("This preview has expired; run the command again for a fresh one."), True
    try:
        email = await services.identity.email(user_id)
    except UnknownSlackUser as error:
        return Reply.refused(str(error)), False
    if await asyncio.to_thread(claims.is_claimed, services.console.store, change.key):
        return Reply(ok=True, text=USED), False
    preview_text = change.command.removesuffix(" --yes")
    current = await services.run(email, preview_text)  # re-checks access too
    if not current.ok:
        return current, False
    if current.data.get("preview") != change.impact:
        if await asyncio.to_thread(claims.is_claimed, services.console.store, change.key):
            return Reply(ok=True, text=USED), False  # a concurrent click applied it just now
        changed = f"The impact changed since your preview; nothing was applied. New preview:\n{current.text}"
        return replace(current, text=changed), False
    applied = await services.run(email, change.command, once=change.key)
    return applied, applied.data.get("applied") is True


async def cancel(services: SlackServices, body: dict[str, Any]) -> None:
    click = _action(body)
    if click is None:
        return
    response_url, _user_id, value = click
    nonce = value.removeprefix("cancel:")
    store, now = services.console.store, services.console.clock.now()
    if nonce and not await asyncio.to_thread(claims.claim, store, f"confirm:{nonce}", now):
        reply = Reply(ok=True, text=USED)
        await services.respond(response_url, {"replace_original": False, **blocks.message(reply)})
        return
    cancelled = Reply(ok=True, text="Cancelled: nothing was changed.")
    await services.respond(response_url, {"replace_original": True, **blocks.message(cancelled)})


async def _announce(services: SlackServices, channel: str, user_id: str, reply: Reply) -> None:
    first_line = blocks.escape(reply.text.split("\n")[0])
    await services.call(
        "chat.postMessage",
        lambda: services.client.chat_postMessage(channel=channel, text=f"<@{user_id}> {first_line}"),
    )
