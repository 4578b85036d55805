"""E-mail: rendered `Mail`s sent over SMTP (aiosmtplib), one connection per batch, or written as `.eml`
files when no SMTP host is configured (`./var/mail/`, the demo's mailbox).

Every mail gets the outcome the deliverer marks its outbox row by: SMTP 4xx, timeouts and lost
connections are `Retry`; 5xx and refused logins are `Failed`, with the server's words in the reason.
"""

import asyncio
import logging
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aiosmtplib

from integration.clock import Clock, SystemClock
from integration.config import Settings
from notifications.outcome import Failed, Outcome, Retry, Sent
from notifications.render import Mail
from notifications.senders.mime import HeaderError, address_problem, mail_bytes

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 60.0  # one whole mail, MAIL FROM to the final reply
CONNECT_TIMEOUT_SECONDS = 20.0  # connect, greeting, STARTTLS and login together
DEFAULT_PORTS = {"starttls": 587, "implicit": 465, "none": 25}
MAIL_FOLDER = Path("var/mail")
REASON_LIMIT = 300


class MailSender(Protocol):
    async def send(self, mails: Sequence[Mail]) -> list[Outcome]:
        """One outcome per mail, in order. Never raises for a mail that could not be sent."""
        ...


class _BatchStopped(Exception):
    """No connection could be made (or login was refused): every mail left gets this outcome."""

    def __init__(self, outcome: Retry | Failed) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class SmtpSender:
    """Sends a batch over one SMTP connection, reconnecting after a failure that broke it.

    `MESBOT_SMTP_TLS`: `starttls` upgrades the connection and refuses to go on when the server does
    not offer STARTTLS (aiosmtplib's default, `start_tls=None`, would silently stay plaintext);
    `implicit` speaks TLS from the first byte; `none` never encrypts. Certificates are verified against
    `ssl.create_default_context()`, which honours `SSL_CERT_FILE`; tests pass their own context.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        if not settings.smtp_host:
            raise ValueError("MESBOT_SMTP_HOST is not set: use MailDirSender")
        problem = address_problem(settings.mail_from)
        if problem:
            raise ValueError(f"MESBOT_MAIL_FROM: {problem}")
        self.host = settings.smtp_host
        self.mode = settings.smtp_tls
        self.port = settings.smtp_port or DEFAULT_PORTS[self.mode]
        self.username = settings.smtp_username
        self._password = settings.smtp_password
        self.mail_from = settings.mail_from
        self.send_timeout = send_timeout
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._clock = clock or SystemClock()

    async def send(self, mails: Sequence[Mail]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        smtp: aiosmtplib.SMTP | None = None
        upcoming = self._build(mails, 0)
        try:
            for index, mail in enumerate(mails):
                data, upcoming = upcoming, None
                if isinstance(data, Failed):
                    outcomes.append(data)
                    upcoming = self._build(mails, index + 1)
                    continue
                assert data is not None
                if smtp is None:
                    try:
                        smtp = await self._connect()
                    except _BatchStopped as stopped:
                        outcomes.extend(stopped.outcome for _ in mails[index:])
                        break
                sending = asyncio.ensure_future(self._send_one(smtp, mail.to, data))
                await asyncio.sleep(0)  # MAIL FROM is on its way: build the next mail while the server works
                upcoming = self._build(mails, index + 1)
                outcome, broken = await sending
                outcomes.append(outcome)
                if broken:
                    smtp.close()
                    smtp = None
        finally:
            if smtp is not None:
                await _quit(smtp)
        return outcomes

    def _build(self, mails: Sequence[Mail], index: int) -> bytes | Failed | None:
        """The bytes of `mails[index]` (None past the end), or why it cannot be sent."""
        if index >= len(mails):
            return None
        try:
            return mail_bytes(mails[index], sender=self.mail_from, now=self._clock.now())
        except HeaderError as error:
            return Failed(str(error))

    async def _connect(self) -> aiosmtplib.SMTP:
        """A connected, encrypted (unless `none`) and logged-in client, or `_BatchStopped`."""
        where = f"{self.host}:{self.port}"
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.mode == "implicit",
            start_tls=self.mode == "starttls",  # never None: that would fall back to plaintext
            tls_context=self._tls_context() if self.mode != "none" else None,
            username=self.username,
            password=self._password.get_secret_value() if self._password else None,
            timeout=self.connect_timeout,
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await smtp.connect()
        except (OSError, aiosmtplib.SMTPException) as error:  # TimeoutError is an OSError
            raise _BatchStopped(_connection_outcome(error, where, self.mode)) from error
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()  # reads SSL_CERT_FILE / SSL_CERT_DIR
        return self._ssl_context

    async def _send_one(self, smtp: aiosmtplib.SMTP, to: str, data: bytes) -> tuple[Outcome, bool]:
        """The outcome of one mail, and whether the connection is broken (reconnect for the next)."""
        try:
            async with asyncio.timeout(self.send_timeout):
                refused, reply = await smtp.sendmail(self.mail_from, [to], data)
        except aiosmtplib.SMTPTimeoutError as error:  # one read or write stalled (aiosmtplib's own timeout)
            return Retry(_short(f"the SMTP server stopped answering: {error}")), True
        except TimeoutError:  # each step in time, the whole too slow: a trickling server
            return Retry(f"the SMTP server did not accept the mail within {self.send_timeout:g} s"), True
        except aiosmtplib.SMTPRecipientsRefused as error:
            first = error.recipients[0]
            return _by_code(first.code, "recipient refused", first.message), False
        except aiosmtplib.SMTPResponseException as error:
            # 421: the server is closing the connection; anything else leaves it usable (aiosmtplib sent RSET)
            return _by_code(error.code, "the SMTP server refused the mail", error.message), (
                error.code == 421 or not smtp.is_connected
            )
        except (OSError, aiosmtplib.SMTPException) as error:  # disconnected, read timeout, …
            return Retry(_short(f"the SMTP connection failed: {error}")), True
        if to in refused:  # a partial refusal raises nothing: it only shows in the returned dict
            return _by_code(refused[to].code, "recipient refused", refused[to].message), False
        return Sent(_short(reply)), False


def _connection_outcome(error: Exception, where: str, mode: str) -> Retry | Failed:
    """Why no mail of the batch could be sent: transient (server down, slow) or not."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failed(
            f"the TLS certificate of {where} is not trusted ({error.verify_message}); "
            "SSL_CERT_FILE names a private CA"
        )
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return _by_code(error.code, f"login to {where} refused", error.message)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _by_code(error.code, f"{where} refused the connection", error.message)
    if isinstance(error, TimeoutError):
        return Retry(f"no answer from the SMTP server {where} in time")
    if isinstance(error, OSError | aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        return Retry(_short(f"cannot reach the SMTP server {where}: {error}"))
    # e.g. STARTTLS not offered: never go on in plaintext
    message = error.message if isinstance(error, aiosmtplib.SMTPException) else str(error)
    return Failed(_short(f"{where}: {message} (MESBOT_SMTP_TLS={mode})"))


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        async with asyncio.timeout(5):
            await smtp.quit()
    except (TimeoutError, OSError, aiosmtplib.SMTPException):
        smtp.close()


def _by_code(code: int, what: str, message: str) -> Retry | Failed:
    """SMTP 4xx is transient (try again later), 5xx permanent (do not retry unchanged)."""
    reason = _short(f"{what}: {code} {message}")
    return Retry(reason) if 400 <= code < 500 else Failed(reason)


def _short(text: str) -> str:
    """A reason fit for the digest: one line, bounded."""
    line = " ".join(text.split())
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 1] + "…"


class MailDirSender:
    """No SMTP host: each mail becomes an `.eml` file in `folder` (resolved against the working
    directory when the sender is made), named so that `ls` lists them in the order they were sent."""

    def __init__(
        self, folder: Path = MAIL_FOLDER, *, mail_from: str = "mesbot@localhost", clock: Clock | None = None
    ) -> None:
        self.folder = folder.resolve()
        self.mail_from = mail_from
        self._clock = clock or SystemClock()

    async def send(self, mails: Sequence[Mail]) -> list[Outcome]:
        return await asyncio.to_thread(self._write_all, list(mails))

    def _write_all(self, mails: list[Mail]) -> list[Outcome]:
        return [self._write(mail) for mail in mails]

    def _write(self, mail: Mail) -> Outcome:
        now = self._clock.now()
        try:
            data = mail_bytes(mail, sender=self.mail_from, now=now)
        except HeaderError as error:
            return Failed(str(error))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{now:%Y%m%dT%H%M%S%f}Z-{os.urandom(3).hex()}.eml"
            partial = path.with_suffix(".tmp")
            partial.write_bytes(data)
            partial.replace(path)  # a reader never sees half a mail
        except OSError as error:  # full or read-only disk: worth trying again later
            return Retry(_short(f"cannot write {self.folder}: {error}"))
        return Sent(str(path))


def email_sender(
    settings: Settings, *, ssl_context: ssl.SSLContext | None = None, clock: Clock | None = None
) -> SmtpSender | MailDirSender:
    """SMTP when `MESBOT_SMTP_HOST` is set, else `.eml` files in `./var/mail/`."""
    if settings.smtp_host:
        return SmtpSender(settings, ssl_context=ssl_context, clock=clock)
    return MailDirSender(MAIL_FOLDER, mail_from=settings.mail_from, clock=clock)
