"""The SQL of migration 0004 (the device tallies and the triggers that keep them), frozen with it.

A later migration that changes the tallies writes its own SQL; it does not edit this file. Every
trigger skips its work while `tallypause` has a row (a bulk load, which stores its own counts).

Each trigger turns a change into "count rows": (group_id, activation_status, protection_status,
open_classifications, delta) — a device counted into (+1) or out of (-1) every device's group ('') and
each group of its owner — and adds them up into both tallies with `tally_statements`.
"""

from collections.abc import Callable

Execute = Callable[[str], object]

STATES = "activation_status, protection_status"
EXPOSED = (  # counted in the open threat tally: activated, protected, some open threat
    "{0}.activation_status = 'ACTIVATED' AND {0}.protection_status = 'PROTECTED' "
    "AND {0}.open_classifications <> 0"
)
SCOPES = (  # the groups a device owned by {email} is counted in: every device (''), and its owner's groups
    "SELECT '' AS group_id UNION ALL SELECT m.group_id FROM directoryuser AS u "
    "JOIN groupmembership AS m ON m.user_id = u.id WHERE u.email = {email}"
)


def _upsert(table: str, key: str) -> str:
    return f"ON CONFLICT ({key}) DO UPDATE SET devices = {table}.devices + excluded.devices"


def tally_statements(rows: str, state_rows: str | None = None) -> list[str]:
    """Add the count rows of `rows` (a query, or a CTE's name) into both tallies."""
    return [
        f"INSERT INTO devicetally (group_id, {STATES}, devices) SELECT c.group_id, c.activation_status, "
        f"c.protection_status, sum(c.delta) FROM {state_rows or rows} AS c WHERE true "
        f"GROUP BY c.group_id, c.activation_status, c.protection_status HAVING sum(c.delta) <> 0 "
        + _upsert("devicetally", f"group_id, {STATES}"),
        f"INSERT INTO openthreattally (group_id, open_classifications, devices) SELECT c.group_id, "
        f"c.open_classifications, sum(c.delta) FROM {rows} AS c WHERE {EXPOSED.format('c')} "
        "GROUP BY c.group_id, c.open_classifications HAVING sum(c.delta) <> 0 "
        + _upsert("openthreattally", "group_id, open_classifications"),
    ]


def _device(row: str, sign: str) -> str:
    """Count rows for one device (`NEW` or `OLD`): its groups, its states and bits."""
    return (
        f"(SELECT s.group_id, {row}.activation_status AS activation_status, {row}.protection_status "
        f"AS protection_status, {row}.open_classifications AS open_classifications, {sign}1 AS delta "
        f"FROM ({SCOPES.format(email=row + '.owner_email')}) AS s)"
    )


def _member(user_id: str, group_id: str, sign: str) -> str:
    """Count rows for a user joining (+) or leaving (-) a group: each of their devices, in that group."""
    return (
        f"(SELECT {group_id} AS group_id, d.activation_status, d.protection_status, d.open_classifications, "
        f"{sign}1 AS delta FROM directoryuser AS u JOIN device AS d ON d.owner_email = u.email "
        f"WHERE u.id = {user_id})"
    )


def _addressee(user_id: str, email: str, sign: str) -> str:
    """Count rows for the devices owned by `email`, in each group of the user `user_id`."""
    return (
        "(SELECT m.group_id, d.activation_status, d.protection_status, d.open_classifications, "
        f"{sign}1 AS delta FROM groupmembership AS m JOIN device AS d ON d.owner_email = {email} "
        f"WHERE m.user_id = {user_id})"
    )


def open_bits(device_id: str, aggregate: str) -> str:
    return (
        f"coalesce((SELECT {aggregate} FROM threat AS t JOIN classification AS c "
        f"ON c.name = t.classification WHERE t.device_id = {device_id} AND t.status = 'OPEN'), 0)"
    )


EVERY_DEVICE_ROWS = (  # count rows for every device as it is: fills the tallies of an existing store
    "(SELECT '' AS group_id, activation_status, protection_status, open_classifications, 1 AS delta "
    "FROM device UNION ALL SELECT m.group_id, d.activation_status, d.protection_status, "
    "d.open_classifications, 1 FROM device AS d JOIN directoryuser AS u ON u.email = d.owner_email "
    "JOIN groupmembership AS m ON m.user_id = u.id)"
)
SQLITE_BITS = open_bits("device.id", "sum(DISTINCT c.bit)")  # distinct powers of two: sum = OR
PG_BITS = open_bits("device.id", "bit_or(c.bit)")

# --- SQLite: row triggers (PostgreSQL's: tally_0004_postgresql.py); `WHEN NOT EXISTS (SELECT 1 FROM
# tallypause)` skips them in a bulk load.
RUN = "NOT EXISTS (SELECT 1 FROM tallypause)"


def _recount(where: str) -> list[str]:
    return [f"UPDATE device SET open_classifications = {SQLITE_BITS} WHERE id IN ({where})"]


def _open_threats_of(name: str) -> str:
    return f"SELECT device_id FROM threat WHERE status = 'OPEN' AND classification = {name}"


DEVICE_CHANGED = " OR ".join(
    f"OLD.{c} IS NOT NEW.{c}"
    for c in ("owner_email", "activation_status", "protection_status", "open_classifications")
)
SQLITE_TRIGGERS: dict[str, tuple[str, str, list[str]]] = {  # name: (event, when, statements)
    "device_tally_insert": ("AFTER INSERT ON device", RUN, tally_statements(_device("NEW", "+"))),
    "device_tally_delete": ("AFTER DELETE ON device", RUN, tally_statements(_device("OLD", "-"))),
    "device_tally_update": (
        "AFTER UPDATE OF owner_email, activation_status, protection_status, open_classifications ON device",
        f"{RUN} AND ({DEVICE_CHANGED})",
        tally_statements(_device("OLD", "-")) + tally_statements(_device("NEW", "+")),
    ),
    "threat_bits_insert": (
        "AFTER INSERT ON threat",
        f"{RUN} AND NEW.status = 'OPEN'",
        [
            "UPDATE device SET open_classifications = open_classifications | "
            "coalesce((SELECT bit FROM classification WHERE name = NEW.classification), 0) "
            "WHERE id = NEW.device_id"
        ],
    ),
    "threat_bits_delete": (
        "AFTER DELETE ON threat",
        f"{RUN} AND OLD.status = 'OPEN'",
        _recount("OLD.device_id"),
    ),
    "threat_bits_update": (
        "AFTER UPDATE OF device_id, status, classification ON threat",
        f"{RUN} AND (OLD.status = 'OPEN' OR NEW.status = 'OPEN')",
        _recount("OLD.device_id, NEW.device_id"),
    ),
    "membership_tally_insert": (
        "AFTER INSERT ON groupmembership",
        RUN,
        tally_statements(_member("NEW.user_id", "NEW.group_id", "+")),
    ),
    "membership_tally_delete": (
        "AFTER DELETE ON groupmembership",
        RUN,
        tally_statements(_member("OLD.user_id", "OLD.group_id", "-")),
    ),
    "membership_tally_update": (
        "AFTER UPDATE ON groupmembership",
        RUN,
        tally_statements(_member("OLD.user_id", "OLD.group_id", "-"))
        + tally_statements(_member("NEW.user_id", "NEW.group_id", "+")),
    ),
    "user_tally_update": (
        "AFTER UPDATE OF email ON directoryuser",
        f"{RUN} AND OLD.email IS NOT NEW.email",
        tally_statements(_addressee("OLD.id", "OLD.email", "-"))
        + tally_statements(_addressee("NEW.id", "NEW.email", "+")),
    ),
    "classification_bits_insert": (
        "AFTER INSERT ON classification",
        RUN,
        _recount(_open_threats_of("NEW.name")),
    ),
    "classification_bits_delete": (
        "AFTER DELETE ON classification",
        RUN,
        _recount(_open_threats_of("OLD.name")),
    ),
    "classification_bits_update": (
        "AFTER UPDATE OF name, bit ON classification",
        RUN,
        _recount(f"{_open_threats_of('OLD.name')} UNION {_open_threats_of('NEW.name')}"),
    ),
}


def create(execute: Execute, dialect: str) -> None:
    if dialect == "sqlite":
        for name, (event, when, statements) in SQLITE_TRIGGERS.items():
            execute(f"CREATE TRIGGER {name} {event} WHEN {when} BEGIN {'; '.join(statements)}; END")
        return
    from storage.migrations.tally_0004_postgresql import PG_FUNCTIONS, PG_TRIGGERS  # (it imports this)

    for sql in PG_FUNCTIONS.values():
        execute(sql)
    for name, (_table, action) in PG_TRIGGERS.items():
        execute(f"CREATE TRIGGER mesbot_{name} {action}")


def drop(execute: Execute, dialect: str) -> None:
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    from storage.migrations.tally_0004_postgresql import PG_FUNCTIONS, PG_TRIGGERS  # (it imports this)

    for name, (table, _action) in PG_TRIGGERS.items():
        execute(f"DROP TRIGGER IF EXISTS mesbot_{name} ON {table}")
    for name in reversed(PG_FUNCTIONS):
        execute(f"DROP FUNCTION IF EXISTS {name}")


def fill(execute: Execute) -> None:
    """Count every device of an existing store into the (empty) tallies."""
    for statement in tally_statements(EVERY_DEVICE_ROWS):
        execute(statement)
