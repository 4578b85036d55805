"""`help [TOPIC]`: the grammar, and who may use what."""

from bot.commands import Help
from bot.grammar import USAGE
from bot.reply import Reply

WHO = {
    "help": "anyone",
    "status": "`me`: anyone; others: full and restricted access",
    "enrollment": "full and restricted; changing settings: full",
    "risk": "list: full and restricted; set/reset: full",
    "policy": "show: full and restricted; set: full",
    "connector": "show: full and restricted; changes: full",
    "subscription": "full access or a directory global administrator; consent: a global administrator",
    "notify": "full and restricted (your own settings)",
    "audit": "full",
}


def handle(command: Help, request: object = None) -> Reply:
    topics = [command.topic] if command.topic else list(USAGE)
    lines = [] if command.topic else ["mesbot: Lookout MES ↔ Intune. Commands:"]
    for topic in topics:
        lines.append(f"• {USAGE[topic]}  ({WHO[topic]})")
    if not command.topic:
        lines.append(
            "Risk levels: high, medium, low, none. Quote names with spaces. "
            "Changes show a preview first; add --yes to apply."
        )
    return Reply(ok=True, text="\n".join(lines), command="help")
