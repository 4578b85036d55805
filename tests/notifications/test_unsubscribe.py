"""One-click unsubscribe (RFC 8058): the signed token, and `GET|POST /unsubscribe` on a small Starlette
app built from `notifications.unsubscribe.routes` (the same routes `bot/web.py` mounts)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import select
from starlette.applications import Starlette

from integration import audit, preferences
from integration.clock import FixedClock
from integration.config import Settings
from notifications.unsubscribe import make_token, read_token, routes, secret_key, unsubscribe_url
from storage.engine import Store
from storage.models import AuditEntry, DirectoryUser, StoredValue

KEY = b"k" * 32
ADMIN = "admin@contoso.example"


def test_a_token_reads_back_as_what_it_was_made_from() -> None:
    token = make_token(KEY, "user-1", "threat-high", "email")

    assert read_token(KEY, token) == ("user-1", "threat-high", "email")


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: (
            make_token(KEY, "user-1", "digest", "email").split(".")[0] + "." + t.split(".")[1]
        ),  # body swapped
        lambda t: t.split(".")[0],  # signature cut off
        lambda t: t.replace(".", ".!"),  # not base64
        lambda t: "",
        lambda t: "é." + t.split(".")[1],
    ],
)
def test_an_altered_or_forged_token_reads_as_nothing(forge: object) -> None:
    token = make_token(KEY, "user-1", "threat-high", "email")

    assert read_token(KEY, forge(token)) is None  # type: ignore[operator]


def test_a_token_made_with_another_key_reads_as_nothing() -> None:
    assert read_token(KEY, make_token(b"another key", "user-1", "threat-high", "email")) is None


def test_a_signed_token_for_an_unknown_category_reads_as_nothing() -> None:
    assert read_token(KEY, make_token(KEY, "user-1", "everything", "email")) is None


def test_the_link_is_under_the_public_url() -> None:
    settings = Settings(MESBOT_PUBLIC_URL="https://mesbot.example/")

    url = unsubscribe_url(settings, KEY, "user-1", "threat-high", "email")

    assert url.startswith("https://mesbot.example/unsubscribe?token=")
    assert read_token(KEY, url.split("token=", 1)[1]) == ("user-1", "threat-high", "email")


def test_the_configured_secret_key_wins(store: Store) -> None:
    assert secret_key(Settings(MESBOT_SECRET_KEY="from the environment"), store) == b"from the environment"
    with store.read() as session:
        assert session.get(StoredValue, "unsubscribe-key") is None


def test_without_a_configured_key_one_is_made_once_and_kept(store: Store) -> None:
    first = secret_key(Settings(), store)
    other = Store(store.url)  # another process on the same store
    try:
        again = secret_key(Settings(), other)
    finally:
        other.dispose()

    assert first == again and len(first) >= 32


@pytest.fixture
async def http(demo_store: Store, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=routes(Settings(), demo_store, clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mesbot") as client:
        yield client


def _admin_id(store: Store) -> str:
    with store.read() as session:
        user = session.exec(select(DirectoryUser).where(DirectoryUser.email == ADMIN)).one()
        return user.id


def _admin_token(store: Store, category: str = "threat-high") -> str:
    return make_token(secret_key(Settings(), store), _admin_id(store), category, "email")


def _email_on(store: Store, category: str = "threat-high") -> bool:
    with store.read() as session:
        return preferences.preferences(session, _admin_id(store))[category]["email"]


def _audit(store: Store) -> list[AuditEntry]:
    with store.read() as session:
        return audit.recent(session, 50)


async def test_post_unsubscribes_at_once_and_audits_it_as_the_user(
    http: httpx.AsyncClient, demo_store: Store, clock: FixedClock
) -> None:
    assert _email_on(demo_store)
    before = len(_audit(demo_store))

    response = await http.post(
        "/unsubscribe", params={"token": _admin_token(demo_store)}, content=b"List-Unsubscribe=One-Click"
    )

    assert response.status_code == 200  # RFC 8058: no redirect
    assert "threat-high alerts by email are off" in response.text
    assert not _email_on(demo_store)
    with demo_store.read() as session:
        assert preferences.preferences(session, _admin_id(demo_store))["threat-high"]["slack"]  # only email
    entries = _audit(demo_store)
    assert len(entries) == before + 1
    assert (entries[0].actor, entries[0].action, entries[0].at) == (ADMIN, "notify", clock.now())
    assert entries[0].after == {"threat-high": {"email": False, "slack": True}}


async def test_get_shows_a_confirm_form_and_changes_nothing(
    http: httpx.AsyncClient, demo_store: Store
) -> None:
    token = _admin_token(demo_store)
    before = len(_audit(demo_store))

    response = await http.get("/unsubscribe", params={"token": token})

    assert response.status_code == 200
    assert f'<form method="post" action="/unsubscribe?token={token}">' in response.text
    assert "Turn off threat-high alerts by email?" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert _email_on(demo_store) and len(_audit(demo_store)) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_forged_token_is_refused_and_nothing_changes(
    http: httpx.AsyncClient, demo_store: Store, method: str
) -> None:
    forged = make_token(b"guessed key", _admin_id(demo_store), "threat-high", "email")
    before = len(_audit(demo_store))

    response = await http.request(method, "/unsubscribe", params={"token": forged})

    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in response.text and "Nothing was changed" in response.text
    assert _email_on(demo_store) and len(_audit(demo_store)) == before


async def test_a_token_in_the_page_is_escaped(http: httpx.AsyncClient) -> None:
    response = await http.get("/unsubscribe", params={"token": '"><script>alert(1)</script>'})

    assert response.status_code == 400 and "<script>" not in response.text


async def test_a_user_who_left_the_directory_is_told_nothing_changed(
    http: httpx.AsyncClient, demo_store: Store
) -> None:
    token = make_token(secret_key(Settings(), demo_store), "no-such-user", "threat-high", "email")

    response = await http.post("/unsubscribe", params={"token": token})

    assert response.status_code == 400 and "Nothing changed" in response.text
