"""Schema migrations through Alembic, run from inside the package (works from any directory).

Alembic is imported only to migrate: every other command merely checks the store's revision against
`HEAD`, which costs a query instead of Alembic's import and a parse of every migration script.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from storage import faults
from storage.engine import Store

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0007"  # the newest revision in migrations/versions (tests/storage/test_store.py keeps them in step)


def alembic_config(store: Store) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = store.engine
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Migrate to `revision`; a store from a newer mesbot is refused before Alembic touches it."""
    from alembic import command

    is_current(store)
    with faults.translated(store.given_url):
        command.upgrade(alembic_config(store), revision)


def is_current(store: Store) -> bool:
    """Whether the database is at the newest migration (False for an empty database).

    Raises StoreTooNew when the store is at a revision this mesbot does not ship, so neither
    `db upgrade` nor a command runs against a schema it does not know.
    """
    with faults.translated(store.given_url), store.engine.connect() as connection:
        try:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        except DBAPIError as error:
            if not _no_such_table(error):
                raise  # not a database, unreachable, …: translated into a store fault
            return False  # never migrated
    unknown = [version for version in versions if version not in _known_revisions()]
    if unknown:
        raise faults.too_new(store.given_url, unknown[0])
    return list(versions) == [HEAD]


def _no_such_table(error: DBAPIError) -> bool:
    text = str(error.orig).lower()
    return "no such table" in text or ("alembic_version" in text and "does not exist" in text)


def _known_revisions() -> set[str]:
    """The revisions this mesbot ships: each migration file is named after its revision."""
    return {path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*.py")}
