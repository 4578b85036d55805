"""App-only tokens for Microsoft Graph from Entra, through msal: a client secret or a certificate.

msal is synchronous and does its own HTTP (OIDC discovery, the token request), so it runs in a worker
thread and speaks through httpx with the same TLS settings as the Graph client (`SSL_CERT_FILE` is
honoured). The token is kept until a few minutes before it expires; a 401 from Graph drops it once.
"""

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import SecretStr

from integration.config import Settings
from integration.sources.graph_errors import GraphCredentialsError, GraphError, GraphUnavailable
from integration.text import neutralise

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXPIRY_MARGIN_SECONDS = 300  # renew this long before Entra's expiry: a request in flight must not outlive it

# AADSTS codes that say which credential is wrong (Entra's error_codes)
_SECRET_CODES = {7000215, 7000222}  # invalid client secret; the secret has expired
_CERTIFICATE_CODES = {700027, 700024, 700023}  # assertion signature/key not registered; assertion time
_CLIENT_CODES = {700016}  # no application with that id in the tenant
_TENANT_CODES = {90002, 900023, 90023}  # no such tenant; malformed tenant


@dataclass(frozen=True)
class Credentials:
    tenant_id: str
    client_id: str
    secret: SecretStr | None = None
    certificate: str | None = None  # path to a PEM with the private key and the certificate

    @classmethod
    def from_settings(cls, settings: Settings) -> "Credentials":
        """The GRAPH_* credentials, or an error naming the variable that is missing."""
        missing = [
            name
            for name, value in (
                ("GRAPH_TENANT_ID", settings.graph_tenant_id),
                ("GRAPH_CLIENT_ID", settings.graph_client_id),
            )
            if not (value or "").strip()
        ]
        if settings.graph_client_secret is None and not settings.graph_client_certificate:
            missing.append("GRAPH_CLIENT_SECRET (or GRAPH_CLIENT_CERTIFICATE)")
        if missing:
            raise GraphCredentialsError(
                f"Microsoft Graph is not configured: set {', '.join(missing)} "
                "(README: Connecting Microsoft Graph / Entra)."
            )
        certificate = settings.graph_client_certificate or None
        return cls(
            tenant_id=(settings.graph_tenant_id or "").strip(),
            client_id=(settings.graph_client_id or "").strip(),
            # With both set the certificate wins: an admin moving to a certificate may leave the old secret
            secret=None if certificate else settings.graph_client_secret,
            certificate=certificate,
        )

    @property
    def uses_certificate(self) -> bool:
        return self.secret is None


@dataclass(frozen=True)
class CertificateCredential:
    private_key: str  # PEM, as msal wants it
    thumbprint: str  # SHA-1 of the certificate, hex, as the Entra portal shows it


def load_certificate(path: str) -> CertificateCredential:
    """The private key and the certificate's thumbprint from one PEM file (key + certificate)."""
    setting = f"GRAPH_CLIENT_CERTIFICATE ({neutralise(path)})"
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise GraphCredentialsError(f"{setting} cannot be read: {error.strerror or error}.") from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise GraphCredentialsError(
            f"{setting} holds no PEM certificate: it must contain the private key and the certificate "
            "(-----BEGIN CERTIFICATE-----)."
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise GraphCredentialsError(
            f"{setting} holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----) next to its "
            "certificate."
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise GraphCredentialsError(f"{setting}: Entra needs an RSA key for certificate credentials.")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise GraphCredentialsError(f"{setting}: the private key does not belong to the certificate.")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # SHA-1 is what Entra's portal shows and what the x5t header carries: an identifier, not a security check
    thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
    return CertificateCredential(private_key=pem.decode(), thumbprint=thumbprint)


class _MsalHttp:
    """msal's small HTTP interface (`get`, `post`) over an httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers, timeout=kwargs.get("timeout"))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        raw = isinstance(data, str | bytes)
        if isinstance(data, dict):  # msal puts bytes in the form (the assertion); httpx would str() them
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._client.post(
            url,
            params=params,
            data=None if raw else data,
            content=data if raw else None,
            headers=headers,
            timeout=kwargs.get("timeout"),
        )


class TokenSource:
    """Entra app-only tokens for Graph, cached until shortly before they expire."""

    def __init__(
        self, credentials: Credentials, login_url: str, *, ssl_context: ssl.SSLContext, timeout: float
    ) -> None:
        self._credentials = credentials
        self._authority = f"{login_url.rstrip('/')}/{credentials.tenant_id}"
        self._http = httpx.Client(verify=ssl_context, timeout=timeout)
        self._app: Any = None
        self._token: str | None = None
        self._expires = 0.0
        self._renew = False  # Graph refused the cached token: msal must not hand it out again
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
            token, lifetime = await asyncio.to_thread(self._acquire, self._renew)
            self._token, self._renew = token, False
            self._expires = time.monotonic() + max(lifetime - EXPIRY_MARGIN_SECONDS, lifetime / 2)
            return token

    def forget(self) -> None:
        """Graph refused the token (401): the next call asks Entra for a new one."""
        self._token = None
        self._renew = True

    def close(self) -> None:
        self._http.close()

    def _acquire(self, renew: bool) -> tuple[str, float]:
        try:
            if self._app is None:
                self._app = self._build()
            if renew:  # msal would hand back its cached copy of the token Graph just refused
                self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except httpx.HTTPError as error:
            raise GraphUnavailable(
                f"Entra (GRAPH_LOGIN_URL) did not answer: {type(error).__name__}. Check the network."
            ) from None
        except ValueError as error:  # msal: the OIDC discovery of the tenant failed
            raise GraphCredentialsError(
                f"Entra does not know the tenant GRAPH_TENANT_ID={neutralise(self._credentials.tenant_id)} "
                f"({neutralise(self._scrub(str(error)))[:300]}). "
                "Use the directory (tenant) ID from Entra's overview page."
            ) from None
        if "access_token" not in result:
            raise self._refused(result)
        return str(result["access_token"]), float(result.get("expires_in") or 3600)

    def _build(self) -> Any:
        import msal  # only Lookout mode needs it (and its import costs every `mesbot ask` otherwise)

        credential: str | dict[str, str]
        if self._credentials.secret is not None:
            credential = self._credentials.secret.get_secret_value()
        else:
            certificate = load_certificate(self._credentials.certificate or "")
            credential = {"private_key": certificate.private_key, "thumbprint": certificate.thumbprint}
        return msal.ConfidentialClientApplication(
            self._credentials.client_id,
            client_credential=credential,
            authority=self._authority,
            validate_authority=False,
            instance_discovery=False,
            http_client=_MsalHttp(self._http),
        )

    def _refused(self, result: dict[str, Any]) -> GraphError:
        """Entra's refusal as a message naming the setting to fix (and what Entra said)."""
        codes = set(result.get("error_codes") or [])
        said = self._scrub(str(result.get("error_description") or result.get("error") or "no reason given"))
        said = neutralise(said.split(" Trace ID:")[0].strip())[:400]
        client = neutralise(self._credentials.client_id)
        if codes & _TENANT_CODES:
            return GraphCredentialsError(f"Entra does not know the tenant GRAPH_TENANT_ID: {said}")
        if codes & _CLIENT_CODES:
            return GraphCredentialsError(
                f"Entra has no application GRAPH_CLIENT_ID={client} in this tenant: {said}"
            )
        if codes & (_SECRET_CODES | _CERTIFICATE_CODES) or result.get("error") == "invalid_client":
            if self._credentials.uses_certificate:
                return GraphCredentialsError(
                    f"Entra refused the certificate in GRAPH_CLIENT_CERTIFICATE for application {client}: "
                    f"{said} Upload that certificate's public part to the app registration "
                    "(Certificates & secrets → Certificates)."
                )
            return GraphCredentialsError(
                f"Entra refused GRAPH_CLIENT_SECRET for application {client}: {said} "
                "Make a new client secret (App registrations → Certificates & secrets) and set "
                "GRAPH_CLIENT_SECRET to its Value, not its Secret ID."
            )
        return GraphCredentialsError(f"Entra did not issue a Graph token for application {client}: {said}")

    def _scrub(self, text: str) -> str:
        """Entra does not echo secrets, but a message must never carry one even if it did."""
        secret = self._credentials.secret
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "********")
        return text
