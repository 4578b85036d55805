"""A fake Lookout Mobile Risk API v2 on a free local port (real HTTP, Starlette + uvicorn in a thread):
the token endpoint, the paged device and threat listings, and the SSE event stream framed as
DOMAIN.md describes. Faults are scripted: `fail(path, Fault(...))` for REST answers, and one
`Connection` plan per stream connection (drop, go silent, `reconnect`, `end`, token expiry after N
events). It records every request it received."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    times: int = 1
    body: dict[str, Any] | None = None


@dataclass
class Connection:
    """What one stream connection does after sending `after` events (None: serves for ever)."""

    after: int | None = None
    then: str = "drop"  # drop | silent | reconnect | end | expire (the token stops working, then drop)
    retry_ms: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    authorization: str


@dataclass
class FakeLookout:
    key: str = "lookout-app-key"
    devices: list[dict[str, Any]] = field(default_factory=list)
    threats: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # the tenant's event log, in order
    frame_size: int = 50  # events per `events` frame
    heartbeat_seconds: float = 0.05
    frame_pause: float = 0.0  # seconds between two `events` frames: a stream that trickles
    token_seconds: int = 7200
    plans: list[Connection] = field(default_factory=list)  # one per stream connection, in order
    seen: list[Seen] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    url: str = ""
    _tokens: set[str] = field(default_factory=set)
    _issued: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- scripting -------------------------------------------------------------------------------
    def fail(self, path: str, fault: Fault) -> None:
        self.faults.setdefault(path, []).append(fault)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    @property
    def tokens_issued(self) -> int:
        return self._issued

    # --- the API ---------------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route("/mra/api/v2/devices", self._devices),
                Route("/mra/api/v2/threats", self._threats),
                Route("/mra/stream/v2/events", self._stream),
            ]
        )

    def _record(self, request: Request) -> Response | None:
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                request.headers.get("authorization", ""),
            )
        )
        with self._lock:
            queue = self.faults.get(request.url.path)
            if queue:
                fault = queue[0]
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return JSONResponse(fault.body or {"message": "fake fault"}, fault.status, headers=headers)
        return None

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self._tokens

    async def _token(self, request: Request) -> Response:
        if (fault := self._record(request)) is not None:
            return fault
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"}, 401
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        with self._lock:
            self._issued += 1
            token = f"token-{self._issued}"
            self._tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "expires_in": self.token_seconds,
                "expires_at": int((time.time() + self.token_seconds) * 1000),
            }
        )

    async def _devices(self, request: Request) -> Response:
        return self._page(request, self.devices, "devices")

    async def _threats(self, request: Request) -> Response:
        return self._page(request, self.threats, "threats")

    def _page(self, request: Request, items: list[dict[str, Any]], name: str) -> Response:
        if (fault := self._record(request)) is not None:
            return fault
        if not self._authorised(request):
            return JSONResponse({"message": "unauthorized"}, 401)
        limit = int(request.query_params.get("limit", "100"))
        if not 1 <= limit <= 1000:
            return JSONResponse({"message": "limit must be 1-1000"}, 400)
        after = request.query_params.get("oid")
        start = (
            0 if after is None else next(i + 1 for i, item in enumerate(items) if str(item["oid"]) == after)
        )
        page = items[start : start + limit]
        return JSONResponse({"count": len(page), name: page})

    async def _stream(self, request: Request) -> Response:
        if (fault := self._record(request)) is not None:
            return fault
        if not self._authorised(request):
            return JSONResponse({"message": "unauthorized"}, 401)
        if request.query_params.get("types") != "THREAT,DEVICE":
            return JSONResponse({"message": "types"}, 400)
        after = request.query_params.get("id")
        if after is not None:
            ids = [e["id"] for e in self.events]
            if after not in ids:
                return JSONResponse({"message": f"unknown event id {after}"}, 400)
            position = ids.index(after) + 1
        elif "start_time" in request.query_params:
            position = 0
        else:
            return JSONResponse({"message": "id or start_time is required"}, 400)
        plan = self.plans.pop(0) if self.plans else Connection()
        token = request.headers["authorization"][7:]
        return StreamingResponse(self._frames(position, plan, token), media_type="text/event-stream")

    async def _frames(self, position: int, plan: Connection, token: str) -> AsyncIterator[str]:
        sent = 0
        while True:
            if plan.after is not None and sent >= plan.after:
                async for frame in self._ending(plan, token):
                    yield frame
                return
            if token not in self._tokens:
                return  # an expired token: Lookout closes the stream
            available = self.events[position : position + self.frame_size]
            if plan.after is not None:
                available = available[: plan.after - sent]
            if available:
                position += len(available)
                sent += len(available)
                yield _sse("events", {"events": available}, event_id=available[-1].get("id"))
                if self.frame_pause:
                    await asyncio.sleep(self.frame_pause)
            else:
                yield _sse("heartbeat", {})
                await asyncio.sleep(self.heartbeat_seconds)

    async def _ending(self, plan: Connection, token: str) -> AsyncIterator[str]:
        if plan.then == "silent":
            await asyncio.sleep(3600)  # the client's read timeout ends it
        elif plan.then == "reconnect":
            yield _sse("reconnect", {}, retry=plan.retry_ms)
        elif plan.then == "end":
            yield _sse("end", {})
        elif plan.then == "expire":
            with self._lock:
                self._tokens.discard(token)

    # --- running ---------------------------------------------------------------------------------
    @classmethod
    def running(cls, *, tls: tuple[str, str] | None = None, **options: Any) -> Iterator["FakeLookout"]:
        """Serving on a free port; `tls`: (key file, certificate chain file) to serve HTTPS."""
        fake = cls(**options)
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                fake.app(),
                log_level="critical",
                access_log=False,
                timeout_graceful_shutdown=1,
                lifespan="off",
                ssl_keyfile=tls[0] if tls else None,
                ssl_certfile=tls[1] if tls else None,
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Lookout did not start")
            time.sleep(0.01)
        fake.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        try:
            yield fake
        finally:
            server.should_exit = True
            thread.join(timeout=5)
            listening.close()


def _sse(event: str, data: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.append(f"data: {json.dumps(data)}")
    return "\n".join(lines) + "\n\n"
