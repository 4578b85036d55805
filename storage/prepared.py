"""`Prepared`: a Core SELECT compiled once per dialect and run on the session's DBAPI cursor.

For the few reads on the Slack ack path (sign-in, the policy, a user's devices), where SQLAlchemy's
per-execution work — cache key, execution context, result proxy, events — cost ~60 µs a statement
against ~5 µs for SQLite to run it (`bench/slack_ack.py`). The SQL is SQLAlchemy's own, compiled for
the engine's dialect, and every bound value and column goes through its column type's processors as
`Connection.execute` would send and read it; only the per-call machinery is skipped.

It runs in the session's transaction (`session.connection()`), so it sees what was flushed, like any
Core statement on that connection. Driver errors are raised as SQLAlchemy's `DBAPIError`, so
`storage.faults` names them as it names every other store fault.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from storage.engine import HELD_CONNECTION

Processor = Callable[[Any], Any] | None
AnySelect = Select[*tuple[Any, ...]]


class Prepared:
    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}

    def all(self, session: Session, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row, as tuples of the selected columns' values (as their types load them)."""
        connection = session.info.get(HELD_CONNECTION) or session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get(_key(dialect)) or self._compile(dialect)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.arguments(params or {}))
            rows = cursor.fetchall()
        except dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(compiled.sql, params, error, dialect.loaded_dbapi.Error) from error
        finally:
            cursor.close()
        return compiled.loaded(rows)

    def _compile(self, dialect: Dialect) -> "_Compiled":
        compiled = _Compiled(self.statement, dialect)
        self._compiled[_key(dialect)] = compiled
        return compiled


def _key(dialect: Dialect) -> tuple[str, str, str]:
    return dialect.name, dialect.driver, dialect.paramstyle


class _Compiled:
    def __init__(self, statement: AnySelect, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("Prepared takes no expanding IN parameter: use storage.bulk.among")
        self.sql = str(compiled)
        processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        # the statement's own literals (`id = 1`), converted once; the caller gives the named ones
        # (`bindparam("key")`), converted on each call
        self.fixed = {
            name: _apply(processors[name], bind.effective_value)
            for name, bind in compiled.binds.items()
            if not bind.required
        }
        self.binds = {
            name: process
            for name, process in processors.items()
            if process is not None and name not in self.fixed
        }
        self.names: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.loading = [(index, process) for index, process in enumerate(results) if process is not None]

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = {**self.fixed, **params}
        for name, process in self.binds.items():
            values[name] = process(values[name])
        return [values[name] for name in self.names] if self.names is not None else values

    def loaded(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self.loading:
            return [tuple(row) for row in rows]
        loaded = []
        for row in rows:
            values = list(row)
            for index, process in self.loading:  # only the columns whose type converts (dates, enums)
                values[index] = process(values[index])
            loaded.append(tuple(values))
        return loaded


def _apply(process: Processor, value: Any) -> Any:
    return value if process is None else process(value)
