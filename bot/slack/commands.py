"""The `/lookout` slash command listener: thin — identify, run, render."""

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.answer import Ack, answer, command_reply
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.command(services.settings.slash_command)
    async def on_command(ack: Ack, command: dict[str, Any]) -> None:
        work = command_reply(services, command["user_id"], command.get("text") or "")
        await answer(services, ack, command.get("response_url"), work)
