"""Replies as Block Kit: escaped, within Slack's limits (50 blocks, 3,000 characters a text), with
"+N more" instead of failing on long lists, and an escaped plain-text fallback."""

from typing import Any

from bot.reply import Reply
from notifications.slack_markup import MAX_BLOCKS, MAX_TEXT, Block, context, escape, section

FALLBACK_LIMIT = 3_000
TOTAL_TEXT = 12_000  # keep whole messages well under what Slack renders without truncating
CONFIRM_ACTION = "mesbot_confirm"
CANCEL_ACTION = "mesbot_cancel"


def message(
    reply: Reply, *, confirm: tuple[str, str] | None = None, max_blocks: int = MAX_BLOCKS
) -> dict[str, Any]:
    """`text` + `blocks` for chat.postMessage, an ack or a response_url post; `confirm` adds
    Confirm/Cancel buttons with those values."""
    lines = (reply.text or "(no output)").split("\n")
    if not reply.ok:
        lines[0] = f":no_entry: {lines[0]}"
    # one block kept spare for a trailing context ("Applied by …")
    blocks = _sections(lines, budget=max_blocks - 1 - (1 if confirm else 0))
    if confirm is not None:
        blocks.append(confirm_buttons(*confirm))
    return {"text": fallback(reply.text or "(no output)"), "blocks": blocks}


def fallback(text: str) -> str:
    """The notification/fallback `text`: escaped line by line too, and short."""
    escaped = "\n".join(escape(line) for line in text.split("\n"))
    return escaped if len(escaped) <= FALLBACK_LIMIT else escaped[: FALLBACK_LIMIT - 1] + "…"


def _sections(lines: list[str], budget: int) -> list[Block]:
    """Pack escaped lines into sections of ≤ MAX_TEXT characters, at most `budget` blocks and
    TOTAL_TEXT characters in all; what does not fit becomes a "+N more" note."""
    blocks: list[Block] = []
    chunk: list[str] = []
    size = total = 0
    for index, line in enumerate(lines):
        text = escape(line)
        if len(text) > MAX_TEXT - 10:
            text = text[: MAX_TEXT - 11] + "…"
        full = chunk and size + len(text) + 1 > MAX_TEXT
        if full or total + len(text) > TOTAL_TEXT:
            if full and len(blocks) < budget - 2 and total + len(text) <= TOTAL_TEXT:
                blocks.append(section("\n".join(chunk)))
                chunk, size = [], 0
            else:
                if chunk:
                    blocks.append(section("\n".join(chunk)))
                blocks.append(context(f"+{len(lines) - index:,} more lines not shown"))
                return blocks
        chunk.append(text)
        size += len(text) + 1
        total += len(text) + 1
    if chunk:
        blocks.append(section("\n".join(chunk)))
    return blocks


def confirm_buttons(value: str, cancel_value: str) -> Block:
    return {
        "type": "actions",
        "block_id": "mesbot_confirm",
        "elements": [
            {
                "type": "button",
                "action_id": CONFIRM_ACTION,
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": CANCEL_ACTION,
                "text": {"type": "plain_text", "text": "Cancel"},
                "value": cancel_value,
            },
        ],
    }
