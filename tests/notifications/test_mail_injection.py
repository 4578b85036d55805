"""Hostile device, app and user names (from managed phones and the directory) parsed back from the
bytes the SMTP server received: no extra header, no raw markup in the HTML, no control or bidi
character in the text, and a subject made of catalogue values only (RELIABILITY.md, injection)."""

from email.message import EmailMessage

import pytest

from notifications.outcome import Sent
from notifications.render import render_mail
from notifications.senders.email import SmtpSender
from tests.notifications import payloads
from tests.notifications.conftest import smtp_settings
from tests.notifications.smtp_server import Certificates, Recorder, smtp_server

UNSUBSCRIBE = "http://127.0.0.1:3000/unsubscribe?token=abc.def"
EXPECTED_HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # base64 parts carry the SMTP line ending: the text's own line breaks come back as CRLF
    return tuple(str(part.get_content()).replace("\r\n", "\n") for part in (text, html))  # type: ignore[attr-defined,return-value]


@pytest.mark.parametrize("hostile", payloads.HOSTILE)
async def test_a_hostile_name_stays_in_the_body_and_out_of_the_headers(
    hostile: str, recorder: Recorder, certificates: Certificates
) -> None:
    payload = payloads.threat(device_name=hostile, app_name=hostile, owner_email=hostile)
    mail = render_mail(
        payload, to="admin@contoso.example", recipient_name=hostile, unsubscribe_url=UNSUBSCRIBE
    )
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        assert isinstance((await sender.send([mail]))[0], Sent)

    [message] = recorder.messages()
    assert list(message.keys()) == EXPECTED_HEADERS
    assert message["Subject"] == "[mesbot] High risk: TROJAN on 1 device"
    assert message["To"] == "admin@contoso.example" and message["Bcc"] is None
    assert recorder.recipients == ["admin@contoso.example"]
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = _parts(message)
    assert "<script>" not in html and "<!channel>" not in html  # plain text may show them: it is not markup
    for part in (text, html):
        assert not any(c in part for c in "\r\x1b\x07\u202e"), "a control or bidi character got through"
    assert "\nBcc:" not in text  # the name's CR/LF did not start a line of its own
    assert "evil@attacker.example" not in str(message["Bcc"] or "")


async def test_a_name_that_mimics_markup_is_escaped_in_html_and_shown_as_is_in_text(
    recorder: Recorder, certificates: Certificates
) -> None:
    payload = payloads.threat(app_name="<script>alert(1)</script> & <!channel>")
    mail = render_mail(payload, to="admin@contoso.example", recipient_name=None, unsubscribe_url=None)
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        await SmtpSender(smtp_settings(port), ssl_context=certificates.client_context()).send([mail])

    text, html = _parts(recorder.messages()[0])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;" in html
    assert "App:             <script>alert(1)</script> & <!channel>" in text


async def test_a_mail_without_a_link_has_no_unsubscribe_headers(
    recorder: Recorder, certificates: Certificates
) -> None:
    mail = render_mail(
        payloads.self_test(), to="admin@contoso.example", recipient_name="A", unsubscribe_url=None
    )
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        await SmtpSender(smtp_settings(port), ssl_context=certificates.client_context()).send([mail])

    [message] = recorder.messages()
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
