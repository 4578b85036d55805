"""The store: SQLModel tables, the engine and session factory, Alembic migrations."""
