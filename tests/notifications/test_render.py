"""Rendering outbox payloads as mails: every kind, what an alert tells its reader, and subjects made
of catalogue values and counts only."""

import jinja2
import pytest

from integration.messages import Payload
from notifications.render import DIGEST_LIST_LIMIT, advice, render_mail
from tests.notifications import payloads

EVERY_KIND: list[tuple[Payload, str]] = [
    (payloads.threat(), "[mesbot] High risk: TROJAN on 1 device"),
    (payloads.storm(), "[mesbot] High risk: TROJAN on 37 devices (summary)"),
    (payloads.catchup(), "[mesbot] 5 alerts held during your quiet hours"),
    (payloads.self_test(), "[mesbot] Test alert"),
    (payloads.connector_error(), "[mesbot] New connector error"),
    (payloads.digest(), "[mesbot] On-call digest: 1 new, 0 ongoing, 0 resolved connector errors"),
]


@pytest.mark.parametrize(
    ("payload", "subject"), EVERY_KIND, ids=lambda p: p["kind"] if isinstance(p, dict) else ""
)
def test_every_kind_renders_a_text_and_an_html_part(payload: Payload, subject: str) -> None:
    mail = render_mail(
        payload, to="admin@contoso.example", recipient_name="Admin", unsubscribe_url=None, key="k1"
    )

    assert mail.subject == subject
    assert mail.text.startswith("Hello Admin,\n")
    assert mail.html.startswith("<!DOCTYPE html>") and "Hello Admin," in mail.html
    assert "Why you got this:" in mail.text and "Why you got this:" in mail.html
    assert (mail.to, mail.key, mail.unsubscribe_url) == ("admin@contoso.example", "k1", None)


def test_a_threat_alert_says_what_happened_what_to_do_and_why() -> None:
    url = "https://mesbot.example/unsubscribe?token=t.s"
    mail = render_mail(
        payloads.threat(), to="admin@contoso.example", recipient_name="Admin", unsubscribe_url=url
    )

    for line in [
        "Device:          Alice's Pixel 8 (dev-0001)",
        "Owner:           alice@contoso.example",
        "Classification:  TROJAN (app threat)",
        "Current risk:    high",
        "App:             Flashlight Pro",
        "Detected:        2026-11-26 11:58 UTC",
        "What to do: Remove the app from the device",
        "Why you got this: you turned on threat-high by email.",
        "`/lookout notify threat-high off email` turns it off.",
        f"Unsubscribe with one click: {url}",
    ]:
        assert line in mail.text
    assert f'<a href="{url}">Unsubscribe with one click</a>' in mail.html
    assert "<code>/lookout notify threat-high off email</code> turns it off." in mail.html


def test_subjects_never_carry_text_from_phones() -> None:
    hostile = payloads.threat(classification="=?UTF-8?Q?=0A?=Bcc: x@y", risk="<b>", device_name="Bcc: x@y")
    storm = payloads.storm(classification="TROJAN\r\nBcc: x@y", count="999\r\nBcc: x@y")

    assert render_mail(hostile, to="a@b.example", recipient_name=None, unsubscribe_url=None).subject == (
        "[mesbot] Unknown risk: unknown classification on 1 device"
    )
    assert render_mail(storm, to="a@b.example", recipient_name=None, unsubscribe_url=None).subject == (
        "[mesbot] High risk: unknown classification on 0 devices (summary)"
    )


@pytest.mark.parametrize(
    ("classification", "category", "words"),
    [
        ("TROJAN", "app", "Remove the app"),
        ("OUT_OF_DATE_OS", "device", "Update the device's operating system"),
        ("ROGUE_WIFI", "network", "Leave the network"),
        ("PHISHING_CONTENT", "web", "Do not open the link"),
        ("NO_DEVICE_LOCK", "device", "Turn on a screen lock"),
    ],
)
def test_advice_by_classification_or_category(classification: str, category: str, words: str) -> None:
    assert advice(classification, category).startswith(words)


def test_the_text_part_shows_control_and_bidi_characters_visibly() -> None:
    payload = payloads.threat(device_name="a\r\nFAKE: line\x1b[2J\u202eexe")

    mail = render_mail(payload, to="a@b.example", recipient_name="\u202eNimda", unsubscribe_url=None)

    assert "a␍␊FAKE: line␛[2J⟨U+202E⟩exe (dev-0001)" in mail.text
    assert "Hello ⟨U+202E⟩Nimda," in mail.text
    assert "\u202e" not in mail.html and "\x1b" not in mail.html


def test_a_missing_fact_is_an_error_not_an_empty_line() -> None:
    broken = payloads.threat()
    del broken["app_name"]  # type: ignore[misc]

    with pytest.raises(jinja2.UndefinedError):
        render_mail(broken, to="a@b.example", recipient_name=None, unsubscribe_url=None)


def test_the_error_report_address_is_told_why_it_gets_connector_mail() -> None:
    mail = render_mail(
        payloads.connector_error(), to="oncall@contoso.example", recipient_name=None, unsubscribe_url=None
    )

    assert "Why you got this: this address is the connector's error-report address." in mail.text
    assert "`/lookout connector set error-email ADDRESS` changes it." in mail.text
    assert "    Graph answered 401 invalid_client" in mail.text


def test_a_user_opted_in_to_the_digest_is_told_how_to_stop_it() -> None:
    mail = render_mail(payloads.digest(), to="a@contoso.example", recipient_name="Ann", unsubscribe_url=None)

    assert "`/lookout notify digest off email` turns it off." in mail.text


def test_a_catch_up_names_each_held_category_and_counts_what_it_leaves_out() -> None:
    mail = render_mail(payloads.catchup(), to="a@contoso.example", recipient_name="Ann", unsubscribe_url=None)

    assert "you turned on threat-medium and threat-low by email." in mail.text
    assert (
        "- medium risk: ROGUE_WIFI on Alice's Pixel 8 (dev-0001), owner alice@contoso.example, detected"
        in mail.text
    )
    assert "...and 3 more." in mail.text


def test_a_long_digest_list_is_cut_with_a_count_of_the_rest() -> None:
    flips = [
        {
            "device_id": f"dev-{n}",
            "owner_email": "o@contoso.example",
            "became": "noncompliant",
            "at": "2026-11-26T11:00:00Z",
        }
        for n in range(DIGEST_LIST_LIMIT + 7)
    ]
    mail = render_mail(
        payloads.digest(compliance_flips=flips), to="a@b.example", recipient_name=None, unsubscribe_url=None
    )

    assert f"Compliance changes ({DIGEST_LIST_LIMIT + 7}):" in mail.text
    assert mail.text.count("became noncompliant") == DIGEST_LIST_LIMIT
    assert "...and 7 more" in mail.text
    assert "…and 7 more" in mail.html
    assert "2 messages expired unsent" in mail.text
