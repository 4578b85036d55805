"""No SMTP host: mail is written as `.eml` files in `./var/mail/` (the demo's mailbox)."""

from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from integration.clock import FixedClock
from integration.config import Settings
from notifications.outcome import Failed, Sent
from notifications.render import render_mail
from notifications.senders.email import MailDirSender, email_sender
from tests.notifications import payloads


async def test_without_an_smtp_host_mail_lands_in_var_mail_under_the_working_directory(
    tmp_path: Path,
) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    sender = email_sender(Settings(), clock=clock)
    assert isinstance(sender, MailDirSender)
    mail = render_mail(
        payloads.threat(), to="admin@contoso.example", recipient_name="A", unsubscribe_url="http://x/u?t=1"
    )

    [first] = await sender.send([mail])
    clock.advance(timedelta(seconds=1))
    [second] = await sender.send([mail])

    assert isinstance(first, Sent) and isinstance(second, Sent)
    assert first.detail is not None and second.detail is not None
    files = sorted((tmp_path / "var" / "mail").iterdir())
    assert [str(path) for path in files] == [first.detail, second.detail]  # sorted by time
    assert files[0].name.startswith("20261126T120000000000Z-") and files[0].suffix == ".eml"
    message = BytesParser(policy=default).parsebytes(files[0].read_bytes())
    assert message["Subject"] == "[mesbot] High risk: TROJAN on 1 device"
    assert message["From"] == "mesbot@localhost" and message["To"] == "admin@contoso.example"
    assert message["List-Unsubscribe"] == "<http://x/u?t=1>"
    assert message.get_body(preferencelist=("html",)) is not None


async def test_the_same_outbox_key_gives_the_same_message_id(tmp_path: Path) -> None:
    sender = MailDirSender(tmp_path)
    mail = render_mail(
        payloads.threat(), to="a@contoso.example", recipient_name=None, unsubscribe_url=None, key="k"
    )
    other = render_mail(
        payloads.threat(), to="a@contoso.example", recipient_name=None, unsubscribe_url=None, key="j"
    )

    outcomes = await sender.send([mail, mail, other])

    parser = BytesParser(policy=default)
    ids = [
        parser.parsebytes(Path(str(o.detail)).read_bytes())["Message-ID"]
        for o in outcomes
        if isinstance(o, Sent)
    ]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("@localhost>")


async def test_a_mail_to_an_address_that_is_not_plain_is_not_written(tmp_path: Path) -> None:
    mail = render_mail(
        payloads.threat(), to="x@y.example\r\nBcc: z@w.example", recipient_name=None, unsubscribe_url=None
    )

    [outcome] = await MailDirSender(tmp_path).send([mail])

    assert isinstance(outcome, Failed)
    assert list(tmp_path.iterdir()) == []
