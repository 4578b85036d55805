"""The `/lookout` slash command listener: thin — identify, run (a change once per request), render."""

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest

from bot.reply import Reply
from bot.slack import replay
from bot.slack.answer import Ack, answer, command_reply, render
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.command(services.settings.slash_command)
    async def on_command(ack: Ack, command: dict[str, Any], request: AsyncBoltRequest) -> None:
        user_id = command.get("user_id")
        if not isinstance(user_id, str):
            await ack(**render(Reply.refused("The request named no Slack user; nothing was done.")))
            return
        text = str(command.get("text") or "")
        signature = next(iter(request.headers.get("x-slack-signature") or []), None)
        once = replay.once_key(text, command.get("trigger_id"), signature)
        work = command_reply(services, user_id, text, once=once)
        # A known user's read on SQLite is answered without awaiting anything: no deadline to race
        at_once = services.identity.knows(user_id) and services.runs_inline(text)
        await answer(services, ack, command.get("response_url"), work, at_once=at_once)
