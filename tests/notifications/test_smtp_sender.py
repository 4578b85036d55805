"""`SmtpSender` against a real SMTP server: TLS modes (never downgraded), login, one connection per
batch, and the SMTP faults of RELIABILITY.md — each mail gets Sent, Retry or Failed and the batch goes on."""

import socket

from notifications.outcome import Failed, Retry, Sent
from notifications.render import Mail, render_mail
from notifications.senders.email import SmtpSender
from tests.notifications import payloads
from tests.notifications.conftest import smtp_settings
from tests.notifications.smtp_server import PASSWORD, USERNAME, Certificates, Recorder, smtp_server


def mails(count: int, *, to: str = "admin@contoso.example") -> list[Mail]:
    return [
        render_mail(
            payloads.threat(threat_id=f"thr-{n}"), to=to, recipient_name="Admin", unsubscribe_url=None
        )
        for n in range(count)
    ]


def mail_to(address: str) -> Mail:
    return mails(1, to=address)[0]


async def test_starttls_sends_a_batch_of_ten_on_one_encrypted_connection(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send(mails(10))

    assert all(isinstance(outcome, Sent) for outcome in outcomes) and len(outcomes) == 10
    assert recorder.connections == 1
    assert len(recorder.received) == 10
    assert recorder.encrypted == [True] * 10


async def test_sent_carries_the_servers_reply(recorder: Recorder, certificates: Certificates) -> None:
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        [outcome] = await sender.send(mails(1))

    assert outcome == Sent("2.0.0 Ok: queued as Q1")


async def test_implicit_tls_encrypts_from_the_first_byte(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="implicit") as port:
        sender = SmtpSender(smtp_settings(port, "implicit"), ssl_context=certificates.client_context())
        outcomes = await sender.send(mails(2))

    assert outcomes == [Sent("2.0.0 Ok: queued as Q1"), Sent("2.0.0 Ok: queued as Q2")]
    assert recorder.encrypted == [True, True]


async def test_none_sends_in_plaintext_without_trying_starttls(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="starttls") as port:  # offers STARTTLS
        sender = SmtpSender(smtp_settings(port, "none"))
        outcomes = await sender.send(mails(1))

    assert isinstance(outcomes[0], Sent)
    assert recorder.encrypted == [False]


async def test_starttls_required_but_not_offered_fails_and_sends_nothing_in_plaintext(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="starttls", offer_starttls=False) as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send(mails(3))

    assert len(outcomes) == 3
    assert all(isinstance(outcome, Failed) and "STARTTLS" in outcome.reason for outcome in outcomes)
    assert recorder.data_commands == 0 and recorder.received == []


async def test_an_untrusted_certificate_fails_the_batch(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=Certificates().client_context())  # another CA
        outcomes = await sender.send(mails(2))

    assert all(isinstance(outcome, Failed) and "not trusted" in outcome.reason for outcome in outcomes)
    assert recorder.received == []


async def test_login_when_a_username_is_set(recorder: Recorder, certificates: Certificates) -> None:
    async with smtp_server(recorder, certificates, tls="starttls", auth=True) as port:
        settings = smtp_settings(port, MESBOT_SMTP_USERNAME=USERNAME, MESBOT_SMTP_PASSWORD=PASSWORD)
        outcomes = await SmtpSender(settings, ssl_context=certificates.client_context()).send(mails(2))

    assert all(isinstance(outcome, Sent) for outcome in outcomes)
    assert recorder.logins == [(USERNAME, PASSWORD)]


async def test_a_refused_login_535_fails_the_whole_batch_without_the_password(
    recorder: Recorder, certificates: Certificates
) -> None:
    async with smtp_server(recorder, certificates, tls="starttls", auth=True) as port:
        settings = smtp_settings(port, MESBOT_SMTP_USERNAME=USERNAME, MESBOT_SMTP_PASSWORD="wrong secret")
        outcomes = await SmtpSender(settings, ssl_context=certificates.client_context()).send(mails(4))

    assert len(outcomes) == 4
    for outcome in outcomes:
        assert isinstance(outcome, Failed)
        assert "535" in outcome.reason and "wrong secret" not in outcome.reason
    assert recorder.received == []
    assert recorder.connections == 1  # no retry storm against a relay that refused us


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_server_that_is_down_means_retry_for_every_mail(certificates: Certificates) -> None:
    sender = SmtpSender(smtp_settings(_unused_port()), ssl_context=certificates.client_context())

    outcomes = await sender.send(mails(3))

    assert len(outcomes) == 3
    assert all(isinstance(outcome, Retry) and "cannot reach" in outcome.reason for outcome in outcomes)


async def test_a_stall_mid_data_is_retried_and_the_rest_go_on_a_new_connection(
    recorder: Recorder, certificates: Certificates
) -> None:
    # The server answers DATA after 3 s: within aiosmtplib's per-read timeout (20 s), past the 0.5 s
    # this sender allows a whole mail. Only the whole-send timeout gives up on it.
    recorder.stall_for, recorder.stall_seconds = {"slow@contoso.example"}, 3.0
    batch = [mail_to("slow@contoso.example"), *mails(2)]
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context(), send_timeout=0.5)
        outcomes = await sender.send(batch)

    assert isinstance(outcomes[0], Retry) and "within 0.5 s" in outcomes[0].reason
    assert [type(outcome) for outcome in outcomes[1:]] == [Sent, Sent]
    assert recorder.connections == 2
    assert recorder.recipients == ["admin@contoso.example"] * 2


async def test_451_on_the_third_of_ten_retries_that_one_and_sends_the_other_nine(
    recorder: Recorder, certificates: Certificates
) -> None:
    recorder.data_replies = {3: "451 4.3.0 Try again later"}
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send(mails(10))

    assert outcomes[2] == Retry("the SMTP server refused the mail: 451 4.3.0 Try again later")
    assert [type(outcome) for n, outcome in enumerate(outcomes) if n != 2] == [Sent] * 9
    assert len(recorder.received) == 9
    assert recorder.connections == 1


async def test_550_for_one_recipient_fails_that_mail_with_the_reason_and_the_batch_goes_on(
    recorder: Recorder, certificates: Certificates
) -> None:
    recorder.refuse_recipients = {"gone@contoso.example": "550 5.1.1 No such user here"}
    batch = [*mails(1), mail_to("gone@contoso.example"), *mails(1)]
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send(batch)

    assert outcomes[1] == Failed("recipient refused: 550 5.1.1 No such user here")
    assert [type(outcomes[0]), type(outcomes[2])] == [Sent, Sent]
    assert recorder.recipients == ["admin@contoso.example"] * 2


async def test_a_4xx_recipient_refusal_is_retried(recorder: Recorder, certificates: Certificates) -> None:
    recorder.refuse_recipients = {"full@contoso.example": "452 4.2.2 Mailbox full"}
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send([mail_to("full@contoso.example"), *mails(1)])

    assert outcomes[0] == Retry("recipient refused: 452 4.2.2 Mailbox full")
    assert isinstance(outcomes[1], Sent)


async def test_an_address_that_is_not_plain_fails_before_reaching_the_server(
    recorder: Recorder, certificates: Certificates
) -> None:
    batch = [mail_to("Evil <x@y.example>, bcc@attacker.example"), *mails(1)]
    async with smtp_server(recorder, certificates, tls="starttls") as port:
        sender = SmtpSender(smtp_settings(port), ssl_context=certificates.client_context())
        outcomes = await sender.send(batch)

    assert isinstance(outcomes[0], Failed) and "not a plain e-mail address" in outcomes[0].reason
    assert isinstance(outcomes[1], Sent)
    assert recorder.recipients == ["admin@contoso.example"]
