"""A real SMTP server for the mail tests (aiosmtpd, in the test's own event loop, on a free port) that
records what it received and can be told to misbehave: refuse a recipient, answer one DATA with an
error, stall mid-DATA, refuse a login, not offer STARTTLS."""

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any, Literal

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

USERNAME, PASSWORD = "mesbot", "right horse battery"


@dataclass
class Certificates:
    """A private CA and a certificate for 127.0.0.1 / localhost, made by trustme."""

    ca: trustme.CA = field(default_factory=trustme.CA)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@dataclass
class Recorder:
    """The aiosmtpd handler: keeps each accepted mail's bytes; faults are set per test."""

    received: list[bytes] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    connections: int = 0
    data_commands: int = 0
    refuse_recipients: dict[str, str] = field(default_factory=dict)  # address → reply
    data_replies: dict[int, str] = field(default_factory=dict)  # n-th DATA (from 1) → reply
    stall_for: set[str] = field(default_factory=set)  # recipients whose DATA never gets an answer
    stall_seconds: float = 30.0
    logins: list[tuple[str, str]] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)  # per accepted mail: did it arrive over TLS

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_commands += 1
        if self.stall_for.intersection(envelope.rcpt_tos):
            await asyncio.sleep(self.stall_seconds)
        if self.data_commands in self.data_replies:
            return self.data_replies[self.data_commands]
        assert isinstance(envelope.original_content, bytes)
        self.received.append(envelope.original_content)
        self.recipients.extend(envelope.rcpt_tos)
        assert server.transport is not None
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == (USERNAME, PASSWORD), handled=False)  # aiosmtpd answers 535

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=default)
        return [parser.parsebytes(data) for data in self.received]  # type: ignore[misc]


TlsMode = Literal["starttls", "implicit", "none"]


@asynccontextmanager
async def smtp_server(
    recorder: Recorder,
    certificates: Certificates,
    *,
    tls: TlsMode = "starttls",
    offer_starttls: bool = True,
    auth: bool = False,
) -> AsyncIterator[int]:
    """Serves on 127.0.0.1 on a free port (yielded) until the block ends."""
    server_tls = certificates.server_context()

    sessions: list[SMTP] = []

    def protocol() -> SMTP:
        recorder.connections += 1
        session = SMTP(
            recorder,
            hostname="mail.test",
            tls_context=server_tls if tls == "starttls" and offer_starttls else None,
            authenticator=recorder.authenticate if auth else None,
            auth_require_tls=tls != "none",
        )
        sessions.append(session)
        return session

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=server_tls if tls == "implicit" else None)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for session in sessions:  # Python 3.11's Server.close leaves accepted connections open
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()


class Inbox:
    """An aiosmtpd handler for a server in its own thread (`aiosmtpd.controller.Controller`), for tests
    where the code under test is another process: keeps each mail's bytes, after `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        assert isinstance(envelope.original_content, bytes)
        self.received.append(envelope.original_content)
        return "250 OK"
