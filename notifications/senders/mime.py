"""A `Mail` as the bytes an SMTP server receives: a fixed shape (headers, then multipart/alternative
with a text and an HTML part, each UTF-8 quoted-printable), written directly rather than through
`email.message.EmailMessage`.

Why by hand: the shape never varies, and the standard library's header machinery is both the slow
part of sending a mail (≈ 2 ms a message, more than the SMTP exchange itself on a reused connection)
and the part with the bug this module must not meet: Python 3.11 before 3.11.10 turns an RFC 2047
encoded word in a header value (`=?UTF-8?Q?=0A?=Bcc: x@y`) into a header of its own. Here every header
value is one mesbot made (subjects come from catalogue values, `notifications.render`) or checked: plain
ASCII, no control character, no encoded-word opener, addresses plain `local@domain`. The tests parse
the result back with `email.parser.BytesParser(policy=default)`.
"""

import binascii
import hashlib
import re
import uuid
from datetime import datetime
from email.utils import format_datetime

from notifications.render import Mail

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


def mail_bytes(mail: Mail, *, sender: str, now: datetime) -> bytes:
    """The whole message, CRLF line endings, every line within RFC 5322's limits (headers are checked
    to fit on one line, so a long List-Unsubscribe URL is never folded into encoded words)."""
    for address in (mail.to, sender):
        problem = address_problem(address)
        if problem:
            raise HeaderError(problem)
    boundary = f"=_mesbot_{uuid.uuid4().hex}"  # "=_" never occurs in quoted-printable text
    headers = [
        f"Subject: {_checked('Subject', mail.subject)}",
        f"From: {sender}",
        f"To: {mail.to}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id(mail.key, sender.rsplit('@', 1)[1])}",
        "Auto-Submitted: auto-generated",  # RFC 3834: no out-of-office replies to a robot
    ]
    if mail.unsubscribe_url:
        headers.append(f"List-Unsubscribe: <{_checked('List-Unsubscribe', mail.unsubscribe_url)}>")
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")  # RFC 8058
    headers += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    return b"".join(
        [
            "\r\n".join(headers).encode("ascii"),
            f"\r\n\r\n--{boundary}\r\n".encode("ascii"),
            _part("plain", mail.text),
            f"--{boundary}\r\n".encode("ascii"),
            _part("html", mail.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )


def _part(subtype: str, content: str) -> bytes:
    """One body part, quoted-printable: lines of at most 76 characters, readable in an `.eml` file."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").replace("\n", "\r\n")
    # The CRLF at the end also tells binascii to break soft lines with CRLF.
    body = binascii.b2a_qp((lines + "\r\n").encode("utf-8"), istext=True)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
    return head.encode("ascii") + b"\r\n\r\n" + body
