"""Slack messages from outbox payloads (`integration.messages`): fallback text + Block Kit per kind.

Every string from a phone, the directory or an upstream API is cut to size and escaped
(`slack_markup.escape`) or shown as plain_text; nothing is sent with `link_names` or `parse=full`.
A message stays within Slack's limits (≤ 50 blocks, ≤ 3,000 characters a text) by construction: each
list is cut to a character budget and says "+N more" for the rest.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from integration.messages import (
    CatchUp,
    ConnectorErrorNotice,
    DigestFacts,
    ErrorLine,
    Payload,
    StormSummary,
    TestAlert,
    ThreatAlert,
    ThreatFacts,
)
from notifications.slack_markup import MAX_TEXT, Block, context, escape, mrkdwn, plain, section

TURN_OFF_ACTION = "mesbot_alert_off"
NAME_LIMIT = 120  # characters of one untrusted name shown (before escaping, which may make it 5× longer)
MESSAGE_LIMIT = 400  # characters of an upstream error message shown
HEADER_LIMIT = 150  # Slack's limit for a header's plain_text
FALLBACK_LIMIT = 300
LIST_TEXT = 1_800  # characters per digest list: seven lists stay near 12,000 in all
CATCHUP_TEXT = 8_000

ADVICE = {
    "app": "Ask the owner to remove the app; Lookout for Work on the phone names it and walks them through.",
    "device": "Ask the owner to fix the setting or update the OS as Lookout for Work on the phone describes; "
    "the device is compliant again once Lookout sees the fix.",
    "network": "Ask the owner to leave that network (forget the Wi-Fi) and reconnect on a trusted one.",
    "web": "Ask the owner not to open that link again; Lookout flagged or blocked the content.",
}
LEVELS = ("high", "medium", "low", "none")


@dataclass(frozen=True)
class TurnOff:
    """A "Turn off these alerts" button: the category it turns off on Slack, and the signed token
    (`notifications.unsubscribe.make_token`, channel `slack`) naming the recipient: all it carries."""

    category: str
    token: str


def alert_blocks(
    payload: Payload, *, turn_off: TurnOff | None, slash_command: str = "/lookout"
) -> tuple[str, list[Block]]:
    """The fallback `text` and the `blocks` of one Slack message for `payload`."""
    if payload["kind"] == "threat":
        text, blocks = _threat(payload, slash_command)
    elif payload["kind"] == "storm":
        text, blocks = _storm(payload)
    elif payload["kind"] == "catchup":
        text, blocks = _catchup(payload)
    elif payload["kind"] == "test":
        text, blocks = _test(payload, slash_command)
    elif payload["kind"] == "connector-error":
        text, blocks = _connector_error(payload, slash_command)
    else:
        text, blocks = _digest(payload)
    blocks.append(context(_why(payload, turn_off, slash_command)))
    if turn_off is not None:
        blocks.append(_turn_off_button(turn_off))
    return cut(text, FALLBACK_LIMIT), blocks


def _threat(alert: ThreatAlert, slash_command: str) -> tuple[str, list[Block]]:
    risk, classification = _level(alert["risk"]), _name(alert["classification"])
    device = _device(alert)
    fields = [
        f"*Device*\n{device}",
        f"*Owner*\n{_name(alert['owner_email'])}",
        f"*Classification*\n{classification} ({_name(alert['category'])})",
        f"*Current risk*\n{risk}",
        f"*App*\n{_name(alert['app_name']) if alert['app_name'] else '—'}",
        f"*Detected*\n{when(alert['detected_at'])}",
    ]
    status = f"`{slash_command} status {_name(alert['device_id'])}`"
    advice = ADVICE.get(alert["category"], "Check the device in the Lookout console.")
    blocks = [
        _header(f"{risk.capitalize()}-risk threat: {classification}"),
        {"type": "section", "fields": [mrkdwn(field) for field in fields]},
        section(f"*What to do:* {advice} {status} shows the device's state and why it is blocked."),
    ]
    name = _name(alert["device_name"]) if alert["device_name"] else _name(alert["device_id"])
    owner = _name(alert["owner_email"])
    return f"{risk.capitalize()}-risk threat {classification} on {name} ({owner})", blocks


def _storm(storm: StormSummary) -> tuple[str, list[Block]]:
    risk, classification, count = _level(storm["risk"]), _name(storm["classification"]), _count(storm)
    window = f"{when(storm['window_start'])} – {when(storm['window_end'])}"
    devices = [f"• {_name(device)}" for device in storm["devices"]]
    summary = (
        f"{count:,} devices reported *{classification}* ({risk} risk) between {window}. "
        "mesbot folded them into this one message instead of one each."
    )
    blocks = [
        _header(f"{count:,} {risk}-risk {classification} threats"),
        section(summary),
        *listing("*Devices*", devices, total=count, max_chars=LIST_TEXT),
    ]
    return f"{count:,} {risk}-risk {classification} threats", blocks


def _catchup(catchup: CatchUp) -> tuple[str, list[Block]]:
    count = _count(catchup)
    lines = [f"• {_threat_line(alert)}" for alert in catchup["alerts"]]
    blocks = [
        _header(f"{count:,} alerts held during your quiet hours"),
        section(f"Your quiet hours ended {when(catchup['quiet_until'])}; these arrived meanwhile."),
        *listing("*Alerts*", lines, total=count, max_chars=CATCHUP_TEXT),
    ]
    return f"{count:,} alerts held during your quiet hours", blocks


def _test(test: TestAlert, slash_command: str) -> tuple[str, list[Block]]:
    text = (
        f"This is a test alert from mesbot, asked for {when(test['requested_at'])} with "
        f"`{slash_command} notify test`. Slack alerts reach you here."
    )
    return "mesbot test alert", [_header("mesbot test alert"), section(text)]


def _connector_error(notice: ConnectorErrorNotice, slash_command: str) -> tuple[str, list[Block]]:
    blocks = [
        _header("New connector error"),
        section(f"*{_name(notice['message'], MESSAGE_LIMIT)}*"),
        context(f"First seen {when(notice['first_seen'])} · fingerprint {_name(notice['fingerprint'])}"),
        section(f"*What to do:* `{slash_command} connector` lists the open errors and the connector state."),
    ]
    return f"New connector error: {_name(notice['message'], 100)}", blocks


def _digest(digest: DigestFacts) -> tuple[str, list[Block]]:
    new, ongoing, resolved = (len(digest[k]) for k in ("new_errors", "ongoing_errors", "resolved_errors"))
    title = f"On-call digest: {new} new, {ongoing} ongoing, {resolved} resolved connector errors"
    blocks = [_header(title), context(f"{when(digest['since'])} – {when(digest['until'])}")]
    for name, errors in (("New", new), ("Ongoing", ongoing), ("Resolved", resolved)):
        lines = [_error_line(error) for error in digest[f"{name.lower()}_errors"]]  # type: ignore[literal-required]
        blocks += listing(f"*{name} errors*", lines, total=errors, max_chars=LIST_TEXT)
    tables = (
        ("Devices about to go disconnected", "about_to_disconnect"),
        ("Compliance flips", "compliance_flips"),
        ("Delivery failures", "delivery_failures"),
        ("Policy drift", "policy_drift"),
    )
    for heading, key in tables:
        rows: list[dict[str, str]] = digest.get(key, [])  # type: ignore[assignment]
        lines = [f"• {_row(row)}" for row in rows]
        blocks += listing(f"*{heading}*", lines, total=len(rows), max_chars=LIST_TEXT)
    if digest["expired"]:
        blocks.append(section(f"*Expired:* {digest['expired']:,} alerts passed their time to live unsent."))
    return title, blocks


def listing(title: str, lines: list[str], *, total: int, max_chars: int) -> list[Block]:
    """`title` and escaped `lines` as sections of ≤ MAX_TEXT characters, at most `max_chars` in all;
    "+N more" for what is left out (`total` counts items the payload itself already left out)."""
    if total == 0 and not lines:
        return []
    blocks: list[Block] = []
    chunk, size, used, shown = [title], len(title), len(title), 0
    for line in lines:
        line = cut(line, MAX_TEXT // 2)
        if used + len(line) + 1 > max_chars:
            break
        if size + len(line) + 1 > MAX_TEXT:
            blocks.append(section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
        used += len(line) + 1
        shown += 1
    blocks.append(section("\n".join(chunk)))
    left = max(total, len(lines)) - shown
    if left > 0:
        blocks.append(context(f"+{left:,} more not shown"))
    return blocks


def cut(text: str, limit: int) -> str:
    """`text` (already escaped) within `limit` characters, never ending inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    amp = kept.rfind("&")
    if amp != -1 and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept + "…"


def when(value: str) -> str:
    """An ISO 8601 time in the reader's own time zone (Slack's `<!date>`), with UTC as the fallback."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return _name(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{shown}>"


def _why(payload: Payload, turn_off: TurnOff | None, slash_command: str) -> str:
    if payload["kind"] == "test":
        return f"*Why you got this:* you asked for it with `{slash_command} notify test`."
    if payload["kind"] == "digest" and turn_off is None:
        return "*Why this is here:* mesbot posts the on-call digest here (`MESBOT_ONCALL_CHANNEL`)."
    category = turn_off.category if turn_off else _category(payload)
    return (
        f"*Why you got this:* you turned on `{escape(category)}` alerts on Slack. "
        f"`{slash_command} notify {escape(category)} off slack` turns them off."
    )


def _category(payload: Payload) -> str:
    if payload["kind"] in ("threat", "storm"):
        return f"threat-{_level(payload['risk'])}"
    if payload["kind"] == "connector-error":
        return "connector-errors"
    if payload["kind"] == "digest":
        return "digest"
    return "threat-medium"  # a catch-up holds medium and low alerts; the button names its own category


def _turn_off_button(turn_off: TurnOff) -> Block:
    category = escape(turn_off.category)
    return {
        "type": "actions",
        "block_id": "mesbot_alert_off",
        "elements": [
            {
                "type": "button",
                "action_id": TURN_OFF_ACTION,
                "text": plain("Turn off these alerts"),
                "value": turn_off.token,
                "confirm": {
                    "title": plain("Turn off these alerts?"),
                    "text": mrkdwn(f"You will no longer get `{category}` alerts on Slack."),
                    "confirm": plain("Turn off"),
                    "deny": plain("Keep them"),
                },
            }
        ],
    }


def _header(text: str) -> Block:
    return {"type": "header", "text": plain(text if len(text) <= HEADER_LIMIT else text[:149] + "…")}


def _threat_line(alert: ThreatFacts) -> str:
    app = f", app {_name(alert['app_name'])}" if alert["app_name"] else ""
    return (
        f"*{_level(alert['risk'])}* {_name(alert['classification'])} on {_device(alert)}, "
        f"owner {_name(alert['owner_email'])}{app}, detected {when(alert['detected_at'])}"
    )


def _error_line(error: ErrorLine) -> str:
    return (
        f"• {_name(error['message'], MESSAGE_LIMIT)} — {error['count']:,}×, "
        f"first {when(error['first_seen'])}, last {when(error['last_seen'])} · {_name(error['fingerprint'])}"
    )


def _row(row: Mapping[str, str]) -> str:
    """A digest row of untrusted strings (device ids, owners, reasons) as `key: value, …`."""
    return ", ".join(f"{_name(key)}: {_shown(key, value)}" for key, value in row.items())


def _shown(key: str, value: str) -> str:
    return when(value) if key in ("at", "last_checkin") else _name(value, MESSAGE_LIMIT)


def _device(alert: ThreatFacts) -> str:
    name = _name(alert["device_name"]) if alert["device_name"] else "(unnamed)"
    return f"{name} · {_name(alert['platform'])} · {_name(alert['device_id'])}"


def _name(value: object, limit: int = NAME_LIMIT) -> str:
    """An untrusted value, cut to `limit` characters before it is escaped."""
    text = str(value) if value is not None else ""
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _level(value: object) -> str:
    return value if isinstance(value, str) and value in LEVELS else "unknown"


def _count(payload: StormSummary | CatchUp) -> int:
    value = payload["count"]
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
