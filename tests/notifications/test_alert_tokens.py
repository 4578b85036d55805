"""The turn-off button's token: only a token mesbot signed, unaltered, names a user and a category."""

import pytest

from notifications import alert_tokens

KEY = b"k" * 32


def test_a_token_names_its_user_and_category() -> None:
    token = alert_tokens.make(KEY, "user-1", "threat-high")
    assert alert_tokens.read(KEY, token) == ("user-1", "threat-high")
    assert len(token) < 2_000  # a button value's limit


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: alert_tokens.make(b"another key", "user-1", "threat-high"),
        lambda t: alert_tokens.make(KEY, "user-2", "threat-high").split(".")[0] + "." + t.split(".")[1],
        lambda t: t.split(".")[0],  # no signature
        lambda t: "",
        lambda t: "é.é",
        lambda t: t + "." + t,
        lambda t: alert_tokens.make(KEY, "user-1", "everything"),  # not a category
    ],
)
def test_anything_else_names_nobody(forge: object) -> None:
    token = alert_tokens.make(KEY, "user-1", "threat-high")
    assert alert_tokens.read(KEY, forge(token)) is None  # type: ignore[operator]


def test_the_configured_key_wins_over_the_stored_one() -> None:
    def stored() -> bytes:
        raise AssertionError("not asked when MESBOT_SECRET_KEY is set")

    assert alert_tokens.signing_key(stored, {"MESBOT_SECRET_KEY": "configured"}) == b"configured"
    assert alert_tokens.signing_key(lambda: b"stored", {}) == b"stored"
