"""device tally: on SQLite, a device whose open threats change no longer recounts its states (issue 9)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:50:00

Migration 0004's `device_tally_update` counted a changed device out of both tallies and back in with
four statements, whatever changed. The commonest change by far is a new open threat: only
`open_classifications`, so the states tally (`devicetally`) was counted -1 and +1 for nothing. Now
two triggers, each with one statement over the device's old and new count rows together (rows that
cancel out write nothing):

- `device_tally_update_states`: `devicetally`, only when the owner or a state changed;
- `device_tally_update_threats`: `openthreattally`, when any of the four changed.

A new open threat now costs one grouped upsert instead of four (bench/lookout_stream.py and the
README give the stream's figures). PostgreSQL's triggers are per statement and already grouped:
unchanged.
"""

from alembic import op

from storage.migrations import tally_0004 as sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STATES_CHANGED = " OR ".join(
    f"OLD.{c} IS NOT NEW.{c}" for c in ("owner_email", "activation_status", "protection_status")
)
_BOTH = f"(SELECT * FROM {sql._device('OLD', '-')} UNION ALL SELECT * FROM {sql._device('NEW', '+')})"
_STATES_TALLY, _THREAT_TALLY = sql.tally_statements(_BOTH)
TRIGGERS = {
    "device_tally_update_states": (
        "AFTER UPDATE OF owner_email, activation_status, protection_status ON device",
        f"{sql.RUN} AND ({_STATES_CHANGED})",
        _STATES_TALLY,
    ),
    "device_tally_update_threats": (
        "AFTER UPDATE OF owner_email, activation_status, protection_status, open_classifications ON device",
        f"{sql.RUN} AND ({sql.DEVICE_CHANGED})",
        _THREAT_TALLY,
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS device_tally_update")
    for name, (event, when, statement) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {event} WHEN {when} BEGIN {statement}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    event, when, statements = sql.SQLITE_TRIGGERS["device_tally_update"]
    op.execute(f"CREATE TRIGGER device_tally_update {event} WHEN {when} BEGIN {'; '.join(statements)}; END")
