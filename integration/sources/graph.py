"""The Microsoft Graph client behind `MESBOT_SOURCE=lookout`: the directory (groups, transitive members,
global administrators), Intune's view of each managed device, and Lookout's MTD connector record.

One request path (`_get`) holds the whole policy: 429/503 wait exactly `Retry-After`, other 5xx and
timeouts back off with jitter, attempts are bounded, a 401 renews the token once, a 403 names the
application permission the call needs. Paging follows `@odata.nextLink`, only on Graph's own host (a
link elsewhere would carry the bearer token off it). The client only reads; what it reports is
written by `integration.sources.directory_sync`.
"""

import asyncio
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from integration.config import Settings
from integration.sources.graph_errors import (
    GraphCredentialsError,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    GraphUnavailable,
)
from integration.sources.graph_token import Credentials, TokenSource
from integration.sources.port import (
    ConnectorHealth,
    DirectoryReport,
    DirectoryUserReport,
    IntuneDeviceReport,
)
from integration.text import neutralise
from integration.validation import is_email

log = logging.getLogger(__name__)

GLOBAL_ADMINISTRATOR = (
    "62e90394-69f5-4237-9190-012177145e10"  # the role template id, the same in every tenant
)
LOOKOUT_MTD_CONNECTOR = "2c7790de-8b02-4814-85cf-e0c59380dee8"  # Lookout's partner id in Intune

# The application permission each call needs (named when Graph answers 403)
GROUPS = "GroupMember.Read.All"
MEMBERS = "GroupMember.Read.All and User.Read.All"
ROLES = "RoleManagement.Read.Directory (or Directory.Read.All)"
MANAGED_DEVICES = "DeviceManagementManagedDevices.Read.All"
MTD_CONNECTOR = "DeviceManagementServiceConfig.Read.All"

MAX_ATTEMPTS = 5
BACKOFF_CAP_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0  # longer than this and the job gives up for now (it runs again in an hour)
_RETRY_STATUSES = {429, 500, 502, 503, 504}

Sleep = Callable[[float], Awaitable[None]]


class GraphClient:
    """A `DirectorySource` over Microsoft Graph v1.0 (app-only)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_url: str = "https://graph.microsoft.com/v1.0",
        login_url: str = "https://login.microsoftonline.com",
        ssl_context: ssl.SSLContext | None = None,
        sleep: Sleep = asyncio.sleep,
        timeout: float = 30.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        context = ssl_context or ssl.create_default_context()  # reads SSL_CERT_FILE for a private CA
        self._api = api_url.rstrip("/")
        self._host = urlsplit(self._api).netloc
        self._http = httpx.AsyncClient(verify=context, timeout=timeout)
        self._tokens = TokenSource(credentials, login_url, ssl_context=context, timeout=timeout)
        self._sleep = sleep
        self._max_attempts = max_attempts

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "GraphClient":
        """From the GRAPH_* settings; a missing one is a `GraphCredentialsError` naming it."""
        return cls(
            Credentials.from_settings(settings),
            api_url=settings.graph_api_url,
            login_url=settings.graph_login_url,
            **options,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        self._tokens.close()

    async def __aenter__(self) -> "GraphClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # --- the port -------------------------------------------------------------------------------

    async def directory(self, group_names: Sequence[str], role_group_ids: Sequence[str]) -> DirectoryReport:
        groups: dict[str, str] = {}
        for name in dict.fromkeys(group_names):
            odata = name.replace("'", "''")  # OData quotes a quote by doubling it
            query = {"$filter": f"displayName eq '{odata}'", "$select": "id,displayName"}
            async for page in self._pages("/groups", query, GROUPS):
                groups.update((_text(g, "id"), _text(g, "displayName")) for g in page)
        for group_id in dict.fromkeys(role_group_ids):
            if group_id in groups:
                continue
            try:
                group = await self._get(f"/groups/{quote(group_id)}", {"$select": "id,displayName"}, GROUPS)
            except GraphNotFound:
                continue  # the caller reports a configured role group the directory lacks
            groups[_text(group, "id")] = _text(group, "displayName")
        users: dict[str, DirectoryUserReport] = {}
        memberships: list[tuple[str, str]] = []
        unaddressed: set[str] = set()
        select = {"$select": "id,mail,userPrincipalName,displayName", "$top": "999"}
        for group_id in groups:
            async for page in self._pages(f"/groups/{quote(group_id)}/transitiveMembers", select, MEMBERS):
                for member in _users(page, unaddressed):
                    users.setdefault(member.id, member)
                    memberships.append((group_id, member.id))
        async for role_page in self._pages(
            "/directoryRoles", {"$filter": f"roleTemplateId eq '{GLOBAL_ADMINISTRATOR}'"}, ROLES
        ):
            for role in role_page:
                members = f"/directoryRoles/{quote(_text(role, 'id'))}/members"
                async for page in self._pages(members, {"$select": select["$select"]}, ROLES):
                    for admin in _users(page, unaddressed):
                        known = users.get(admin.id, admin)
                        users[admin.id] = DirectoryUserReport(
                            known.id, known.email, known.display_name, is_global_admin=True
                        )
        return DirectoryReport(
            users=list(users.values()),
            groups=list(groups.items()),
            memberships=list(dict.fromkeys(memberships)),
            unaddressed=len(unaddressed),
        )

    async def managed_devices(self) -> AsyncIterator[list[IntuneDeviceReport]]:
        query = {"$select": "id,complianceState,partnerReportedThreatState"}
        async for page in self._pages("/deviceManagement/managedDevices", query, MANAGED_DEVICES):
            yield [
                IntuneDeviceReport(
                    external_id=_text(d, "id"),
                    compliance=str(d.get("complianceState") or "unknown"),
                    threat_state=str(d.get("partnerReportedThreatState") or "unknown"),
                )
                for d in page
            ]

    async def connector_health(self) -> ConnectorHealth:
        path = f"/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT_MTD_CONNECTOR}"
        try:
            record = await self._get(path, None, MTD_CONNECTOR)
        except GraphNotFound:  # Intune has no Lookout connector at all: it was never set up
            return ConnectorHealth(
                partner_state="notSetUp", last_heartbeat=None, unresponsive_after_days=None
            )
        days = record.get("partnerUnresponsivenessThresholdInDays")
        return ConnectorHealth(
            partner_state=str(record.get("partnerState") or "unavailable"),
            last_heartbeat=_when(record.get("lastHeartbeatDateTime")),
            unresponsive_after_days=days if isinstance(days, int) and days > 0 else None,
        )

    # --- HTTP -----------------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: dict[str, str] | None, needs: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = self._api + path
        while url is not None:
            body = await self._get(url, params, needs)
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

    async def _get(self, path_or_url: str, params: dict[str, str] | None, needs: str) -> dict[str, Any]:
        url = path_or_url if path_or_url.startswith(("https://", "http://")) else self._api + path_or_url
        what = urlsplit(url).path.removeprefix(urlsplit(self._api).path) or "/"
        renewed = False
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                token = await self._tokens.token()
                response = await self._http.get(
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


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise GraphError(f"Microsoft Graph sent an object without `{key}`.")
    return value


def _users(page: list[dict[str, Any]], unaddressed: set[str]) -> list[DirectoryUserReport]:
    """The users among directory objects (groups, devices and service principals are skipped), with
    `mail` or else `userPrincipalName` as their lower-case address. A user with neither address usable
    (Graph hides them without User.Read.All) is counted in `unaddressed`."""
    found = []
    for item in page:
        if item.get("@odata.type") != "#microsoft.graph.user":
            continue
        user_id = _text(item, "id")
        address = next(
            (
                str(item[key]).strip().lower()
                for key in ("mail", "userPrincipalName")
                if isinstance(item.get(key), str) and is_email(str(item[key]).strip())
            ),
            None,
        )
        if address is None:
            unaddressed.add(user_id)
            continue
        name = item.get("displayName")
        found.append(DirectoryUserReport(user_id, address, name if isinstance(name, str) else address))
    return found


def _when(value: object) -> datetime | None:
    """Graph's timestamps (`2026-11-26T11:00:00.1234567Z`); its `0001-01-01…` means never."""
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most six fraction digits
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
