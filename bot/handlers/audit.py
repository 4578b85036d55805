"""`audit [N]`: the last N audit entries, newest first."""

from bot.commands import Audit
from bot.handlers.context import Request
from bot.reply import Reply
from integration import audit, tenant
from integration.text import neutralise as n


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
        # actors and values come from Slack profiles, the directory and typed input
        actor, before, after = (n(str(e[key])) for key in ("actor", "before", "after"))
        lines.append(f"• {e['at']} {actor} {e['action']}{denied}: {before} → {after}")
    return Reply(ok=True, text="\n".join(lines), data={"entries": entries}, command="audit")
