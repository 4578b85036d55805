"""Schema migrations through Alembic, run from inside the package (works from any directory).

Alembic is imported only to migrate: every other command merely checks the store's revision against
`HEAD`, which costs a query instead of Alembic's import and a parse of every migration script.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError

from storage.engine import Store

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0004"  # the newest revision in migrations/versions (tests/storage/test_store.py keeps them in step)


def alembic_config(store: Store) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = store.engine
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(store), revision)


def is_current(store: Store) -> bool:
    """Whether the database is at the newest migration (False for an empty database)."""
    with store.engine.connect() as connection:
        try:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        except DBAPIError:  # no such table: never migrated
            return False
    return versions == [HEAD]
