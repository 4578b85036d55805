"""The Lookout Mobile Risk API v2 client behind `MESBOT_SOURCE=lookout`: a `ThreatSource` (port.py).

`snapshot()` pages the REST listings (devices, then threats) for a full sync; `stream()` follows the
SSE event stream (`/mra/stream/v2/events`), resuming after the last event id it handed out, and
reconnecting by itself when the connection drops, goes silent (no heartbeat for `heartbeat_timeout`
seconds: Lookout sends one at least every 5 s), or the server says `end` or `reconnect`. Only when
Lookout stays unreachable through every retry, or refuses the key or the request, does it raise
(`SourceError`): the caller records that as a connector error and starts again from its committed
cursor.

A stream cursor is an event id; a cursor that starts with `@` is a time (ISO 8601) to start from
instead, which a full sync leaves behind: everything before it was in the listing.
"""

import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from integration.config import Settings
from integration.errors import SourceError
from integration.sources import lookout_events
from integration.sources.lookout_events import MalformedEvent
from integration.sources.lookout_http import LookoutHTTP, LookoutUnavailable
from integration.sources.port import Batch
from integration.sync import SourceEvent

log = logging.getLogger(__name__)

CURSOR = "lookout"
DEVICES_PATH = "/mra/api/v2/devices"
THREATS_PATH = "/mra/api/v2/threats"
STREAM_PATH = "/mra/stream/v2/events"
STREAM_TYPES = "THREAT,DEVICE"
PAGE_LIMIT = 1000  # Lookout's maximum
HEARTBEAT_TIMEOUT_SECONDS = 15.0  # three missed 5-second heartbeats
START_LIMIT = timedelta(days=10)  # how far back `start_time` may reach
END_PAUSE_SECONDS = 1.0  # after the server's `end`, before asking again
RECONNECT_PAUSE_SECONDS = 3.0  # after `reconnect` without `retry:`


def from_settings(settings: Settings, **options: Any) -> "LookoutClient":
    """The client for `LOOKOUT_APP_KEY` and `LOOKOUT_API_URL`; a missing key says how to make one."""
    key = settings.lookout_app_key.get_secret_value().strip() if settings.lookout_app_key else ""
    if not key:
        raise SourceError(
            "LOOKOUT_APP_KEY is not set: MESBOT_SOURCE=lookout needs an application key from the "
            "Lookout console (System → Application Keys)."
        )
    url = settings.lookout_api_url.strip()
    if not url.startswith(("https://", "http://")):
        raise SourceError(f"LOOKOUT_API_URL must be an https:// URL (it is {url[:80]!r}).")
    http_options = {
        k: options.pop(k) for k in ("transport", "sleep", "clock", "rng", "retry") if k in options
    }
    return LookoutClient(LookoutHTTP(url, key, **http_options), **options)


class LookoutClient:
    cursor_name = CURSOR

    def __init__(
        self,
        http: LookoutHTTP,
        *,
        page_limit: int = PAGE_LIMIT,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT_SECONDS,
    ) -> None:
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1–{PAGE_LIMIT}")
        self.http = http
        self.page_limit = page_limit
        self.heartbeat_timeout = heartbeat_timeout

    async def close(self) -> None:
        await self.http.close()

    async def snapshot(self) -> AsyncIterator[Batch]:
        """Every device, then every threat, one page per batch (an item mesbot cannot read is reported in
        `malformed` and skipped)."""
        async for page in self._pages(DEVICES_PATH, "devices"):
            yield _read(page, lookout_events.device)
        async for page in self._pages(THREATS_PATH, "threats"):
            yield _read(page, lookout_events.rest_threat)

    async def _pages(self, path: str, field: str) -> AsyncIterator[list[Any]]:
        oid: Any = None
        while True:
            params: dict[str, Any] = {"limit": self.page_limit}
            if oid is not None:
                params["oid"] = oid
            body = await self.http.get_json(path, params)
            items = body.get(field)
            if not isinstance(items, list):
                raise SourceError(f"Lookout's GET {path} answered without a `{field}` list.")
            if items:
                yield items
            if len(items) < self.page_limit:
                return
            last = items[-1]
            oid = last.get("oid") if isinstance(last, Mapping) else None
            if oid is None:
                raise SourceError(f"Lookout's GET {path} gave a full page whose last item has no `oid`.")

    async def stream(self, after: str | None, *, start: datetime) -> AsyncIterator[Batch]:
        """Batches of events after `after` (from `start`, at most 10 days back, when there is no event
        id yet). An empty batch means the stream is idle (a heartbeat, or the server's `end`)."""
        last = after
        failures = 0  # connections in a row that ended before any frame
        while True:
            response = await self.http.open_stream(
                STREAM_PATH, self._position(last, start), self.heartbeat_timeout
            )
            pause: float | None = None
            framed = False
            try:
                async for frame in EventSource(response).aiter_sse():
                    framed = True
                    if frame.event == "events":
                        batch = _frame(frame)
                        last = batch.cursor or last
                        yield batch
                    elif frame.event == "heartbeat":
                        yield Batch([], None)
                    elif frame.event == "end":
                        pause = END_PAUSE_SECONDS
                        yield Batch([], None)
                        break
                    elif frame.event == "reconnect":
                        pause = (frame.retry / 1000) if frame.retry is not None else RECONNECT_PAUSE_SECONDS
                        break
            except httpx.ReadTimeout:
                log.warning(
                    "Lookout's event stream was silent for %.0f s: reconnecting", self.heartbeat_timeout
                )
            except (httpx.TransportError, SSEError) as error:
                log.warning("Lookout's event stream broke (%s): reconnecting", type(error).__name__)
            finally:
                await response.aclose()
            failures = 0 if framed else failures + 1
            if failures >= self.http.retry.attempts:
                raise LookoutUnavailable(
                    f"Lookout's event stream closed {failures} times in a row before sending anything."
                )
            await self.http.sleep(
                pause if pause is not None else self.http.retry.wait(max(failures, 1), self.http.rng)
            )

    def _position(self, last: str | None, start: datetime) -> dict[str, str]:
        if last and not last.startswith("@"):
            return {"types": STREAM_TYPES, "id": last}
        if last:
            try:
                start = datetime.fromisoformat(last[1:])
            except ValueError:
                raise SourceError(
                    f"The stored Lookout stream position {last[:40]!r} is not a time: "
                    "run `mesbot sync --full`."
                ) from None
        earliest = datetime.fromtimestamp(self.http.clock(), UTC) - START_LIMIT + timedelta(minutes=5)
        at = max(start, earliest).astimezone(UTC)
        return {
            "types": STREAM_TYPES,
            "start_time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }


def _read(items: list[Any], parse: Any) -> Batch:
    events: list[SourceEvent] = []
    malformed: list[str] = []
    for item in items:
        try:
            events.append(parse(item))
        except MalformedEvent as error:
            guid = item.get("guid") if isinstance(item, Mapping) else None
            malformed.append(f"{error} ({_which(guid)})")
    return Batch(events, None, malformed)


def _frame(frame: ServerSentEvent) -> Batch:
    """An `events` frame: its events, and the position after them (the last event's id; the frame's own
    SSE `id:` when the events carry none)."""
    try:
        data = json.loads(frame.data)
    except ValueError:
        return Batch([], frame.id or None, ["an `events` frame that is not JSON"])
    raw = data.get("events") if isinstance(data, Mapping) else None
    if not isinstance(raw, list):
        return Batch([], frame.id or None, ["an `events` frame without an `events` list"])
    events: list[SourceEvent] = []
    malformed: list[str] = []
    cursor = frame.id or None
    for event in raw:
        event_id = event.get("id") if isinstance(event, Mapping) else None
        if isinstance(event_id, str) and event_id:
            cursor = event_id[:200]
        try:
            events.extend(lookout_events.parse(event))
        except MalformedEvent as error:
            malformed.append(f"{error} ({_which(event_id)})")
    return Batch(events, cursor, malformed)


def _which(guid: Any) -> str:
    return f"id {guid[:64]!r}" if isinstance(guid, str) else "no id"
