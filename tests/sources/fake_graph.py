"""A fake Microsoft Graph and Entra login server on a free local port, over real HTTPS (msal insists on
an https authority): OIDC discovery, the client-credentials token endpoint (client secret, or a
certificate's signed assertion, checked against the certificate), and the Graph v1.0 calls mesbot
makes, paged by `@odata.nextLink`. It records every request and can be told to fail."""

import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding

from tests.json_http import send_json, serve_in_thread

USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"
DEVICE = "#microsoft.graph.device"
GLOBAL_ADMIN_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"
LOOKOUT_CONNECTOR = "2c7790de-8b02-4814-85cf-e0c59380dee8"
ADMIN_ROLE_ID = "role-global-admin"


@dataclass
class Failure:
    status: int
    retry_after: str | None = None
    times: int = 1
    error: dict[str, str] | None = None  # Graph's {"code", "message"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class FakeGraph:
    tenant_id: str = "11111111-2222-3333-4444-555555555555"
    client_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    secret: str | None = "the-right-secret-value"
    certificate: x509.Certificate | None = None  # accepted for client assertions when set
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → Graph user object
    groups: dict[str, str] = field(default_factory=dict)  # id → displayName
    members: dict[str, list[str]] = field(default_factory=dict)  # group id → direct member ids
    admins: list[str] = field(default_factory=list)  # user ids holding Global Administrator
    devices: list[dict[str, Any]] = field(default_factory=list)  # managedDevice objects
    connector: dict[str, Any] | None = None  # the MTD connector record (None: 404)
    page_size: int = 100
    expires_in: int = 3600
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # path fragment → queued failures
    denied: set[str] = field(default_factory=set)  # path fragments answered 403
    requests: list[Request] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    base: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- building the directory --------------------------------------------------------------------

    def add_user(self, user_id: str, email: str | None, name: str | None = None, **extra: Any) -> None:
        self.users[user_id] = {
            "@odata.type": USER,
            "id": user_id,
            "displayName": name or (email or user_id).split("@")[0].title(),
            "mail": email,
            "userPrincipalName": extra.pop("upn", email),
            **extra,
        }

    def add_group(self, group_id: str, name: str, *member_ids: str) -> None:
        self.groups[group_id] = name
        self.members[group_id] = list(member_ids)

    def fail(self, fragment: str, failure: Failure) -> None:
        self.failures.setdefault(fragment, []).append(failure)

    def graph_calls(self, fragment: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/v1.0") and fragment in r.path]

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], form: dict[str, str], auth: str | None):
        with self._lock:
            self.requests.append(Request(method, path, query, auth))
            for fragment, queue in self.failures.items():
                if fragment in path and queue:
                    failure = queue[0]
                    failure.times -= 1
                    if failure.times <= 0:
                        queue.pop(0)
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    return (
                        failure.status,
                        headers,
                        {"error": failure.error or {"code": "Fake", "message": "x"}},
                    )
        discovery = f"/{self.tenant_id}/v2.0/.well-known/openid-configuration"
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            if path != discovery:
                return (
                    400,
                    {},
                    {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."},
                )
            return 200, {}, self._discovery()
        if path.endswith("/oauth2/v2.0/token") and method == "POST":
            return self._token(path, form)
        if not path.startswith("/v1.0/"):
            return 404, {}, {"error": {"code": "NotFound", "message": path}}
        token = (auth or "").removeprefix("Bearer ")
        if token not in self.tokens_issued or token in self.revoked:
            return (
                401,
                {},
                {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is invalid."}},
            )
        if any(fragment in path for fragment in self.denied):
            return (
                403,
                {},
                {
                    "error": {
                        "code": "Authorization_RequestDenied",
                        "message": "Insufficient privileges to complete the operation.",
                    }
                },
            )
        return self._graph(path.removeprefix("/v1.0"), query)

    def _discovery(self) -> dict[str, Any]:
        root = f"{self.base}/{self.tenant_id}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "issuer": f"{self.base}/{self.tenant_id}/v2.0",
        }

    def _token(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.token_forms.append(form)
        if path != f"/{self.tenant_id}/oauth2/v2.0/token":
            return _entra(400, "invalid_request", 90002, "Tenant not found.")
        if form.get("client_id") != self.client_id:
            return _entra(400, "unauthorized_client", 700016, "Application was not found in the directory.")
        if "client_secret" in form:
            if self.secret is None or form["client_secret"] != self.secret:
                return _entra(401, "invalid_client", 7000215, "Invalid client secret provided.")
        elif "client_assertion" in form:
            if not self._assertion_valid(form["client_assertion"], path):
                return _entra(
                    401, "invalid_client", 700027, "Client assertion contains an invalid signature."
                )
        else:
            return _entra(401, "invalid_client", 7000216, "client_assertion or client_secret is required.")
        token = secrets.token_urlsafe(16)
        self.tokens_issued.append(token)
        return 200, {}, {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}

    def _assertion_valid(self, assertion: str, path: str) -> bool:
        if self.certificate is None:
            return False
        head, body, signature = assertion.split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        thumbprint = (
            base64.urlsafe_b64encode(self.certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
        )
        if str(header.get("x5t")).rstrip("=") != thumbprint or claims.get("iss") != self.client_id:
            return False
        if claims.get("aud") != f"{self.base}{path}":
            return False
        key = self.certificate.public_key()
        assert isinstance(key, RSAPublicKey)
        try:
            key.verify(_unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def _graph(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path == "/groups":
            wanted = re.fullmatch(r"displayName eq '(.*)'", query.get("$filter", ""), re.S)
            assert wanted, query
            name = wanted.group(1).replace("''", "'")
            found = [{"id": i, "displayName": n} for i, n in self.groups.items() if n.lower() == name.lower()]
            return self._page(path, query, found)
        if m := re.fullmatch(r"/groups/([^/]+)", path):
            if m.group(1) not in self.groups:
                return 404, {}, {"error": {"code": "Request_ResourceNotFound", "message": "no such group"}}
            return 200, {}, {"id": m.group(1), "displayName": self.groups[m.group(1)]}
        if m := re.fullmatch(r"/groups/([^/]+)/transitiveMembers", path):
            return self._page(path, query, self._transitive(m.group(1)))
        if path == "/directoryRoles":
            assert query.get("$filter") == f"roleTemplateId eq '{GLOBAL_ADMIN_TEMPLATE}'", query
            return 200, {}, {"value": [{"id": ADMIN_ROLE_ID, "roleTemplateId": GLOBAL_ADMIN_TEMPLATE}]}
        if path == f"/directoryRoles/{ADMIN_ROLE_ID}/members":
            return self._page(path, query, [self.users[i] for i in self.admins])
        if path == "/deviceManagement/managedDevices":
            return self._page(path, query, self.devices)
        if path == f"/deviceManagement/mobileThreatDefenseConnectors/{LOOKOUT_CONNECTOR}":
            if self.connector is None:
                return 404, {}, {"error": {"code": "ResourceNotFound", "message": "not found"}}
            return 200, {}, {"id": LOOKOUT_CONNECTOR, **self.connector}
        return 404, {}, {"error": {"code": "NotFound", "message": path}}

    def _transitive(self, group_id: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        todo = deque(self.members.get(group_id, []))
        while todo:
            member = todo.popleft()
            if member in seen:
                continue
            if member in self.groups:
                seen[member] = {"@odata.type": GROUP, "id": member, "displayName": self.groups[member]}
                todo.extend(self.members.get(member, []))
            elif member in self.users:
                seen[member] = self.users[member]
            else:
                seen[member] = {"@odata.type": DEVICE, "id": member, "displayName": "a device"}
        return list(seen.values())

    def _page(self, path: str, query: dict[str, str], items: list[dict[str, Any]]):
        start = int(query.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = (
                f"{self.base}/v1.0{path}?{urlencode({**rest, '$skiptoken': start + self.page_size})}"
            )
        return 200, {}, body


def _entra(
    status: int, error: str, code: int, description: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    return (
        status,
        {},
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: 0000 Correlation ID: 1111",
            "error_codes": [code],
        },
    )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def start(fake: FakeGraph, server_context: ssl.SSLContext) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            status, headers, payload = fake.answer(
                self.command, parsed.path, query, form, self.headers.get("authorization")
            )
            send_json(self, status, headers, payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    fake.base = f"https://127.0.0.1:{server.server_address[1]}"
    serve_in_thread(server)
    return server


def sha1_thumbprint(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(Encoding.DER)).hexdigest().upper()
