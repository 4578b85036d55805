"""Slack user → directory e-mail, from `users.info` (`users:read.email`), cached with a TTL."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from integration.errors import MesbotError

TTL_SECONDS = 600.0
MAX_CACHED = 50_000


class UnknownSlackUser(MesbotError):
    """The Slack user has no e-mail address mesbot can see."""


@dataclass
class SlackIdentity:
    client: AsyncWebClient
    ttl: float = TTL_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    max_cached: int = MAX_CACHED
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)
    _zones: dict[str, str] = field(default_factory=dict)  # Slack user ID → profile `tz` (IANA), when known

    def forget(self, user_id: str) -> None:
        """Look the user up again next time (e.g. after their profile or access changed)."""
        self._cache.pop(user_id, None)
        self._zones.pop(user_id, None)

    def knows(self, user_id: str) -> bool:
        """Whether `email(user_id)` would answer from the cache, without asking Slack."""
        cached = self._cache.get(user_id)
        return cached is not None and cached[1] > self.monotonic()

    async def email(self, user_id: str) -> str:
        cached = self._cache.get(user_id)
        if cached and cached[1] > self.monotonic():
            return cached[0]
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as error:
            raise UnknownSlackUser(
                f"mesbot could not look up your Slack profile ({error.response.get('error', 'error')}); "
                "try again, or ask an admin to check the app's `users:read.email` scope."
            ) from error
        user = response.get("user") or {}
        if user.get("deleted") or user.get("is_bot"):
            raise UnknownSlackUser("Deactivated Slack accounts and bots cannot use mesbot.")
        email = (user.get("profile") or {}).get("email")
        if not email:
            raise UnknownSlackUser(
                "Your Slack profile has no e-mail address mesbot can see, so it cannot find you in the "
                "directory. Ask an admin to check the app's `users:read.email` scope."
            )
        if len(self._cache) >= self.max_cached:
            now = self.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._zones = {k: v for k, v in self._zones.items() if k in self._cache}
        self._cache[user_id] = (str(email).lower(), self.monotonic() + self.ttl)
        zone = user.get("tz")
        if isinstance(zone, str) and zone:
            self._zones[user_id] = zone
        return str(email).lower()

    def zone(self, user_id: str) -> str | None:
        """The time zone of the user's Slack profile (`tz`), as `users.info` last gave it: quiet hours
        set from Slack default to it."""
        return self._zones.get(user_id)
