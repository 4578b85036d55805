"""What can go wrong talking to Microsoft Graph and Entra, as errors an admin can act on.

Each class carries the connector-error fingerprint its failure is recorded under, so a wrong secret
and a missing permission are separate entries (each announced once, resolved when it works again).
Messages name the setting or the permission to fix and never contain a secret.
"""

from integration.errors import SourceError


class GraphError(SourceError):
    """Graph or Entra failed in a way not covered below (an unexpected answer, a 4xx we do not know)."""

    fingerprint = "graph:failed"


class GraphUnavailable(GraphError):
    """Graph or Entra did not answer usefully after every retry: timeouts, connection errors, 5xx, 429."""

    fingerprint = "graph:unavailable"


class GraphCredentialsError(GraphError):
    """Entra would not issue a token (wrong secret, certificate, client or tenant id), or Graph
    refused the token it issued; the message names the GRAPH_* setting to fix."""

    fingerprint = "graph:credentials"


class GraphPermissionError(GraphError):
    """Graph answered 403: the app registration lacks an application permission (or its admin consent)."""

    def __init__(self, message: str, permission: str) -> None:
        super().__init__(message)
        self.permission = permission
        self.fingerprint = f"graph:permission:{permission}"


class GraphNotFound(GraphError):
    """Graph answered 404 for one object (a group id that no longer exists, an MTD connector not set up);
    the client decides what that means for each call, callers never see it."""
