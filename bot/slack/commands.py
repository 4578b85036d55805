"""The `/lookout` slash command listener: thin — identify, run, render."""

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.reply import Reply
from bot.slack.answer import Ack, answer, command_reply, render
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.command(services.settings.slash_command)
    async def on_command(ack: Ack, command: dict[str, Any]) -> None:
        user_id = command.get("user_id")
        if not isinstance(user_id, str):
            await ack(**render(Reply.refused("The request named no Slack user; nothing was done.")))
            return
        work = command_reply(services, user_id, str(command.get("text") or ""))
        await answer(services, ack, command.get("response_url"), work)
