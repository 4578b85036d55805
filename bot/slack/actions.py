"""Button clicks: Confirm/Cancel of a previewed change (applied once, re-authorised at click time)."""

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.commands import PolicySet, RiskReset, RiskSet
from bot.grammar import parse
from bot.reply import Reply
from bot.slack import blocks
from bot.slack.answer import Ack, command_reply
from bot.slack.services import SlackServices
from integration.errors import MesbotError
from integration.tenant import stamp
from storage import claims

log = logging.getLogger(__name__)
CONFIRMABLE = (RiskSet, RiskReset, PolicySet)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(blocks.CONFIRM_ACTION)
    async def on_confirm(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        services.background(confirm(services, body))

    @app.action(blocks.CANCEL_ACTION)
    async def on_cancel(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        cancelled = Reply(ok=True, text="Cancelled: nothing was changed.")
        services.background(
            services.respond(body["response_url"], {"replace_original": True, **blocks.message(cancelled)})
        )


def _confirmed_command(value: str) -> tuple[str, str]:
    """The command and nonce carried by a Confirm button, checked to be a confirmed change."""
    try:
        data = json.loads(value)
        command, nonce = data["command"], data["nonce"]
        parsed = parse(command)
    except (ValueError, KeyError, TypeError, MesbotError):
        raise MesbotError("That button is not one mesbot made; nothing was changed.") from None
    if (
        not isinstance(command, str)
        or not isinstance(nonce, str)
        or not isinstance(parsed, CONFIRMABLE)
        or not parsed.confirmed
    ):
        raise MesbotError("That button is not one mesbot made; nothing was changed.")
    return command, nonce


async def confirm(services: SlackServices, body: dict[str, Any]) -> None:
    response_url = body["response_url"]
    user_id = body["user"]["id"]
    try:
        command, nonce = _confirmed_command(body["actions"][0]["value"])
    except MesbotError as error:
        await services.respond(
            response_url, {"replace_original": False, **blocks.message(Reply.refused(str(error)))}
        )
        return
    store, clock = services.console.store, services.console.clock
    key = f"confirm:{nonce}"
    if not await asyncio.to_thread(claims.claim, store, key, clock.now()):
        note = Reply(ok=True, text="This change was already confirmed; it was applied once.")
        await services.respond(response_url, {"replace_original": False, **blocks.message(note)})
        return
    reply = await command_reply(services, user_id, command)  # access is checked again, now
    if not reply.ok:
        await asyncio.to_thread(claims.release, store, key)
        await services.respond(response_url, {"replace_original": False, **blocks.message(reply)})
        return
    applied = blocks.message(reply)
    applied["blocks"].append(blocks.context(f"Applied by <@{user_id}> at {stamp(clock.now())}"))
    await services.respond(response_url, {"replace_original": True, **applied})
    channel = services.settings.risk_announce_channel
    if channel:
        first_line = blocks.escape(reply.text.split("\n")[0])
        await services.call(
            "chat.postMessage",
            lambda: services.client.chat_postMessage(channel=channel, text=f"<@{user_id}> {first_line}"),
        )
