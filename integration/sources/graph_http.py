"""How mesbot asks Microsoft Graph: one request path holding the whole failure policy, and paging.

429/503 wait exactly `Retry-After`, other 5xx and timeouts back off with jitter, attempts are bounded,
a 401 renews the token once, a 403 names the application permission the call needs. Paging follows
`@odata.nextLink`, only on Graph's own host (a link elsewhere would carry the bearer token off it).
"""

import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from integration.sources.graph_errors import (
    GraphCredentialsError,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    GraphUnavailable,
)
from integration.sources.graph_token import Credentials, TokenSource
from integration.text import neutralise

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_CAP_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0  # longer than this and the job gives up for now (it runs again in an hour)
_RETRY_STATUSES = {429, 500, 502, 503, 504}

Sleep = Callable[[float], Awaitable[None]]


class GraphHttp:
    """GET requests to Graph v1.0 with an app-only token, retried as the module docstring says."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_url: str,
        login_url: str,
        ssl_context: ssl.SSLContext | None,
        sleep: Sleep,
        timeout: float,
        max_attempts: int,
    ) -> None:
        context = ssl_context or ssl.create_default_context()  # reads SSL_CERT_FILE for a private CA
        self._api = api_url.rstrip("/")
        self._host = urlsplit(self._api).netloc
        self._client = httpx.AsyncClient(verify=context, timeout=timeout)
        self._tokens = TokenSource(credentials, login_url, ssl_context=context, timeout=timeout)
        self._sleep = sleep
        self._max_attempts = max_attempts

    async def aclose(self) -> None:
        await self._client.aclose()
        self._tokens.close()

    async def pages(
        self, path: str, params: dict[str, str] | None, needs: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = self._api + path
        while url is not None:
            body = await self.get(url, params, needs)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError(f"Microsoft Graph answered {path} without a `value` list.")
            yield [item for item in value if isinstance(item, dict)]
            link = body.get("@odata.nextLink")
            if link is not None and (not isinstance(link, str) or urlsplit(link).netloc != self._host):
                raise GraphError(
                    f"Microsoft Graph's next page link for {path} leads off {self._host}; not followed."
                )
            url, params = link, None  # the link carries the query itself

    async def get(self, path_or_url: str, params: dict[str, str] | None, needs: str) -> dict[str, Any]:
        url = path_or_url if path_or_url.startswith(("https://", "http://")) else self._api + path_or_url
        what = urlsplit(url).path.removeprefix(urlsplit(self._api).path) or "/"
        renewed = False
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                token = await self._tokens.token()
                response = await self._client.get(
                    url, params=params, headers={"Authorization": f"Bearer {token}"}
                )
            except (httpx.TimeoutException, httpx.TransportError, GraphUnavailable) as error:
                if last:
                    raise GraphUnavailable(
                        f"Microsoft Graph did not answer {what} after {attempt} attempts "
                        f"({type(error).__name__}); it will be tried again at the next run."
                    ) from None
                await self._wait(_backoff(attempt), what, type(error).__name__)
                continue
            status = response.status_code
            if status == 200:
                return _json(response, what)
            if status == 401 and not renewed:
                self._tokens.forget()
                renewed = True
                continue
            if status in _RETRY_STATUSES and not last:
                await self._wait(_retry_after(response) or _backoff(attempt), what, str(status))
                continue
            raise _refusal(response, what, needs, attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _wait(self, seconds: float, what: str, why: str) -> None:
        if seconds > MAX_RETRY_AFTER_SECONDS:
            raise GraphUnavailable(
                f"Microsoft Graph asked mesbot to wait {seconds:.0f} s before asking for {what} again "
                f"({why}); it will be tried again at the next run."
            )
        log.info("Graph %s answered %s; retrying in %.1f s", what, why, seconds)
        await self._sleep(seconds)


def _backoff(attempt: int) -> float:
    """Exponential with full jitter: several workers that failed together do not retry together."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_CAP_SECONDS, 2.0 ** (attempt - 1))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _refusal(response: httpx.Response, what: str, needs: str, attempts: int) -> GraphError:
    status = response.status_code
    code, message = _graph_error(response)
    said = f"{status} {code}: {message}" if code else str(status)
    if status == 401:
        return GraphCredentialsError(
            f"Microsoft Graph refused the token Entra issued for GRAPH_CLIENT_ID ({said}). "
            "Check GRAPH_TENANT_ID and that the app registration is in that tenant."
        )
    if status == 403:
        return GraphPermissionError(
            f"Microsoft Graph refused {what} ({said}): the app registration needs the application "
            f"permission {needs}, with admin consent (Entra → App registrations → API permissions).",
            needs,
        )
    if status == 404:
        return GraphNotFound(f"Microsoft Graph has no {what} ({said}).")
    if status in _RETRY_STATUSES:
        return GraphUnavailable(
            f"Microsoft Graph answered {what} with {said} {attempts} times; "
            "it will be tried again at the next run."
        )
    return GraphError(f"Microsoft Graph refused {what} ({said}).")


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    """Graph's `{"error": {"code", "message"}}`, shown neutralised and short (it may quote our input)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return neutralise(str(error.get("code") or ""))[:80], neutralise(str(error.get("message") or ""))[:300]


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GraphError(f"Microsoft Graph answered {what} with something that is not a JSON object.")
    return body
