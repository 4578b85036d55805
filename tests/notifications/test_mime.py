"""The bytes of a mail: only headers mesbot made or checked, whatever a caller hands over."""

from datetime import UTC, datetime

import pytest

from notifications.render import Mail
from notifications.senders.mime import HeaderError, address_problem, mail_bytes

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _mail(**changes: str) -> Mail:
    fields = {"to": "a@contoso.example", "subject": "[mesbot] Test alert", "text": "t", "html": "<p>h</p>"}
    return Mail(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "x\r\nBcc: evil@attacker.example"},
        {"subject": "=?UTF-8?Q?=0A?=Bcc: evil@attacker.example"},
        {"subject": "caf\u00e9"},
        {"unsubscribe_url": "http://x/u?t=1\r\nBcc: evil@attacker.example"},
        {"to": "a@contoso.example\r\nBcc: evil@attacker.example"},
        {"to": "=?UTF-8?Q?=0A?=@contoso.example"},
        {"to": "Ann <a@contoso.example>"},
    ],
)
def test_an_unsafe_header_value_is_refused(changes: dict[str, str]) -> None:
    with pytest.raises(HeaderError):
        mail_bytes(_mail(**changes), sender="mesbot@contoso.example", now=NOW)


def test_a_long_unsubscribe_link_stays_one_readable_url() -> None:
    url = "https://mesbot.example/unsubscribe?token=" + "A" * 120 + "." + "b" * 43

    data = mail_bytes(_mail(unsubscribe_url=url), sender="mesbot@contoso.example", now=NOW)

    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in data
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data


@pytest.mark.parametrize(
    ("address", "plain"),
    [
        ("admin@contoso.example", True),
        ("first.last+tag@mail.contoso.example", True),
        ("no-at-sign", False),
        ("a@b@c", False),
        ("a b@c.example", False),
        ('"quoted"@c.example', False),
        ("a@-bad.example", False),
        ("ä@c.example", False),
    ],
)
def test_plain_addresses(address: str, plain: bool) -> None:
    assert (address_problem(address) is None) is plain


def test_every_line_ends_in_crlf_and_fits_the_smtp_limit() -> None:
    text = "first line\nsecond line\r\nthird\rfourth " + "long " * 300 + "\n"
    html = "<p>" + "x" * 3000 + "</p>\n<p>y</p>"
    data = mail_bytes(_mail(text=text, html=html), sender="m@c.example", now=NOW)

    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    assert not any(b"\n" in line or b"\r" in line for line in lines), "a bare LF or CR"
    assert max(len(line) for line in lines) <= 998
