"""Confirm/Cancel of a previewed change. A button names only the preview's nonce; the change itself
(command, previewer, impact, expiry) is read from the store. A click re-checks access by running
exactly the stored command for the clicking user, applies at most once (the nonce is claimed in the
change's own transaction), and refuses a preview that expired or whose impact changed since it was shown.

Who may click: Confirm, anyone who may make the change (a colleague with full access may finish a
preview; the reply names who previewed and who applied). Cancel, the previewer or anyone who may make
the change."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.console import failed
from bot.reply import Reply
from bot.slack import blocks, pending
from bot.slack.answer import Ack, Message, offer, render
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices
from integration.tenant import stamp
from notifications import slack_markup as markup
from storage import claims
from storage.errors import StoreBusy
from storage.models import PendingChange

log = logging.getLogger(__name__)
SLACK_ID = re.compile(r"[UW][A-Z0-9]{1,20}")  # safe to put in a <@…> mention
USED = "This preview was already confirmed or cancelled; nothing more was changed."
NOT_OURS = "That button is not one mesbot made; nothing was changed."
EXPIRED = "This preview has expired; nothing was changed. Run the command again for a fresh one."
NOT_YOURS = (
    "Only the person who asked for this preview, or someone who may make this change, can cancel it; "
    "nothing was changed."
)
CANCELLED = "Cancelled: nothing was changed."


@dataclass(frozen=True)
class Click:
    response_url: str
    user_id: str
    value: str
    trigger_id: str | None = None


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(blocks.CONFIRM_ACTION)
    async def on_confirm(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(confirm(services, body))

    @app.action(blocks.CANCEL_ACTION)
    async def on_cancel(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(cancel(services, body))


def parse_click(body: dict[str, Any]) -> Click | None:
    """The click's response_url, Slack user, button value (and trigger_id, when there is one), or None
    when the payload lacks one of the first three."""
    response_url, user, actions = body.get("response_url"), body.get("user"), body.get("actions")
    if not isinstance(user, dict) or not isinstance(actions, list) or not actions:
        return None
    user_id, action = user.get("id"), actions[0]
    value = action.get("value") if isinstance(action, dict) else None
    if not isinstance(response_url, str) or not isinstance(value, str):
        return None
    if not isinstance(user_id, str) or not SLACK_ID.fullmatch(user_id):
        return None
    trigger_id = body.get("trigger_id")
    return Click(response_url, user_id, value, trigger_id if isinstance(trigger_id, str) else None)


ClickWork = Callable[[SlackServices, Click], Awaitable[tuple[Reply, bool]]]


async def answer_click(services: SlackServices, click: Click, work: ClickWork, what: str) -> None:
    """Run `work` for a click Slack sent and post its reply (replacing the message when it says so);
    a busy store is a polite refusal, anything else a reply with a logged reference."""
    if not services.may_respond(click.response_url):
        return  # not a click Slack sent: change nothing (may_respond logged it)
    try:
        reply, replaces = await work(services, click)
    except StoreBusy as error:
        reply, replaces = Reply.refused(str(error)), False
    except Exception:
        reply, replaces = failed(log, what), False
    await services.respond(click.response_url, {"replace_original": replaces, **blocks.message(reply)})


async def confirm(services: SlackServices, body: dict[str, Any]) -> None:
    click = parse_click(body)
    if click is None:
        log.warning("ignored a confirm click without response_url, user or value")
        return
    if not services.may_respond(click.response_url):
        return  # not a click Slack sent: change nothing (may_respond logged it)
    applied: Reply | None = None
    try:
        message, replaces, applied = await _apply(services, click)
    except StoreBusy as error:
        message, replaces = render(Reply.refused(str(error))), False
    except Exception:
        message, replaces = render(failed(log, "confirm")), False
    message.pop("response_type")  # not allowed when replacing the original message
    await services.respond(click.response_url, {"replace_original": replaces, **message})
    if applied is not None and services.settings.risk_announce_channel:
        await _announce(services, services.settings.risk_announce_channel, click.user_id, applied)


async def _apply(services: SlackServices, click: Click) -> tuple[Message, bool, Reply | None]:
    """The message to show, whether it replaces the preview, and the reply of an applied change."""
    store = services.console.store
    change = await asyncio.to_thread(pending.find, store, click.value)
    if change is None or not change.command.endswith(pending.CONFIRM_FLAG):
        return render(Reply.refused(NOT_OURS)), False, None
    if services.console.clock.now() >= change.expires_at:
        return render(Reply.refused(EXPIRED)), True, None
    try:
        email = await services.identity.email(click.user_id)
    except UnknownSlackUser as error:
        refusal = await asyncio.to_thread(
            services.console.refuse, f"slack:{click.user_id}", change.command, str(error)
        )
        return render(refusal), False, None
    key = pending.claim_key(change.nonce)
    if await asyncio.to_thread(claims.is_claimed, store, key):
        return render(Reply(ok=True, text=USED)), False, None
    current = await services.run(email, change.command.removesuffix(pending.CONFIRM_FLAG))  # re-checks access
    if not current.ok:
        return render(current), False, None
    if current.data.get("preview") != change.impact:
        if await asyncio.to_thread(claims.is_claimed, store, key):
            return render(Reply(ok=True, text=USED)), False, None  # a concurrent click applied it just now
        changed = f"The impact changed since your preview; nothing was applied. New preview:\n{current.text}"
        return await offer(services, replace(current, text=changed), email, click.user_id), False, None
    reply = await services.run(email, change.command, once=key)
    message = render(reply)
    if reply.data.get("applied") is not True:
        return message, False, None
    message["blocks"].append(markup.context(_applied_by(services, click.user_id, change)))
    return message, True, reply


def _applied_by(services: SlackServices, user_id: str, change: PendingChange) -> str:
    note = f"Applied by <@{user_id}> at {stamp(services.console.clock.now())}"
    if change.slack_user_id == user_id:
        return note
    previewer = (
        f"<@{change.slack_user_id}>"
        if SLACK_ID.fullmatch(change.slack_user_id)
        else markup.escape(change.actor_email)
    )
    return f"{note}; previewed by {previewer}"


async def cancel(services: SlackServices, body: dict[str, Any]) -> None:
    click = parse_click(body)
    if click is None:
        log.warning("ignored a cancel click without response_url, user or value")
        return
    await answer_click(services, click, _cancel, "cancel")


async def _cancel(services: SlackServices, click: Click) -> tuple[Reply, bool]:
    """The reply to show, and whether it replaces the preview."""
    store = services.console.store
    change = await asyncio.to_thread(pending.find, store, click.value.removeprefix("cancel:"))
    if change is None:
        return Reply.refused(NOT_OURS), False
    if click.user_id != change.slack_user_id:
        try:
            email = await services.identity.email(click.user_id)
        except UnknownSlackUser as error:
            return Reply.refused(str(error)), False
        if not await asyncio.to_thread(pending.may_change, store, email, change.command):
            return Reply.refused(NOT_YOURS), False
    now = services.console.clock.now()
    if not await asyncio.to_thread(claims.claim, store, pending.claim_key(change.nonce), now):
        return Reply(ok=True, text=USED), False
    return Reply(ok=True, text=CANCELLED), True


async def _announce(services: SlackServices, channel: str, user_id: str, reply: Reply) -> None:
    first_line = markup.escape(reply.text.split("\n")[0])
    await services.call(
        "chat.postMessage",
        lambda: services.client.chat_postMessage(channel=channel, text=f"<@{user_id}> {first_line}"),
    )
