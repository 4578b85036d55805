"""The deliverer's channels: each renders outbox payloads for its medium and hands them to its sender.

E-mail: `notifications/render.py` + `notifications/senders/email.py` (one SMTP connection per batch, or
`.eml` files). Slack: `notifications/slack_blocks.py` + `notifications/senders/slack.py` (a direct
message per user, a post for the on-call channel).
"""

import asyncio
import logging
import ssl
from collections.abc import Sequence

from integration.clock import Clock
from integration.config import Settings
from notifications import unsubscribe
from notifications.delivery import Outgoing
from notifications.outcome import Failed, Outcome
from notifications.render import Mail, render_mail
from notifications.senders.email import MailSender, email_sender
from notifications.senders.slack import SlackSender
from notifications.slack_blocks import TurnOff, alert_blocks
from storage.engine import Store

log = logging.getLogger(__name__)

# Categories a one-click link turns off (a test alert has none to turn off).
UNSUBSCRIBABLE = ("threat-high", "threat-medium", "threat-low", "connector-errors", "digest")


class _Signing:
    """The key that signs unsubscribe links and turn-off buttons, read from the store once."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._key: bytes | None = None

    async def _secret(self) -> bytes:
        if self._key is None:
            self._key = await asyncio.to_thread(unsubscribe.secret_key, self.settings, self.store)
        return self._key


class EmailChannel(_Signing):
    name = "email"

    def __init__(self, settings: Settings, store: Store, sender: MailSender) -> None:
        super().__init__(settings, store)
        self.sender = sender

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        rendered: list[Mail | Outcome] = []
        for message in messages:
            rendered.append(await self._render(message))
        mails = [m for m in rendered if isinstance(m, Mail)]
        sent = iter(await self.sender.send(mails) if mails else [])
        return [next(sent) if isinstance(item, Mail) else item for item in rendered]

    async def _render(self, message: Outgoing) -> Mail | Outcome:
        if not message.address:
            return Failed("no e-mail address for this recipient")
        link = None
        if message.user_id is not None and message.category in UNSUBSCRIBABLE:
            link = unsubscribe.unsubscribe_url(
                self.settings, await self._secret(), message.user_id, message.category, "email"
            )
        try:
            return render_mail(
                message.payload,  # type: ignore[arg-type]  # the outbox keeps what integration/messages.py built
                to=message.address,
                recipient_name=message.display_name if message.user_id else None,
                unsubscribe_url=link,
                key=message.key,
                slash_command=self.settings.slash_command,
            )
        except Exception as error:  # a payload the templates cannot show must not hold up the batch
            log.exception("could not render outbox row %s", message.row_id)
            return Failed(f"could not be rendered: {type(error).__name__}")


def email_channel(
    settings: Settings, store: Store, clock: Clock, *, ssl_context: ssl.SSLContext | None = None
) -> EmailChannel:
    return EmailChannel(settings, store, email_sender(settings, ssl_context=ssl_context, clock=clock))


class SlackChannel(_Signing):
    """Direct messages to users (found by their directory e-mail), posts to the on-call channel. A few
    at a time: each DM is its own conversation, and Slack's per-channel limit is about one a second."""

    name = "slack"
    CONCURRENCY = 8

    def __init__(self, settings: Settings, store: Store, sender: SlackSender) -> None:
        super().__init__(settings, store)
        self.sender = sender

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        gate = asyncio.Semaphore(self.CONCURRENCY)

        async def one(message: Outgoing) -> Outcome:
            async with gate:
                return await self._send(message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def _send(self, message: Outgoing) -> Outcome:
        turn_off = None
        if message.user_id is not None and message.category in UNSUBSCRIBABLE:
            token = unsubscribe.make_token(await self._secret(), message.user_id, message.category, "slack")
            turn_off = TurnOff(message.category, token)
        try:
            text, blocks = alert_blocks(
                message.payload,  # type: ignore[arg-type]  # as integration/messages.py built it
                turn_off=turn_off,
                slash_command=self.settings.slash_command,
            )
        except Exception as error:
            log.exception("could not render outbox row %s for Slack", message.row_id)
            return Failed(f"could not be rendered: {type(error).__name__}")
        if message.slack_channel:
            return await self.sender.post_channel(message.slack_channel, text, blocks)
        if message.address:
            return await self.sender.send_dm(message.address, text, blocks)
        return Failed("no Slack user or channel for this recipient")


def slack_channel(settings: Settings, store: Store, clock: Clock) -> SlackChannel:
    sender = SlackSender.from_settings(settings, store, clock)
    if sender is None:
        raise ValueError("SLACK_BOT_TOKEN is not set: Slack is off")
    return SlackChannel(settings, store, sender)
