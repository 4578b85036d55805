"""Slack mrkdwn made safe for untrusted text, and the small Block Kit pieces every Slack message of
mesbot is built from (the console's replies in `bot.slack.blocks`, the notifier's alerts in
`notifications.slack_blocks`). One `escape` for both, so a fix reaches every message."""

from typing import Any

from integration.text import neutralise

MAX_BLOCKS = 50  # per message (Home and modals allow 100)
MAX_TEXT = 3_000  # per text object

Block = dict[str, Any]


def escape(text: str) -> str:
    """Untrusted text made safe for Slack mrkdwn: control and bidi characters made visible
    (`integration.text.neutralise`; a newline too, so escape a reply line by line), then `&` first,
    `<` and `>`. Slack reads `<!channel>`, `<@U123>` and `<url|label>` only from raw angle brackets."""
    return neutralise(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> Block:
    # verbatim: no auto-linking of URLs or #channels that hostile names may contain
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain(text: str) -> Block:
    """A plain_text object: Slack shows it as is, markup and all (no emoji shortcodes either)."""
    return {"type": "plain_text", "text": text, "emoji": False}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}
