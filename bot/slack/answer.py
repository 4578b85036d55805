"""Answering within Slack's 3 seconds: in the HTTP response when the work is quick, else an ack now
and the answer through `response_url` when it is ready."""

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.reply import Reply
from bot.slack import blocks
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[Any]]
WORKING = "Working on it… the answer follows here in a moment."
FAILED = (
    "Something went wrong on mesbot's side and it has been logged. Try again; if you were changing "
    "something, `audit` shows whether it was applied."
)


def render(reply: Reply) -> dict[str, Any]:
    """Block Kit for a reply; a preview gets Confirm/Cancel carrying a fresh once-only nonce, the
    time and the impact it showed (so a click can refuse a stale or changed preview)."""
    if not reply.confirm:
        return {"response_type": "ephemeral", **blocks.message(reply)}
    nonce = secrets.token_urlsafe(16)
    value = blocks.confirm_value(reply.confirm, nonce, int(time.time()), reply.data.get("preview", {}))
    return {"response_type": "ephemeral", **blocks.message(reply, confirm=(value, f"cancel:{nonce}"))}


async def command_reply(services: SlackServices, user_id: str, text: str) -> Reply:
    try:
        email = await services.identity.email(user_id)
    except UnknownSlackUser as error:
        return Reply.refused(str(error))
    return await services.run(email, text)


async def answer(services: SlackServices, ack: Ack, response_url: str | None, work: Awaitable[Reply]) -> None:
    """Ack with the reply if `work` finishes within the inline budget, else ack now and follow up."""
    task = asyncio.ensure_future(_guarded(work))
    done, _ = await asyncio.wait({task}, timeout=services.inline_budget)
    if done:
        await ack(**render(task.result()))
        return
    await ack(**render(Reply(ok=True, text=WORKING)))
    if response_url:
        services.background(_follow_up(services, response_url, task))


async def _follow_up(services: SlackServices, response_url: str, task: "asyncio.Future[Reply]") -> None:
    reply = await task
    await services.respond(response_url, {"replace_original": False, **render(reply)})


async def _guarded(work: Awaitable[Reply]) -> Reply:
    """No traceback reaches a user: an unexpected failure is logged and answered politely."""
    try:
        return await work
    except Exception:
        log.exception("command failed")
        return Reply.refused(FAILED)
