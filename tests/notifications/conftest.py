"""Fixtures for the mail tests: certificates from a private CA, a recording SMTP server's handler,
and settings pointing at a server."""

from typing import Any

import pytest

from integration.config import Settings
from tests.notifications.smtp_server import Certificates, Recorder


@pytest.fixture(scope="session")
def certificates() -> Certificates:
    return Certificates()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def smtp_settings(port: int, tls: str = "starttls", **more: Any) -> Settings:
    return Settings(
        MESBOT_SMTP_HOST="127.0.0.1",
        MESBOT_SMTP_PORT=port,
        MESBOT_SMTP_TLS=tls,
        MESBOT_MAIL_FROM="mesbot@contoso.example",
        **more,
    )
