"""`audit [N]`: the last N audit entries, newest first."""

from bot.commands import Audit
from bot.handlers.context import Request
from bot.reply import Reply
from integration import audit, tenant


def handle(command: Audit, request: Request) -> Reply:
    entries = [
        {
            "at": tenant.stamp(e.at),
            "actor": e.actor,
            "action": e.action,
            "outcome": e.outcome,
            "before": e.before,
            "after": e.after,
        }
        for e in audit.recent(request.session, command.limit)
    ]
    lines = [f"Last {len(entries)} audit entries:"] if entries else ["The audit log is empty."]
    for e in entries:
        denied = " (DENIED)" if e["outcome"] == "denied" else ""
        lines.append(f"• {e['at']} {e['actor']} {e['action']}{denied}: {e['before']} → {e['after']}")
    return Reply(ok=True, text="\n".join(lines), data={"entries": entries}, command="audit")
