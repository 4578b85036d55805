"""A `Mail` as the bytes an SMTP server receives: headers only from values mesbot made or checked,
a multipart/alternative body (text, then HTML), and the RFC 8058 one-click unsubscribe headers.

Why so strict about headers: Python 3.11 before 3.11.10 turns an RFC 2047 encoded word in a header
value (`=?UTF-8?Q?=0A?=Bcc: x@y`) into a header of its own. Subjects are built from catalogue values
(`notifications.render`), addresses must be plain ASCII `local@domain`, and every header value is
refused if it holds a control character or an encoded-word opener.
"""

import hashlib
import re
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from notifications.render import Mail

# Lines up to RFC 5322's hard limit: the default 78 would fold a long List-Unsubscribe URL into
# encoded words, which mail clients do not read as a URL. 7-bit: no server needs 8BITMIME.
POLICY = SMTP.clone(max_line_length=998, cte_type="7bit")
HEADER_LIMIT = 900

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_SAFE_HEADER = re.compile(r"[\x20-\x7e]*")


class HeaderError(ValueError):
    """A header value mesbot will not send (the mail is `Failed`, nothing reaches the server)."""


def address_problem(address: str) -> str | None:
    """Why `address` cannot be a mail header or envelope address, or None. Only plain ASCII
    `local@domain`: no display name, quotes, comments, spaces, controls or encoded words."""
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        return f"not a plain e-mail address: {address!r}"[:200]
    if "=?" in address:
        return f"an encoded word in an e-mail address: {address!r}"[:200]
    return None


def _checked(name: str, value: str) -> str:
    if len(value) > HEADER_LIMIT or not _SAFE_HEADER.fullmatch(value) or "=?" in value:
        raise HeaderError(f"refusing an unsafe {name} header")
    return value


def message_id(key: str | None, domain: str) -> str:
    """From the outbox key when there is one: a re-send after a crash carries the same Message-ID, so
    mail clients that deduplicate show it once."""
    unique = hashlib.sha256(key.encode()).hexdigest()[:40] if key else uuid.uuid4().hex
    return f"<{unique}@{domain}>"


def build_message(mail: Mail, *, sender: str, now: datetime) -> EmailMessage:
    for address in (mail.to, sender):
        problem = address_problem(address)
        if problem:
            raise HeaderError(problem)
    message = EmailMessage(policy=POLICY)
    message["Subject"] = _checked("Subject", mail.subject)
    message["From"] = sender
    message["To"] = mail.to
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(mail.key, sender.rsplit("@", 1)[1])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a robot
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{_checked('List-Unsubscribe', mail.unsubscribe_url)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def mail_bytes(mail: Mail, *, sender: str, now: datetime) -> bytes:
    return build_message(mail, sender=sender, now=now).as_bytes()
