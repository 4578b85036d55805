"""The one entry every front end calls: text from a directory user in, a `Reply` out.

It parses, checks access inside the same transaction that runs the command (so a change is
authorised against the state it changes), maps domain errors to refusals in one place, audits
refused attempts to change something, and turns an unexpected failure into a polite reply with a
short reference that is also in the log line.
"""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bot import commands as c
from bot.grammar import parse
from bot.handlers import HANDLERS
from bot.handlers.context import Request
from bot.reply import Reply
from integration import audit
from integration.access import authorize, sign_in
from integration.clock import Clock
from integration.errors import MesbotError, PermissionDenied
from storage import claims
from storage.engine import Store
from storage.errors import StoreError
from storage.states import AuditOutcome

log = logging.getLogger(__name__)

ALREADY_DONE = "This change was already confirmed; it was applied once."
ACTOR_MAX = 254  # the longest e-mail address; a longer "actor" is cut before it reaches the audit log


def failed(log: logging.Logger, what: str) -> Reply:
    """Log the exception being handled with a short reference and answer with that reference."""
    reference = secrets.token_hex(4)
    log.exception("%s failed [ref %s]", what, reference)
    return Reply.refused(
        f"Something went wrong on mesbot's side (reference {reference}); it has been logged. Try again; "
        "if you were changing something, `audit` shows whether it was applied."
    )


SendNow = Callable[[tuple[str, ...]], dict[str, tuple[bool, str]]]  # channel → (sent, what happened)


@dataclass(frozen=True)
class Console:
    store: Store
    clock: Clock
    # Delivers the given outbox rows at once and says per channel how it went (`notify test`);
    # blocking, called after the command's transaction. None: the rows wait for the deliverer.
    send_now: SendNow | None = None

    def run(
        self,
        email: str,
        text: str,
        *,
        once: str | None = None,
        zone: str | None = None,
        held: bool = False,
    ) -> Reply:
        """Run `text` as the directory user `email`. With `once`, a change is made at most once for
        that key: the key is claimed in the change's own transaction, so a refused or failed attempt
        leaves it free and a second attempt after success is answered `ALREADY_DONE`. With `held`, a
        read runs on a connection the calling thread keeps (`Store.held_read`: the event loop's)."""
        try:
            command = parse(text)
        except MesbotError as error:
            return Reply.refused(str(error))
        if isinstance(command, c.Help):
            return HANDLERS[c.Help](command, None)  # type: ignore[arg-type]
        try:
            reply = self._execute(email, command, once if command.changes else None, zone, held)
            return self._send_now(reply) if reply.send_now else reply
        except AlreadyDone:
            return Reply(
                ok=True, text=ALREADY_DONE, data={"applied": False, "duplicate": True}, command="once"
            )
        except PermissionDenied as error:
            self._audit_denied(email, command, text)
            return Reply.refused(str(error))
        except MesbotError as error:
            return Reply.refused(str(error))
        except Exception:
            return failed(log, f"command {type(command).__name__}")

    def reads_only(self, text: str) -> bool:
        """Whether `text` is a command that changes nothing (text that does not parse changes
        nothing either: it is refused)."""
        try:
            return not parse(text).changes
        except MesbotError:
            return True

    def refuse(self, actor: str, text: str, reason: str) -> Reply:
        """A front end could not tell who is asking (e.g. a Slack profile without e-mail): refuse
        with `reason`, and audit it when `text` was an attempt to change something."""
        try:
            command = parse(text)
        except MesbotError:
            return Reply.refused(reason)
        self._audit_denied(actor, command, text)
        return Reply.refused(reason)

    def _send_now(self, reply: Reply) -> Reply:
        if self.send_now is None:
            return reply
        went = self.send_now(reply.send_now)
        channels = reply.data.get("queued", [])
        went = {c: went.get(c, (False, "not sent: the test message was no longer queued")) for c in channels}
        lines = [f"Test alert by {channel}: {what}" for channel, (_, what) in sorted(went.items())]
        data = {
            "sent": {channel: "ok" if sent else "error" for channel, (sent, _) in went.items()},
            "details": {channel: what for channel, (_, what) in went.items()},
        }
        ok = all(sent for sent, _ in went.values())
        return Reply(ok=ok, text="\n".join(lines), data=data, command=reply.command)

    def _execute(
        self, email: str, command: c.Command, once: str | None, zone: str | None, held: bool
    ) -> Reply:
        if command.changes:
            session_scope = self.store.write
        else:
            session_scope = self.store.held_read if held else self.store.read
        with session_scope() as session:
            actor, subscription = sign_in(session, email)
            authorize(session, actor, command.needs(), subscription, command.what)
            if once is not None and not claims.claim_in(session, once, self.clock.now()):
                raise AlreadyDone(once)
            return HANDLERS[type(command)](command, Request(session, actor, self.clock.now(), zone))

    def _audit_denied(self, actor: str, command: c.Command, text: str) -> None:
        if command.action is None:
            return
        who = actor.strip()[:ACTOR_MAX] or "(nobody)"
        who = who.lower() if "@" in who else who  # addresses as the directory keeps them; Slack IDs as is
        change = audit.Change(command.action, None, {"command": text.strip()})
        try:
            with self.store.write() as session:
                audit.record(
                    session, at=self.clock.now(), actor=who, change=change, outcome=AuditOutcome.DENIED
                )
        except StoreError as error:
            # The refusal still reaches the user; a busy or broken store must not turn it into an error.
            log.warning("denied %s by %s not audited: %s", command.action, who, error)


class AlreadyDone(Exception):
    """The `once` key was claimed by an earlier, successful run."""
