"""The errors the domain raises; front ends map each one to a friendly reply in one place."""


class MesbotError(Exception):
    """Base of every error mesbot raises on purpose. The message is written for the user."""


class InvalidInput(MesbotError):
    """A command or setting was malformed or out of range; the message names the field and what is allowed."""


class NotFound(MesbotError):
    """A user, device, group or classification named by the user does not exist."""


class PermissionDenied(MesbotError):
    """The user's console role does not allow the command."""


class ConsentRequired(MesbotError):
    """Consent has not been granted yet, so only `help` and `subscription …` work."""


class StoreBusy(MesbotError):
    """Another writer held the store's lock past the busy timeout; the user should try again."""


class SourceError(MesbotError):
    """The configured source (Lookout, Graph or the demo simulator) failed."""


class DeliveryError(MesbotError):
    """A notification could not be delivered."""
