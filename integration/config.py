"""The one settings object, read from the environment and `.env` (DESIGN.md §3)."""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every environment variable mesbot reads. Built explicitly, never at import."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///./var/mesbot.db", alias="MESBOT_DATABASE_URL")
    source: Literal["demo", "lookout"] = Field("demo", alias="MESBOT_SOURCE")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="MESBOT_SLACK_API_URL")
    slash_command: str = Field("/lookout", alias="MESBOT_SLASH_COMMAND")
    oncall_channel: str | None = Field(None, alias="MESBOT_ONCALL_CHANNEL")
    risk_announce_channel: str | None = Field(None, alias="MESBOT_RISK_ANNOUNCE_CHANNEL")

    smtp_host: str | None = Field(None, alias="MESBOT_SMTP_HOST")
    smtp_port: int | None = Field(None, alias="MESBOT_SMTP_PORT")
    smtp_username: str | None = Field(None, alias="MESBOT_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="MESBOT_SMTP_PASSWORD")
    smtp_tls: Literal["starttls", "implicit", "none"] = Field("starttls", alias="MESBOT_SMTP_TLS")
    mail_from: str = Field("mesbot@localhost", alias="MESBOT_MAIL_FROM")
    public_url: str = Field("http://127.0.0.1:3000", alias="MESBOT_PUBLIC_URL")
    secret_key: SecretStr | None = Field(None, alias="MESBOT_SECRET_KEY")  # signs unsubscribe links

    http_host: str = Field("127.0.0.1", alias="MESBOT_HTTP_HOST")
    http_port: int = Field(3000, alias="MESBOT_HTTP_PORT")
    digest_cron: str = Field("0 * * * *", alias="MESBOT_DIGEST_CRON")
    storm_threshold: int = Field(20, ge=0, alias="MESBOT_STORM_THRESHOLD")
    storm_window_minutes: int = Field(10, ge=1, alias="MESBOT_STORM_WINDOW_MINUTES")
    # How long a deliverer may hold claimed outbox rows before another takes them over (a worker that
    # died mid-batch): longer than the slowest batch, short enough that a crash delays little.
    outbox_lease_seconds: int = Field(120, ge=5, le=3600, alias="MESBOT_OUTBOX_LEASE_SECONDS")

    lookout_app_key: SecretStr | None = Field(None, alias="LOOKOUT_APP_KEY")
    lookout_api_url: str = Field("https://api.lookout.com", alias="LOOKOUT_API_URL")
    lookout_app_key_created: str | None = Field(None, alias="LOOKOUT_APP_KEY_CREATED")

    graph_tenant_id: str | None = Field(None, alias="GRAPH_TENANT_ID")
    graph_client_id: str | None = Field(None, alias="GRAPH_CLIENT_ID")
    graph_client_secret: SecretStr | None = Field(None, alias="GRAPH_CLIENT_SECRET")
    # A PEM file with the app's private key and its certificate: a certificate credential instead of a secret
    graph_client_certificate: str | None = Field(None, alias="GRAPH_CLIENT_CERTIFICATE")
    graph_api_url: str = Field("https://graph.microsoft.com/v1.0", alias="GRAPH_API_URL")
    graph_login_url: str = Field("https://login.microsoftonline.com", alias="GRAPH_LOGIN_URL")
