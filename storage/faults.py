"""Store faults in an operator's words: the one place that turns SQLAlchemy, driver, Alembic and
file-system errors into a `StoreError` that says what is wrong, with which URL (password masked), and
what to do. `mesbot` prints that message as is, so it is at most two lines: what, then what to do."""

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from storage.errors import StoreBusy, StoreError, StoreTooNew, StoreUnavailable

SUPPORTED = ("sqlite", "postgresql", "postgres")  # `postgres://` as Heroku writes it
USE = "Use sqlite:///PATH/TO/mesbot.db or postgresql://USER:PASSWORD@HOST/DATABASE."
DETAIL_LIMIT = 200  # a driver's first line is enough to act on; the rest is for a debugger
_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")  # greedy: a stray "@" in the password stays hidden
_UNKNOWN_REVISION = re.compile(r"Can't locate revision identified by '([^']*)'")


def masked(url: str) -> str:
    """The URL as it may be shown anywhere: the password replaced by `***`."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # unparseable, but it may still hold a password
        return _PASSWORD.sub(r"\1***@", url)
    # without a password the URL is shown as typed (SQLAlchemy would render `:memory:` as `%3Amemory%3A`)
    return parsed.render_as_string(hide_password=True) if parsed.password is not None else url


def parse(url: str) -> URL:
    """The parsed URL of a store mesbot can use, or StoreUnavailable saying why not."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreUnavailable(f"MESBOT_DATABASE_URL `{masked(url)}` is not a database URL.\n{USE}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreUnavailable(
            f"MESBOT_DATABASE_URL `{masked(url)}` names a {backend} database; "
            f"mesbot keeps its store in SQLite or PostgreSQL only.\n{USE}"
        )
    return parsed


def is_memory(url: URL) -> bool:
    """SQLite in memory: `sqlite://`, `sqlite:///:memory:` or a `mode=memory` URI."""
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def in_memory(url: str) -> StoreUnavailable:
    """For the command line, where each `mesbot` run would start from an empty store."""
    return StoreUnavailable(
        f"MESBOT_DATABASE_URL `{masked(url)}` keeps the store in memory, so every mesbot command "
        "would start from an empty store.\nUse a file, e.g. sqlite:///./var/mesbot.db."
    )


def folder_fault(error: OSError, url: str, folder: Path) -> StoreUnavailable:
    return StoreUnavailable(
        f"Cannot create the folder {folder} for the store `{masked(url)}`: {error.strerror}.\n"
        "Point MESBOT_DATABASE_URL at a place mesbot can write."
    )


def missing_driver(error: NoSuchModuleError | ImportError, url: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"The database driver that `{masked(url)}` names is not installed ({error}).\n"
        "Use postgresql://… (mesbot picks psycopg) or sqlite:///…."
    )


def too_new(url: str, revision: str) -> StoreTooNew:
    return StoreTooNew(
        f"The store `{masked(url)}` is at schema revision {revision}, which this mesbot does not know: "
        "a newer mesbot migrated it (or it belongs to another application); nothing was changed.\n"
        "Upgrade mesbot, or point MESBOT_DATABASE_URL at this version's store."
    )


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Around any code that talks to the store: its faults come out as `StoreError`; anything else
    (a constraint violation, a bug) passes through unchanged."""
    try:
        yield
    except Exception as error:
        fault = store_fault(error, url)
        if fault is None:
            raise
        raise fault from error


def _is_alembic_command_error(error: Exception) -> bool:
    # Only `db upgrade` and `demo seed` load Alembic (storage.migrate), and importing it for this
    # check alone cost every `mesbot ask` about 0.1 s of start-up (it pulls in Mako and Pygments).
    # Not loaded means nothing could have raised its CommandError.
    exc = sys.modules.get("alembic.util.exc")
    return exc is not None and isinstance(error, exc.CommandError)


def store_fault(error: Exception, url: str) -> StoreError | None:
    """The StoreError for `error` raised on the store at `url`; None when it is no store fault."""
    shown = f"`{masked(url)}`"
    if _is_alembic_command_error(error):
        unknown = _UNKNOWN_REVISION.search(str(error))
        return too_new(url, unknown.group(1)) if unknown else None
    if not isinstance(error, DBAPIError):
        return None
    detail = _detail(error, url)
    text = detail.lower()
    if "file is not a database" in text:
        return StoreUnavailable(
            f"{shown} is not a SQLite database ({detail}).\n"
            "Point MESBOT_DATABASE_URL at your mesbot store, or at a new file to start one."
        )
    sqlstate = getattr(error.orig, "sqlstate", None) or ""  # PostgreSQL's error code (psycopg)
    if sqlstate == "42501":  # insufficient_privilege: e.g. no CREATE on schema public (PostgreSQL 15+)
        return StoreUnavailable(
            f"The database user of {shown} may not do what mesbot needs ({detail}); nothing was changed.\n"
            "Make that user the database's owner (or grant it CREATE and USAGE on the schema)."
        )
    if sqlstate == "3F000":  # invalid_schema_name: search_path names no schema the user can use
        return StoreUnavailable(
            f"The store {shown} has no schema to create its tables in ({detail}); nothing was changed.\n"
            "Create the schema the user's search_path names, or grant the user USAGE and CREATE on it."
        )
    if sqlstate == "25006":  # read_only_sql_transaction: a standby, or default_transaction_read_only
        return StoreUnavailable(
            f"The store {shown} is read-only ({detail}); nothing was changed.\n"
            "Point MESBOT_DATABASE_URL at the primary server."
        )
    if not isinstance(error, OperationalError):
        return None  # integrity and programming errors are bugs or races the caller handles
    if _is_lock(text):
        return StoreBusy()
    if "readonly database" in text or "read-only" in text:
        return StoreUnavailable(
            f"The store {shown} is read-only ({detail}); nothing was changed.\n"
            "Make the file and its folder writable for mesbot, or point MESBOT_DATABASE_URL elsewhere."
        )
    if "database or disk is full" in text or "no space left" in text:
        return StoreUnavailable(
            f"The disk holding the store {shown} is full ({detail}); nothing was changed.\n"
            "Free some space, then try again."
        )
    if "unable to open database file" in text:
        return StoreUnavailable(
            f"Cannot open the store {shown}: {detail}{_sqlite_hint(url)}.\n"
            "Point MESBOT_DATABASE_URL at a file mesbot can create and write."
        )
    if "disk i/o error" in text:
        return StoreUnavailable(
            f"The store {shown} could not be read or written ({detail}).\n"
            "Check the disk, its free space and any file size limit (ulimit -f), then try again."
        )
    if make_url(url).get_backend_name() == "sqlite":
        return StoreUnavailable(f"The store {shown} failed: {detail}.\nCheck the file and its disk.")
    return StoreUnavailable(
        f"Cannot use the store {shown}: {detail}.\nCheck that the database server is running and that "
        "MESBOT_DATABASE_URL has the right host, port, database, user and password."
    )


def _detail(error: DBAPIError, url: str) -> str:
    """The driver's first line, without the password even if a driver were to echo it."""
    lines = str(error.orig).strip().splitlines() or [type(error.orig).__name__]
    detail = " ".join(lines[0].split()).rstrip(".")
    password = make_url(url).password
    if password:
        detail = detail.replace(str(password), "***")
    return detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 1] + "…"


def _is_lock(text: str) -> bool:
    return "database is locked" in text or "lock timeout" in text or "could not obtain lock" in text


def _sqlite_hint(url: str) -> str:
    """Why SQLite could not open the file, when the file system can tell (root ignores permissions,
    not a read-only mount)."""
    database = make_url(url).database or ""
    folder = Path(database).resolve().parent
    if not folder.is_dir():
        return f" (the folder {folder} does not exist)"
    if Path(database).is_dir():
        return " (that path is a folder)"
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f" (the file system holding {folder} is read-only)"
    if not os.access(folder, os.W_OK):
        return f" (no permission to write in {folder})"
    return ""
