"""The errors the domain raises; front ends map each one to a friendly reply in one place.

The tree: `MesbotError` → `InvalidInput`, `NotFound`, `PermissionDenied`, `ConsentRequired`,
`SourceError`, `DeliveryError`, and `StoreError` → `StoreBusy`, `StoreUnavailable`, `StoreTooNew`
(the store's errors live in `storage`, the lowest layer, and are re-exported here).
"""

from storage.errors import MesbotError, StoreBusy, StoreError, StoreTooNew, StoreUnavailable

__all__ = [
    "ConsentRequired",
    "DeliveryError",
    "InvalidInput",
    "MesbotError",
    "NotFound",
    "PermissionDenied",
    "SourceError",
    "StoreBusy",
    "StoreError",
    "StoreTooNew",
    "StoreUnavailable",
]


class InvalidInput(MesbotError):
    """A command or setting was malformed or out of range; the message names the field and what is allowed."""


class NotFound(MesbotError):
    """A user, device, group or classification named by the user does not exist."""


class PermissionDenied(MesbotError):
    """The user's console role does not allow the command."""


class ConsentRequired(MesbotError):
    """Consent has not been granted yet, so only `help` and `subscription …` work."""


class SourceError(MesbotError):
    """The configured source (Lookout, Graph or the demo simulator) failed."""


class DeliveryError(MesbotError):
    """A notification could not be delivered."""
