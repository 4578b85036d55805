"""Every setting's validation names the field and what is allowed."""

import pytest

from integration import validation
from integration.errors import InvalidInput
from integration.levels import RiskLevel


@pytest.mark.parametrize("text", ["0", "-5", "4", "1441", "99999999999", "abc", "", "1.5", "６０"])
def test_heartbeat_out_of_range(text: str) -> None:
    with pytest.raises(
        InvalidInput, match=r"Heartbeat frequency must be a whole number of minutes from 5 to 1440"
    ):
        validation.heartbeat_minutes(text)


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("60", 60), ("1440", 1440)])
def test_heartbeat_in_range(text: str, value: int) -> None:
    assert validation.heartbeat_minutes(text) == value


@pytest.mark.parametrize("text", ["0", "91", "-1", "x", "30d"])
def test_disconnected_days_out_of_range(text: str) -> None:
    with pytest.raises(
        InvalidInput, match=r"Disconnected status must be a whole number of days from 1 to 90"
    ):
        validation.disconnected_days(text)


@pytest.mark.parametrize("text", ["1", "30", "90"])
def test_disconnected_days_in_range(text: str) -> None:
    assert validation.disconnected_days(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "not-a-guid",
        "1234",
        "6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e2",
        "{x}",
        "urn:uuid:6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e21",
    ],
)
def test_bad_guid(text: str) -> None:
    with pytest.raises(InvalidInput, match="Tenant directory ID must be a GUID"):
        validation.guid("Tenant directory ID", text)


def test_guid_is_canonicalised() -> None:
    assert (
        validation.guid("x", "6F1C2A9E-3B7D-4C1E-9A55-0D2F6C8B4E21") == "6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e21"
    )


@pytest.mark.parametrize(
    "text",
    [
        "nobody",
        "a@b",
        "a b@c.example",
        "<a@b.example>",
        "a@b.example\r\nBcc: x@y.example",
        "a@@b.example",
        "",
    ],
)
def test_bad_email(text: str) -> None:
    with pytest.raises(InvalidInput, match="Error-report e-mail must be an e-mail address"):
        validation.email("Error-report e-mail", text)


def test_email_is_lowercased() -> None:
    assert validation.email("x", "Ops@Contoso.Example") == "ops@contoso.example"


@pytest.mark.parametrize("text", ["critical", "", "HIGHEST", "1"])
def test_bad_risk_level(text: str) -> None:
    with pytest.raises(InvalidInput, match="Risk level must be one of high, medium, low or none"):
        validation.risk_level(text)


def test_policy_level_excludes_none() -> None:
    assert validation.policy_level("Medium") is RiskLevel.MEDIUM
    with pytest.raises(InvalidInput, match="Policy level must be one of high, medium, low"):
        validation.policy_level("none")


@pytest.mark.parametrize("text", ["", "   ", "x" * 257, "bad\x00name", "tab\tname"])
def test_bad_group_name(text: str) -> None:
    with pytest.raises(InvalidInput, match="Group name must be"):
        validation.group_name(text)


@pytest.mark.parametrize("text", ["24:00", "7:00", "22:60", "2200", "ab:cd"])
def test_bad_clock_time(text: str) -> None:
    with pytest.raises(InvalidInput, match="must be a 24-hour time HH:MM"):
        validation.clock_time("Quiet hours start", text)


def test_echoed_input_is_shortened_and_made_printable() -> None:
    shown = validation.show("a\x00b" + "c" * 100)
    assert "\x00" not in shown and len(shown) <= 60
