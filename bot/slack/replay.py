"""Slash commands that change something are applied once per request. Slack lets a captured signed
request be replayed for 5 minutes, so a change is keyed by the request and the key is claimed in the
change's own transaction (`Console.run(once=…)`, the store's claims: across processes); a refused
attempt leaves the key free, and reads and previews may run again."""

import hashlib

from bot import commands as c
from bot.grammar import parse
from integration.errors import MesbotError

PREVIEWED = (c.RiskSet, c.RiskReset, c.PolicySet)  # without `--yes` these only preview


def once_key(text: str, trigger_id: object, signature: str | None) -> str | None:
    """The once-only key of a request whose command would change something, else None.

    A byte-for-byte replay repeats both the `trigger_id` and the signature (which covers the timestamp
    and the whole body). The `trigger_id` is Slack's own ID of the request and is there in Socket Mode
    too, where nothing is signed; the signature keys a request that names no `trigger_id`."""
    if not _changes(text):
        return None
    if isinstance(trigger_id, str) and trigger_id:
        return f"command:trigger:{_digest(trigger_id)}"
    if signature:
        return f"command:signature:{_digest(signature)}"
    return None


def _changes(text: str) -> bool:
    try:
        command = parse(text)
    except MesbotError:
        return False  # refused without running: nothing to claim
    if isinstance(command, PREVIEWED) and not command.confirmed:
        return False
    return command.changes


def _digest(value: str) -> str:
    """A fixed-length key whatever the request sent."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
