"""HTTP to Lookout's Mobile Risk API v2 (DOMAIN.md): the application key → access token exchange, and
one request with the retries every call shares. Transport failures become `SourceError`s here and
nowhere else.

Retries: a 401 refreshes the token once and tries again (tokens live 2 h, a long stream outlives one);
429 waits `Retry-After` (else backs off: the 100 requests/minute are shared by every tool using the
key); 5xx, refused connections and timeouts back off exponentially with jitter, up to `attempts` tries.
A key Lookout refuses (`invalid_client`) is not retried: it will not get better by asking again.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from integration.errors import SourceError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
TOKEN_PATH = "/oauth2/token"
TOKEN_MARGIN_SECONDS = 120  # refresh this long before the token's `expires_at`
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
KEY_HELP = (
    "create a new application key in the Lookout console (System → Application Keys) and set "
    "LOOKOUT_APP_KEY to it"
)


class LookoutKeyRefused(SourceError):
    """Lookout refused LOOKOUT_APP_KEY (`invalid_client`, or a 401/403 on the token request)."""


class LookoutUnavailable(SourceError):
    """Lookout kept failing (5xx, 429, timeouts, refused connections) through every retry."""


@dataclass(frozen=True)
class Retry:
    """How a request that failed for a passing reason is tried again."""

    attempts: int = 6  # tries in all; the waits are ~1, 2, 4, 8, 16 s
    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS

    def wait(self, failures: int, rng: random.Random) -> float:
        """Exponential back-off, jittered in its upper half (processes sharing a key do not retry in step)."""
        ceiling = min(self.cap, self.base * 2.0 ** (failures - 1))
        return ceiling / 2 + rng.random() * ceiling / 2


class LookoutHTTP:
    """One `httpx.AsyncClient` (so one connection pool and one token) per process. `SSL_CERT_FILE` is
    honoured by httpx itself (`trust_env`). `sleep`, `clock` and `rng` are injected so tests do not wait."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        retry: Retry = Retry(),
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.retry = retry
        self.client = httpx.AsyncClient(
            base_url=self.url, transport=transport, timeout=timeout, headers={"User-Agent": "mesbot"}
        )
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        await self.client.aclose()

    async def token(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            if renew or self._token is None or self.clock() >= self._expires_at - TOKEN_MARGIN_SECONDS:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    def forget_token(self, used: str) -> None:
        """A 401 for `used`: the next `token()` fetches a new one (unless another call already did)."""
        if self._token == used:
            self._token = None

    async def _fetch_token(self) -> None:
        response = await self._send_retrying(
            lambda: self.client.post(
                TOKEN_PATH,
                headers={"Authorization": f"Bearer {self._key}"},
                data={"grant_type": "client_credentials"},
            ),
            what="the token request",
        )
        body = _json(response)
        if response.status_code in (400, 401, 403):
            said = _oauth_error(body) or f"HTTP {response.status_code}"
            raise LookoutKeyRefused(f"Lookout refused LOOKOUT_APP_KEY ({said}): {KEY_HELP}.")
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise SourceError(
                f"Lookout's token endpoint answered HTTP {response.status_code} without an access token "
                f"(LOOKOUT_API_URL is {self.url}: is it Lookout's API?)."
            )
        self._token = body["access_token"]
        now = self.clock()
        if isinstance(body.get("expires_at"), int | float):
            self._expires_at = body["expires_at"] / 1000  # epoch milliseconds
        elif isinstance(body.get("expires_in"), int | float):
            self._expires_at = now + body["expires_in"]
        else:
            self._expires_at = now + 3600

    async def get_json(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET an API path with the token; a 401 renews the token once."""
        refreshed = False
        while True:
            token = await self.token()
            headers = {"Authorization": f"Bearer {token}"}
            response = await self._send_retrying(
                lambda: self.client.get(path, params=params, headers=headers),  # noqa: B023 (awaited here)
                what=f"GET {path}",
            )
            if response.status_code == 401 and not refreshed:
                self.forget_token(token)
                refreshed = True
                continue
            body = _json(response)
            if response.status_code != 200:
                raise SourceError(f"Lookout answered GET {path} with {_said(response, body)}.")
            return body

    async def open_stream(self, path: str, params: Mapping[str, Any], read_timeout: float) -> httpx.Response:
        """An open `text/event-stream` response (status checked, token renewed once on a 401); the caller
        closes it. No byte for `read_timeout` seconds ends a read with `httpx.ReadTimeout`: that is the
        heartbeat check. Refused connections and 5xx/429 are retried like any request."""
        refreshed = False
        failures = 0
        timeout = httpx.Timeout(self.client.timeout.connect or 30.0, read=read_timeout)
        while True:
            token = await self.token()
            request = self.client.build_request(
                "GET",
                path,
                params=params,
                timeout=timeout,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "text/event-stream",
                    "Cache-Control": "no-store",
                },
            )
            try:
                response = await self.client.send(request, stream=True)
            except (httpx.TransportError, httpx.TimeoutException) as error:
                failures += 1
                if failures >= self.retry.attempts:
                    raise LookoutUnavailable(
                        f"Lookout's event stream could not be opened after {failures} tries "
                        f"({type(error).__name__}; LOOKOUT_API_URL is {self.url})."
                    ) from None
                await self._wait(failures, None, f"GET {path} ({type(error).__name__})")
                continue
            if response.status_code == 200:
                return response
            await response.aread()
            await response.aclose()
            if response.status_code == 401 and not refreshed:
                self.forget_token(token)
                refreshed = True
                continue
            if not _passing(response.status_code):
                raise SourceError(f"Lookout refused the event stream: {_said(response, _json(response))}.")
            failures += 1
            if failures >= self.retry.attempts:
                raise LookoutUnavailable(
                    f"Lookout kept answering the event stream with HTTP {response.status_code} "
                    f"({failures} tries)."
                )
            await self._wait(failures, response, f"GET {path}")

    async def _send_retrying(
        self, send: Callable[[], Awaitable[httpx.Response]], *, what: str
    ) -> httpx.Response:
        failures = 0
        while True:
            try:
                response = await send()
            except (httpx.TransportError, httpx.TimeoutException) as error:
                failures += 1
                if failures >= self.retry.attempts:
                    raise LookoutUnavailable(
                        f"Lookout could not be reached for {what} after {failures} tries "
                        f"({type(error).__name__}; LOOKOUT_API_URL is {self.url})."
                    ) from None
                await self._wait(failures, None, f"{what} ({type(error).__name__})")
                continue
            if not _passing(response.status_code):
                return response
            failures += 1
            if failures >= self.retry.attempts:
                raise LookoutUnavailable(
                    f"Lookout kept answering {what} with HTTP {response.status_code} ({failures} tries)."
                )
            await self._wait(failures, response, what)

    async def _wait(self, failures: int, response: httpx.Response | None, what: str) -> None:
        seconds = _retry_after(response) if response is not None else None
        if seconds is None:
            seconds = self.retry.wait(failures, self.rng)
        status = f"HTTP {response.status_code}" if response is not None else "no answer"
        log.warning("Lookout: %s failed (%s); trying again in %.1f s", what, status, seconds)
        await self.sleep(seconds)


def _passing(status: int) -> bool:
    """Worth asking again unchanged: rate limited, or the server's own trouble."""
    return status == 429 or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # absent, or an HTTP date: back off instead
    return min(max(seconds, 0.0), BACKOFF_CAP_SECONDS * 5)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    if not isinstance(error, str):
        return ""
    description = body.get("error_description")
    text = f"{error}: {description}" if isinstance(description, str) and description else error
    return text[:200]


def _said(response: httpx.Response, body: Mapping[str, Any]) -> str:
    detail = _oauth_error(body) or str(body.get("message") or "")[:200]
    return f"HTTP {response.status_code}" + (f" ({detail})" if detail else "")
