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
