"""Answering within Slack's 3 seconds: in the HTTP response when the work is quick, else an ack now
and the answer through `response_url` when it is ready. A preview is stored server-side first, so its
buttons carry only the nonce that names it."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.console import failed
from bot.reply import Reply
from bot.slack import blocks, pending
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices
from storage.errors import StoreBusy

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[Any]]
Message = dict[str, Any]
WORKING = "Working on it… the answer follows here in a moment."
REPLAYED = "This request was already handled and applied once; nothing more was changed."


def render(reply: Reply, nonce: str | None = None) -> Message:
    """Block Kit for a reply; a preview stored under `nonce` gets Confirm/Cancel naming only it."""
    confirm = (nonce, f"cancel:{nonce}") if reply.confirm and nonce else None
    return {"response_type": "ephemeral", **blocks.message(reply, confirm=confirm)}


async def offer(services: SlackServices, reply: Reply, email: str, user_id: str) -> Message:
    """`render`, after storing a preview the user may confirm (a reply without one renders as is)."""
    if not reply.confirm:
        return render(reply)
    try:
        nonce = await asyncio.to_thread(
            pending.offer,
            services.console.store,
            email=email,
            user_id=user_id,
            command=reply.confirm,
            impact=reply.data.get("preview", {}),
            now=services.console.clock.now(),
        )
    except StoreBusy:  # the preview still says which command applies it
        log.warning("store busy: a preview was shown without Confirm/Cancel")
        return render(reply)
    return render(reply, nonce)


async def command_reply(
    services: SlackServices, user_id: str, text: str, *, once: str | None = None
) -> Message:
    """Run a slash command as the Slack user; with `once`, a change it makes is made only once."""
    try:
        email = await services.identity.email(user_id)
    except UnknownSlackUser as error:
        # nobody mesbot can name: refused, and an attempted change is audited under the Slack ID
        refusal = await asyncio.to_thread(services.console.refuse, f"slack:{user_id}", text, str(error))
        return render(refusal)
    reply = await services.run(email, text, once=once, zone=services.identity.zone(user_id))
    if reply.data.get("duplicate"):
        return render(Reply(ok=True, text=REPLAYED, data=reply.data, command=reply.command))
    return await offer(services, reply, email, user_id)


async def answer(
    services: SlackServices,
    ack: Ack,
    response_url: str | None,
    work: Awaitable[Message],
    *,
    at_once: bool = False,
) -> None:
    """Ack with the answer if `work` finishes within the inline budget, else ack now and follow up.
    Without a `response_url` mesbot may post to, the ack is the only answer: it waits for the work.
    `at_once`: `work` awaits nothing that could take long (a cached user's read on the event loop),
    so it is awaited right here, without the task and timer the budget needs (~12 µs of each ack)."""
    if at_once:
        await ack(**await _guarded(work))
        return
    follow_up = response_url is not None and services.may_respond(response_url)
    task = asyncio.ensure_future(_guarded(work))
    done, _ = await asyncio.wait({task}, timeout=services.inline_budget if follow_up else None)
    if done:
        await ack(**task.result())
        return
    await ack(**render(Reply(ok=True, text=WORKING)))
    if response_url:
        services.background(_follow_up(services, response_url, task))


async def _follow_up(services: SlackServices, response_url: str, task: "asyncio.Future[Message]") -> None:
    message = await task
    await services.respond(response_url, {"replace_original": False, **message})


async def _guarded(work: Awaitable[Message]) -> Message:
    """No traceback reaches a user: an unexpected failure is logged and answered politely."""
    try:
        return await work
    except Exception:
        return render(failed(log, "Slack command"))
