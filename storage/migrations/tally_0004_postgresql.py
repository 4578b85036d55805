"""The PostgreSQL half of migration 0004's SQL (tally_0004.py), frozen with it.

plpgsql functions; the device, threat and membership triggers run once per statement over its
transition tables (`old_rows`, `new_rows`), so a bulk change (a sweep moving 50,000 devices) costs one
grouped statement rather than 50,000 trigger calls.
"""

from storage.migrations.tally_0004 import SCOPES, STATES, open_bits, tally_statements

PAUSED = "IF EXISTS (SELECT 1 FROM tallypause) THEN RETURN NULL; END IF;"
DEVICE_COLUMNS = f"owner_email, {STATES}, open_classifications"


def _pg_tally(rows: str) -> str:
    """Both tallies from one evaluation of `rows` (a writable CTE feeds the first insert)."""
    states, threats = tally_statements("c0")
    return f"WITH c0 AS MATERIALIZED {rows}, s AS ({states}) {threats};"


def _pg_devices(changes: str) -> str:
    """Count rows for device `changes` (owner_email, states, bits, delta)."""
    return (
        f"(SELECT s.group_id, c.activation_status, c.protection_status, c.open_classifications, c.delta "
        f"FROM ({changes}) AS c CROSS JOIN LATERAL ({SCOPES.format(email='c.owner_email')}) AS s)"
    )


PG_DEVICE_UPDATE = (  # devices whose counted columns changed: -1 for the old values, +1 for the new
    "SELECT c.* FROM old_rows AS o FULL JOIN new_rows AS n ON n.id = o.id CROSS JOIN LATERAL (VALUES "
    "(o.owner_email, o.activation_status, o.protection_status, o.open_classifications, -1), "
    "(n.owner_email, n.activation_status, n.protection_status, n.open_classifications, 1)) "
    f"AS c ({DEVICE_COLUMNS}, delta) WHERE c.owner_email IS NOT NULL AND (o.id IS NULL OR n.id IS NULL "
    "OR (o.owner_email, o.activation_status, o.protection_status, o.open_classifications) "
    "IS DISTINCT FROM (n.owner_email, n.activation_status, n.protection_status, n.open_classifications))"
)
PG_MEMBERSHIPS = (
    "(SELECT m.group_id, d.activation_status, d.protection_status, d.open_classifications, m.delta "
    "FROM ({changes}) AS m JOIN directoryuser AS u ON u.id = m.user_id "
    "JOIN device AS d ON d.owner_email = u.email)"
)
PG_THREAT_UPDATE = (  # devices of threats that were or are open and whose device/status/class changed
    "SELECT x.device_id FROM old_rows AS o FULL JOIN new_rows AS n ON n.id = o.id CROSS JOIN LATERAL "
    "(VALUES (o.device_id, o.status), (n.device_id, n.status)) AS x (device_id, status) "
    "WHERE x.status = 'OPEN' AND (o.id IS NULL OR n.id IS NULL OR (o.device_id, o.status, o.classification) "
    "IS DISTINCT FROM (n.device_id, n.status, n.classification))"
)


def _plpgsql(name: str, body: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {PAUSED} {body} "
        "RETURN NULL; END $$"
    )


def _by_operation(insert: str, delete: str, update: str) -> str:
    return f"IF TG_OP = 'INSERT' THEN {insert} ELSIF TG_OP = 'DELETE' THEN {delete} ELSE {update} END IF;"


PG_FUNCTIONS = {
    "mesbot_recount_bits": (
        "CREATE FUNCTION mesbot_recount_bits(ids text[]) RETURNS void LANGUAGE sql AS $$ "
        "UPDATE device AS d SET open_classifications = x.bits FROM (SELECT i.id, "
        f"{open_bits('i.id', 'bit_or(c.bit)')} AS bits FROM (SELECT DISTINCT unnest(ids) AS id) AS i) AS x "
        "WHERE d.id = x.id AND d.open_classifications <> x.bits $$"
    ),
    "mesbot_device_tally": _plpgsql(
        "mesbot_device_tally",
        _by_operation(
            _pg_tally(_pg_devices(f"SELECT {DEVICE_COLUMNS}, 1 AS delta FROM new_rows")),
            _pg_tally(_pg_devices(f"SELECT {DEVICE_COLUMNS}, -1 AS delta FROM old_rows")),
            _pg_tally(_pg_devices(PG_DEVICE_UPDATE)),
        ),
    ),
    "mesbot_threat_bits": _plpgsql(
        "mesbot_threat_bits",
        _by_operation(
            "UPDATE device AS d SET open_classifications = d.open_classifications | x.bits FROM (SELECT "
            "t.device_id, bit_or(c.bit) AS bits FROM new_rows AS t JOIN classification AS c ON c.name = "
            "t.classification WHERE t.status = 'OPEN' GROUP BY t.device_id) AS x WHERE d.id = x.device_id "
            "AND d.open_classifications | x.bits <> d.open_classifications;",
            "PERFORM mesbot_recount_bits(ARRAY(SELECT device_id FROM old_rows WHERE status = 'OPEN'));",
            f"PERFORM mesbot_recount_bits(ARRAY({PG_THREAT_UPDATE}));",
        ),
    ),
    "mesbot_membership_tally": _plpgsql(
        "mesbot_membership_tally",
        _by_operation(
            _pg_tally(PG_MEMBERSHIPS.format(changes="SELECT group_id, user_id, 1 AS delta FROM new_rows")),
            _pg_tally(PG_MEMBERSHIPS.format(changes="SELECT group_id, user_id, -1 AS delta FROM old_rows")),
            _pg_tally(
                PG_MEMBERSHIPS.format(
                    changes="SELECT group_id, user_id, -1 AS delta FROM old_rows "
                    "UNION ALL SELECT group_id, user_id, 1 FROM new_rows"
                )
            ),
        ),
    ),
    "mesbot_user_tally": _plpgsql(
        "mesbot_user_tally",
        _pg_tally(
            "(SELECT m.group_id, d.activation_status, d.protection_status, d.open_classifications, x.delta "
            "FROM (VALUES (OLD.id, OLD.email, -1), (NEW.id, NEW.email, 1)) AS x (user_id, email, delta) "
            "JOIN groupmembership AS m ON m.user_id = x.user_id JOIN device AS d ON d.owner_email = x.email)"
        ),
    ),
    "mesbot_classification_bits": _plpgsql(  # OLD is NULL on INSERT and NEW on DELETE
        "mesbot_classification_bits",
        "PERFORM mesbot_recount_bits(ARRAY(SELECT device_id FROM threat WHERE status = 'OPEN' "
        "AND classification IN (OLD.name, NEW.name)));",
    ),
}
STATEMENT = "REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}
PG_TRIGGERS = {  # name: (table, event and action)
    **{
        f"{table}_{event.lower()}": (
            table,
            f"AFTER {event} ON {table} " + STATEMENT.format(tables=tables, function=function),
        )
        for table, function in (
            ("device", "mesbot_device_tally"),
            ("threat", "mesbot_threat_bits"),
            ("groupmembership", "mesbot_membership_tally"),
        )
        for event, tables in TRANSITIONS.items()
    },
    "directoryuser_email": (
        "directoryuser",
        "AFTER UPDATE OF email ON directoryuser FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email) "
        "EXECUTE FUNCTION mesbot_user_tally()",
    ),
    "classification_bits": (
        "classification",
        "AFTER INSERT OR DELETE OR UPDATE OF name, bit ON classification FOR EACH ROW "
        "EXECUTE FUNCTION mesbot_classification_bits()",
    ),
}
