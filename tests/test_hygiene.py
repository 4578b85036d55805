"""The test environment itself: what a developer has set or keeps in `.env` never reaches a test."""

import os
from pathlib import Path

from integration.config import Settings
from tests.conftest import SETTINGS_PREFIXES


def test_no_setting_from_the_environment_reaches_a_test() -> None:
    assert [name for name in os.environ if name.startswith(SETTINGS_PREFIXES)] == []


def test_settings_are_the_defaults_whatever_is_beside_the_checkout() -> None:
    assert not Path(".env").exists()
    settings = Settings()
    assert settings.database_url == "sqlite:///./var/mesbot.db"
    assert settings.slack_bot_token is None and settings.slack_signing_secret is None
