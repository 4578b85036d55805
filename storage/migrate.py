"""Schema migrations through Alembic, run from inside the package (works from any directory)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage import faults
from storage.engine import Store

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = store.engine
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Migrate to `revision`; a store from a newer mesbot is refused before Alembic touches it."""
    is_current(store)
    with faults.translated(store.given_url):
        command.upgrade(alembic_config(store), revision)


def is_current(store: Store) -> bool:
    """Whether the database is at the newest migration (False for an empty database).

    Raises StoreTooNew when the store is at a revision this mesbot does not ship, so neither
    `db upgrade` nor a command runs against a schema it does not know.
    """
    script = ScriptDirectory.from_config(alembic_config(store))
    with faults.translated(store.given_url), store.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise faults.too_new(store.given_url, current)
    return current == script.get_current_head()
