"""`audit [N]`: the last N audit entries, newest first, each change in words."""

from bot.commands import Audit
from bot.handlers.context import Request
from bot.reply import Reply
from integration import audit, tenant
from integration.audit_words import describe
from integration.text import neutralise
from storage.states import AuditOutcome


def handle(command: Audit, request: Request) -> Reply:
    found = audit.recent(request.session, command.limit)
    entries = [
        {
            "at": tenant.stamp(e.at),
            "actor": e.actor,
            "action": e.action,
            "outcome": e.outcome.value,
            "before": e.before,
            "after": e.after,
        }
        for e in found
    ]
    if not found:
        lines = ["The audit log is empty."]
    else:
        lines = ["Last entry:" if len(found) == 1 else f"Last {len(found)} entries:"]
    for entry, shown in zip(found, entries, strict=True):
        denied = " (DENIED)" if entry.outcome == AuditOutcome.DENIED else ""
        # actors and values come from Slack profiles, the directory and typed input
        lines.append(f"• {shown['at']} {neutralise(entry.actor)}{denied}: {neutralise(describe(entry))}")
    return Reply(ok=True, text="\n".join(lines), data={"entries": entries}, command="audit")
