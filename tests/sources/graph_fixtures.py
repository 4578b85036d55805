"""Fixtures for the Graph tests (imported by the test modules, to keep clear of a shared conftest):
a private CA, the fake Graph + Entra server on it, an app certificate, and clients pointed at the fake."""

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from integration.sources.graph import GraphClient
from integration.sources.graph_token import Credentials
from tests.notifications.conftest import RecordedSleep
from tests.notifications.smtp_server import Certificates
from tests.sources.fake_graph import FakeGraph, start


class Tls(Certificates):
    """The mail tests' private CA (trustme), which the fake Graph serves HTTPS with."""

    def ca_file(self, folder: Path) -> Path:
        path = folder / "graph-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path


# Imported by name into the test modules, so each fixture function is named apart from its fixture.
@pytest.fixture(scope="session", name="tls")
def tls_fixture() -> Tls:
    return Tls()


@pytest.fixture(name="fake_graph")
def fake_graph_fixture(tls: Tls) -> Iterator[FakeGraph]:
    fake = FakeGraph()
    server = start(fake, tls.server_context())
    yield fake
    server.shutdown()
    server.server_close()


def client(
    fake: FakeGraph, tls: Tls, *, sleep: RecordedSleep | None = None, **credentials: Any
) -> GraphClient:
    given: dict[str, Any] = {"secret": SecretStr(fake.secret or "unused"), **credentials}
    return GraphClient(
        Credentials(tenant_id=fake.tenant_id, client_id=fake.client_id, **given),
        api_url=f"{fake.base}/v1.0",
        login_url=fake.base,
        ssl_context=tls.client_context(),
        sleep=sleep or RecordedSleep(),
    )


def graph_env(fake: FakeGraph) -> dict[str, str]:
    """The settings that point mesbot at the fake (a secret credential)."""
    return {
        "MESBOT_SOURCE": "lookout",
        "GRAPH_TENANT_ID": fake.tenant_id,
        "GRAPH_CLIENT_ID": fake.client_id,
        "GRAPH_CLIENT_SECRET": fake.secret or "",
        "GRAPH_API_URL": f"{fake.base}/v1.0",
        "GRAPH_LOGIN_URL": fake.base,
    }


def app_certificate(folder: Path, name: str = "mesbot-graph") -> tuple[Path, x509.Certificate]:
    """An RSA key and a self-signed certificate in one PEM file, as an admin makes one for Entra."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    return path, certificate
