"""The one entry every front end calls: text from a directory user in, a `Reply` out.

It parses, checks access inside the same transaction that runs the command (so a change is
authorised against the state it changes), maps domain errors to refusals in one place, and audits
refused attempts to change something.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import commands as c
from bot.grammar import parse
from bot.handlers import HANDLERS
from bot.handlers.context import Request
from bot.reply import Reply
from integration import audit
from integration.access import authorize, sign_in
from integration.clock import Clock
from integration.errors import MesbotError, PermissionDenied
from storage.engine import Store
from storage.errors import StoreError
from storage.models import Claim

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Console:
    store: Store
    clock: Clock

    def run(self, email: str, text: str, *, once: str | None = None) -> Reply:
        """Run `text` as the directory user `email`. With `once`, a change is made at most once for
        that key: the key is claimed in the change's own transaction, so a refused or failed attempt
        leaves it free and a second attempt after success is answered `ALREADY_DONE`."""
        try:
            command = parse(text)
        except MesbotError as error:
            return Reply.refused(str(error))
        if isinstance(command, c.Help):
            return HANDLERS[c.Help](command, None)  # type: ignore[arg-type]
        try:
            return self._execute(email, command, once if command.changes else None)
        except AlreadyDone:
            return Reply(
                ok=True, text=ALREADY_DONE, data={"applied": False, "duplicate": True}, command="once"
            )
        except PermissionDenied as error:
            if command.changes:
                self._audit_denied(email, command)
            return Reply.refused(str(error))
        except MesbotError as error:
            return Reply.refused(str(error))

    def _execute(self, email: str, command: c.Command, once: str | None) -> Reply:
        session_scope = self.store.write if command.changes else self.store.read
        with session_scope() as session:
            actor, subscription = sign_in(session, email)
            authorize(session, actor, command.needs(), subscription, command.what)
            if once is not None:
                _claim(session, once, self.clock.now())
            return HANDLERS[type(command)](command, Request(session, actor, self.clock.now()))

    def _audit_denied(self, email: str, command: c.Command) -> None:
        try:
            with self.store.write() as session:
                change = audit.Change(_action_name(command), None, {"command": repr(command)})
                audit.record(
                    session, at=self.clock.now(), actor=email.lower(), change=change, outcome="denied"
                )
        except StoreError as error:
            # The refusal still reaches the user; a busy or broken store must not turn it into an error.
            log.warning("denied %s by %s not audited: %s", _action_name(command), email, error)


class AlreadyDone(Exception):
    """The `once` key was claimed by an earlier, successful run."""


ALREADY_DONE = "This change was already confirmed; it was applied once."


def _claim(session: Session, key: str, now: datetime) -> None:
    try:
        with session.begin_nested():
            session.add(Claim(key=key, claimed_at=now))
    except IntegrityError:
        raise AlreadyDone(key) from None


def _action_name(command: c.Command) -> str:
    """`RiskSet` → `risk.set`, the naming the audit log uses."""
    return re.sub(r"(?<!^)(?=[A-Z])", ".", type(command).__name__).lower()
