"""Mails from outbox payloads (`integration.messages`): a multipart text + HTML `Mail` per message,
rendered from the Jinja2 templates in `templates/mail/`.

Untrusted text (device, app and owner names, upstream error messages) is neutralised for both parts
(`integration.text.neutralise`: no control or bidi character reaches a reader) and autoescaped in the
HTML. The subject is built from catalogue values and counts only, never from that text: Python 3.11
before 3.11.10 turns an RFC 2047 encoded word in a header value (`=?UTF-8?Q?=0A?=Bcc: x@y`) into a
header of its own.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import jinja2

from integration.catalogue import CATALOGUE
from integration.messages import Payload
from integration.text import neutralise

DIGEST_LIST_LIMIT = 50  # per section; a digest after a long outage would otherwise run to megabytes
_LEVELS = ("high", "medium", "low", "none")


@dataclass(frozen=True)
class Mail:
    """One rendered mail to one address. `key` is the outbox idempotency key: the Message-ID is made
    from it, so a re-send after a crash is recognisably the same message."""

    to: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class _Section:
    """A digest list as shown: the first items, how many in all, how many were left out."""

    shown: list[Any]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


def render_mail(
    payload: Payload,
    *,
    to: str,
    recipient_name: str | None,
    unsubscribe_url: str | None,
    key: str | None = None,
    slash_command: str = "/lookout",
) -> Mail:
    """The mail for one outbox payload to `to`.

    `recipient_name` is the directory user's display name, or None for an address that is not a user
    (the connector's error-report address): the footer then says why that address gets the mail.
    `unsubscribe_url` is the one-click link for the category this mail belongs to (None: no link).
    """
    kind = payload["kind"]
    facts = _clean(dict(payload))
    context: dict[str, Any] = {
        **facts,
        **_extras(payload),
        "recipient_name": neutralise(recipient_name) if recipient_name else None,
        "unsubscribe_url": unsubscribe_url,
        "slash_command": slash_command,
        **_why(payload, user=recipient_name is not None, slash_command=slash_command),
    }
    context["subject"] = subject = _subject(payload)
    text_env, html_env = _environments()
    return Mail(
        to=to,
        subject=subject,
        text=text_env.get_template(f"{kind}.txt").render(context),
        html=html_env.get_template(f"{kind}.html").render(context),
        unsubscribe_url=unsubscribe_url,
        key=key,
    )


@cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    """Built on first use, not at import. Two environments rather than `select_autoescape`, which
    matches the end of the file name: the HTML one escapes every value, the text one none."""
    options: dict[str, Any] = {
        "loader": jinja2.PackageLoader("templates", "mail"),
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
        "auto_reload": False,  # templates ship with the package: no stat() per mail
    }
    text_env = jinja2.Environment(autoescape=False, **options)
    html_env = jinja2.Environment(autoescape=True, **options)
    for env in (text_env, html_env):
        env.filters["when"] = _when
    return text_env, html_env


def _clean(value: Any) -> Any:
    """Every string in a payload neutralised, whatever its nesting (payloads are JSON)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _when(value: str) -> str:
    """An ISO 8601 time as people read it (`2026-11-26 12:00 UTC`); anything else as given."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    if moment.utcoffset():
        return moment.strftime("%Y-%m-%d %H:%M %z")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _classification(name: object) -> str:
    """A catalogue name, or a fixed word: only catalogue values may reach the subject."""
    return name if isinstance(name, str) and name in CATALOGUE else "unknown classification"


def _level(risk: object) -> str:
    return risk if isinstance(risk, str) and risk in _LEVELS else "unknown"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _subject(payload: Payload) -> str:
    """From catalogue values, levels and counts only (see the module docstring)."""
    if payload["kind"] == "threat":
        level = _level(payload["risk"]).capitalize()
        return f"[mesbot] {level} risk: {_classification(payload['classification'])} on 1 device"
    if payload["kind"] == "storm":
        level = _level(payload["risk"]).capitalize()
        devices = _plural(_count(payload["count"]), "device")
        return f"[mesbot] {level} risk: {_classification(payload['classification'])} on {devices} (summary)"
    if payload["kind"] == "catchup":
        return f"[mesbot] {_plural(_count(payload['count']), 'alert')} held during your quiet hours"
    if payload["kind"] == "test":
        return "[mesbot] Test alert"
    if payload["kind"] == "connector-error":
        return "[mesbot] New connector error"
    new, ongoing, resolved = (
        len(payload["new_errors"]),
        len(payload["ongoing_errors"]),
        len(payload["resolved_errors"]),
    )
    return f"[mesbot] On-call digest: {new} new, {ongoing} ongoing, {resolved} resolved connector errors"


def _extras(payload: Payload) -> dict[str, Any]:
    """Values the templates show besides the payload's own: advice, and digest lists cut to size."""
    if payload["kind"] == "threat":
        return {"advice": advice(payload["classification"], payload["category"])}
    if payload["kind"] == "digest":
        lists = (
            "new_errors",
            "ongoing_errors",
            "resolved_errors",
            "about_to_disconnect",
            "compliance_flips",
            "delivery_failures",
        )
        sections = {name: _section(payload[name]) for name in lists}  # type: ignore[literal-required]
        return {**sections, "policy_drift": _section(payload.get("policy_drift", []))}
    return {}


def _section(items: list[Any]) -> _Section:
    return _Section(shown=_clean(items[:DIGEST_LIST_LIMIT]), total=len(items))


def _why(payload: Payload, *, user: bool, slash_command: str) -> dict[str, Any]:
    """The footer: why this address got the mail, and the command that stops it."""
    kind = payload["kind"]
    if kind == "test":
        return {
            "reason": f"you asked for a test alert with `{slash_command} notify test`.",
            "commands": [],
            "command_effect": "",
        }
    if kind in ("threat", "storm"):
        categories = [f"threat-{_level(payload['risk'])}"]  # type: ignore[typeddict-item]
    elif kind == "catchup":
        risks = {_level(alert["risk"]) for alert in payload["alerts"]}  # type: ignore[typeddict-item]
        categories = [f"threat-{level}" for level in _LEVELS if level in risks] or ["threat-medium"]
    elif not user:
        return {
            "reason": "this address is the connector's error-report address.",
            "commands": [f"{slash_command} connector set error-email ADDRESS"],
            "command_effect": "changes it",
        }
    else:
        categories = ["connector-errors" if kind == "connector-error" else "digest"]
    return {
        "reason": f"you turned on {' and '.join(categories)} by email.",
        "commands": [f"{slash_command} notify {category} off email" for category in categories],
        "command_effect": "turns it off",
    }


_ADVICE_BY_CLASSIFICATION = {
    "OUT_OF_DATE_OS": "Update the device's operating system to the latest version its vendor offers.",
    "OUT_OF_DATE_ASPL": "Install the latest Android security patch on the device.",
    "ROOT_JAILBREAK": (
        "The device is rooted or jailbroken: restore the vendor's firmware (a factory reset) "
        "or retire the device in Intune. It stays blocked until then."
    ),
    "NO_DEVICE_LOCK": "Turn on a screen lock (PIN, password or biometrics) on the device.",
    "UNENCRYPTED": "Turn on device encryption in the device's security settings.",
    "DEVELOPER_MODE_ENABLED": "Turn off developer mode in the device's settings.",
    "USB_DEBUGGING_ENABLED": "Turn off USB debugging in the device's developer options.",
    "UNKNOWN_SOURCES_ENABLED": "Turn off installing apps from unknown sources.",
    "PCP_PAUSED": "Turn Lookout's phishing and content protection back on in the Lookout app.",
    "VPN_NOT_ENABLED": "Turn on the VPN that the device's policy expects.",
}
_ADVICE_BY_CATEGORY = {
    "app": (
        "Remove the app from the device (or ask its owner to). Lookout clears the threat once the "
        "app is gone, and Intune lets the device in again."
    ),
    "device": "Fix the device setting Lookout reports, then open the Lookout app so it checks in again.",
    "network": (
        "Leave the network now (turn Wi-Fi off or forget the network) and reconnect only to a "
        "trusted one; Lookout clears the threat when the device has left it."
    ),
    "web": (
        "Do not open the link or site again; if credentials were entered there, change them. "
        "Lookout clears the threat on its own."
    ),
}


def advice(classification: str, category: str) -> str:
    """What to do about a threat, in plain words: by classification where it is specific, else by
    its category (app: remove the app; device: fix the setting; network: leave the network)."""
    return _ADVICE_BY_CLASSIFICATION.get(classification) or _ADVICE_BY_CATEGORY.get(
        category, "Open the device in the Lookout console and follow its remediation steps."
    )
