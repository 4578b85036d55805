"""The Slack user → e-mail cache: an entry lives `ttl` seconds, and the cache holds at most
`max_cached` users, dropping expired entries before live ones when it is full."""

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.identity import MAX_CACHED, SlackIdentity
from tests.slack.fake_slack import FakeSlack

USERS = ["UADMIN", "UANALYST", "UALICE", "USTRANGER"]  # all with an e-mail in the fake


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _identity(fake: FakeSlack, ticks: Ticks, *, ttl: float, max_cached: int = MAX_CACHED) -> SlackIdentity:
    client = AsyncWebClient(token="xoxb-test", base_url=f"{fake.url}/api/")
    return SlackIdentity(client, ttl=ttl, monotonic=ticks, max_cached=max_cached)


def _lookups(fake: FakeSlack) -> int:
    return len(fake.called("users.info"))


async def test_an_email_changed_in_slack_is_used_once_the_cached_one_expires(fake_slack: FakeSlack) -> None:
    ticks = Ticks()
    identity = _identity(fake_slack, ticks, ttl=600)
    assert await identity.email("UADMIN") == "admin@contoso.example"
    fake_slack.users["UADMIN"] = "new-admin@contoso.example"
    ticks.now = 599
    assert await identity.email("UADMIN") == "admin@contoso.example"
    assert _lookups(fake_slack) == 1
    ticks.now = 600
    assert await identity.email("UADMIN") == "new-admin@contoso.example"
    assert _lookups(fake_slack) == 2


async def test_a_full_cache_drops_expired_entries_before_live_ones(fake_slack: FakeSlack) -> None:
    ticks = Ticks()
    identity = _identity(fake_slack, ticks, ttl=10, max_cached=3)
    await identity.email("UADMIN")
    await identity.email("UANALYST")  # both expire at 10
    ticks.now = 5
    await identity.email("UALICE")  # expires at 15
    ticks.now = 11
    await identity.email("USTRANGER")  # the cache is full: the two expired entries make room
    looked_up = _lookups(fake_slack)
    assert await identity.email("UALICE") == "alice@contoso.example"
    assert await identity.email("USTRANGER") == "stranger@elsewhere.example"
    assert _lookups(fake_slack) == looked_up  # both answered from the cache


async def test_the_cache_never_holds_more_users_than_its_bound(fake_slack: FakeSlack) -> None:
    ticks = Ticks()
    identity = _identity(fake_slack, ticks, ttl=600, max_cached=3)
    for user in USERS:
        await identity.email(user)
    looked_up = _lookups(fake_slack)
    for user in USERS:  # all within the TTL: only what the cache still holds is answered from it
        await identity.email(user)
    answered_from_cache = len(USERS) - (_lookups(fake_slack) - looked_up)
    assert answered_from_cache <= 3
