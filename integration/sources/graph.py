"""The Microsoft Graph client behind `MESBOT_SOURCE=lookout`: the directory (groups, transitive members,
global administrators), Intune's view of each managed device, and Lookout's MTD connector record.

What to ask for and how to read the answers lives here; how to ask (tokens, retries, paging) in
`graph_http`. The client only reads; what it reports is written by `integration.sources.directory_sync`.
"""

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from integration.config import Settings
from integration.sources.graph_errors import GraphError, GraphNotFound
from integration.sources.graph_http import MAX_ATTEMPTS, GraphHttp, Sleep
from integration.sources.graph_token import Credentials
from integration.sources.port import (
    ConnectorHealth,
    DirectoryReport,
    DirectoryUserReport,
    IntuneDeviceReport,
)
from integration.validation import is_email

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
        self._http = GraphHttp(
            credentials,
            api_url=api_url,
            login_url=login_url,
            ssl_context=ssl_context,
            sleep=sleep,
            timeout=timeout,
            max_attempts=max_attempts,
        )

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
            async for page in self._http.pages("/groups", query, GROUPS):
                groups.update((_text(g, "id"), _text(g, "displayName")) for g in page)
        for group_id in dict.fromkeys(role_group_ids):
            if group_id in groups:
                continue
            try:
                group = await self._http.get(
                    f"/groups/{quote(group_id)}", {"$select": "id,displayName"}, GROUPS
                )
            except GraphNotFound:
                continue  # the caller reports a configured role group the directory lacks
            groups[_text(group, "id")] = _text(group, "displayName")
        users: dict[str, DirectoryUserReport] = {}
        memberships: list[tuple[str, str]] = []
        unaddressed: set[str] = set()
        select = {"$select": "id,mail,userPrincipalName,displayName", "$top": "999"}
        for group_id in groups:
            async for page in self._http.pages(
                f"/groups/{quote(group_id)}/transitiveMembers", select, MEMBERS
            ):
                for member in _users(page, unaddressed):
                    users.setdefault(member.id, member)
                    memberships.append((group_id, member.id))
        async for role_page in self._http.pages(
            "/directoryRoles", {"$filter": f"roleTemplateId eq '{GLOBAL_ADMINISTRATOR}'"}, ROLES
        ):
            for role in role_page:
                members = f"/directoryRoles/{quote(_text(role, 'id'))}/members"
                async for page in self._http.pages(members, {"$select": select["$select"]}, ROLES):
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
        async for page in self._http.pages("/deviceManagement/managedDevices", query, MANAGED_DEVICES):
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
            record = await self._http.get(path, None, MTD_CONNECTOR)
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
