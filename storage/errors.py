"""The root of mesbot's error tree, kept in the lowest layer so the store can raise into it.

`integration.errors` re-exports these and adds the domain's own kinds; catch `MesbotError` for
anything mesbot raised on purpose (its message is written for the user).
"""


class MesbotError(Exception):
    """Base of every error mesbot raises on purpose. The message is written for the user."""


class StoreError(MesbotError):
    """The store cannot do what was asked; the message says what is wrong and what to do."""


class StoreBusy(StoreError):
    """Another writer held the database lock longer than the busy timeout; nothing was changed."""

    def __init__(self) -> None:
        super().__init__(
            "The store is busy with another change right now; nothing was changed. "
            "Try again in a few seconds."
        )


class StoreUnavailable(StoreError):
    """The store cannot be opened or used: a bad or unsupported `MESBOT_DATABASE_URL`, a server that
    cannot be reached, a file that is not a database, a read-only or full disk. Raised by
    `storage.faults`; the message names the URL (password masked) and says what to do."""


class StoreTooNew(StoreError):
    """The store's schema revision is unknown to this mesbot (a newer mesbot migrated it); nothing
    was changed."""
