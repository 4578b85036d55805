"""The App Home tab: enrollment and compliance, connector health, the viewer's notification toggles,
and (full access) the latest audit entries — each part only as far as the viewer may see it."""

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.reply import Reply
from bot.slack import blocks
from bot.slack.answer import Ack
from bot.slack.identity import UnknownSlackUser
from bot.slack.services import SlackServices
from integration.preferences import CATEGORIES
from notifications import slack_markup as markup

TOGGLE_ACTION = "mesbot_notify_toggle"
MAX_HOME_BLOCKS = 100
SECTION_BLOCKS = 18  # per part; five parts stay under Home's 100 blocks


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and isinstance(event.get("user"), str):
            services.background(publish(services, event["user"]))

    @app.action(re.compile(f"^{TOGGLE_ACTION}:"))
    async def on_toggle(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        user_id = (body.get("user") or {}).get("id")
        if isinstance(user_id, str):
            value = str((body.get("actions") or [{}])[0].get("value", ""))
            services.background(toggle(services, user_id, value))


async def toggle(services: SlackServices, user_id: str, value: str) -> None:
    category, _, rest = value.partition(":")
    channel, _, state = rest.partition(":")
    if category in CATEGORIES and channel in ("email", "slack") and state in ("on", "off"):
        try:
            email = await services.identity.email(user_id)
        except UnknownSlackUser:
            return
        await services.run(email, f"notify {category} {state} {channel}")
    await publish(services, user_id)


async def publish(services: SlackServices, user_id: str) -> None:
    view = {"type": "home", "blocks": await home_blocks(services, user_id)}
    await services.call("views.publish", lambda: services.client.views_publish(user_id=user_id, view=view))


async def home_blocks(services: SlackServices, user_id: str) -> list[dict[str, Any]]:
    try:
        email = await services.identity.email(user_id)
    except UnknownSlackUser as error:
        return [markup.section(markup.escape(str(error)))]
    parts: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "mesbot"}}]
    enrollment = await services.run(email, "enrollment")
    if not enrollment.ok:  # no console access (or no consent): show the viewer's own devices
        parts += _text(await services.run(email, "status me"))
        return cap_blocks(parts)
    parts += _text(enrollment)
    parts.append({"type": "divider"})
    parts += _text(await services.run(email, "connector"))
    notify = await services.run(email, "notify")
    if notify.ok:
        parts.append({"type": "divider"})
        parts += _toggles(notify)
    audit = await services.run(email, "audit 5")
    if audit.ok:
        parts.append({"type": "divider"})
        parts += _text(audit)
    return cap_blocks(parts)


def cap_blocks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within Home's 100 blocks, the last one saying what was left out (each part is budgeted to
    fit already; this holds should the parts ever grow)."""
    if len(parts) <= MAX_HOME_BLOCKS:
        return parts
    left_out = len(parts) - (MAX_HOME_BLOCKS - 1)
    return [*parts[: MAX_HOME_BLOCKS - 1], markup.context(f"+{left_out} more blocks not shown")]


def _text(reply: Reply) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = blocks.message(reply, max_blocks=SECTION_BLOCKS)["blocks"]
    return rendered


def _toggles(notify: Reply) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [markup.section("*Your notifications* (click to switch)")]
    for category, channels in notify.data["preferences"].items():
        buttons = []
        for channel, on in channels.items():
            buttons.append(
                {
                    "type": "button",
                    "action_id": f"{TOGGLE_ACTION}:{category}:{channel}",
                    "text": {
                        "type": "plain_text",
                        "text": f"{category} · {channel}: {'on' if on else 'off'}",
                    },
                    "value": f"{category}:{channel}:{'off' if on else 'on'}",
                    **({"style": "primary"} if on else {}),
                }
            )
        parts.append({"type": "actions", "elements": buttons})
    return parts
