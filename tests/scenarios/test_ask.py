"""`mesbot ask`, `mesbot shell` and `mesbot demo threat` end to end (DESIGN.md §4, §5, §7): the real
command line on a SQLite file seeded by `mesbot demo seed`, as each demo identity."""

import json
import shlex
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import chdir, closing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot import shell
from bot.cli import main
from bot.console import Console
from integration import tenant
from integration.catalogue import CATALOGUE
from integration.clock import SystemClock
from integration.preferences import CATEGORIES
from storage.engine import Store

ADMIN, ANALYST, ALICE = "admin@contoso.example", "analyst@contoso.example", "alice@contoso.example"
NOBODY = "nobody@contoso.example"
NEW_GUID = "0b5e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
Data = dict[str, Any]


class Mesbot:
    """The `mesbot` command line on one SQLite file, run the way a user runs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.runner = CliRunner()

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return self.runner.invoke(main, list(args), env={"MESBOT_DATABASE_URL": self.url}, input=stdin)

    def ask(self, email: str, text: str) -> tuple[int, Data]:
        """`mesbot ask --as EMAIL --json TEXT…`, with TEXT split the way a POSIX shell splits it."""
        result = self("ask", "--as", email, "--json", *shlex.split(text))
        assert result.exit_code in (0, 1), result.output
        reply = json.loads(result.stdout)
        assert set(reply) == {"ok", "text", "data"}
        assert reply["ok"] is (result.exit_code == 0)
        assert isinstance(reply["text"], str) and reply["text"]
        return result.exit_code, reply

    def data(self, email: str, text: str) -> Data:
        code, reply = self.ask(email, text)
        assert code == 0, reply["text"]
        return reply["data"]

    def refused(self, email: str, text: str) -> str:
        code, reply = self.ask(email, text)
        assert code == 1, reply["text"]
        assert reply["data"] == {}
        return reply["text"]

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table but the audit log."""
        with closing(sqlite3.connect(self.path)) as db:
            names = [
                name
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if name not in ("auditentry", "alembic_version")
            ]
            return {
                name: sorted(db.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names
            }

    def audit(self) -> list[tuple[str, str, str]]:
        with closing(sqlite3.connect(self.path)) as db:
            return db.execute("SELECT actor, action, outcome FROM auditentry ORDER BY id").fetchall()

    def withdraw_consent(self) -> None:
        """The state of a fresh install: nobody has granted consent yet."""
        store = Store(self.url)
        try:
            with store.write() as session:
                subscription = tenant.subscription(session)
                subscription.consent_granted = False
                subscription.consent_by = subscription.consent_at = None
                session.add(subscription)
        finally:
            store.dispose()


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo tenant, seeded once by `mesbot demo seed`; every test gets its own copy."""
    path = tmp_path_factory.mktemp("seeded") / "mesbot.db"
    with chdir(path.parent):  # no stray .env
        result = Mesbot(path)("demo", "seed", "--users", "60", "--devices", "150", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "Demo tenant ready: 60 users, 150 devices" in result.stdout
    with closing(sqlite3.connect(path)) as db:  # fold the WAL into the file, so a copy is complete
        assert db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    return path


@pytest.fixture
def mesbot(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mesbot:
    monkeypatch.chdir(tmp_path)  # no stray .env; relative paths land in tmp_path
    shutil.copyfile(seeded, tmp_path / "mesbot.db")
    return Mesbot(tmp_path / "mesbot.db")


def alice_trojan_device(mesbot: Mesbot) -> str:
    """The demo's blocked phone: alice's device with an open TROJAN (DESIGN.md §7)."""
    devices = mesbot.data(ALICE, "status me")["devices"]
    return next(d["id"] for d in devices if any(t["classification"] == "TROJAN" for t in d["open_threats"]))


# ------------------------------------------------------------------------------- data shapes of §5

DEVICE = {"id", "owner", "platform", "activation", "protection", "security", "compliance", "last_checkin"}
THREAT = {"id", "classification", "risk", "detected_at", "app"}
PREVIEW = {"newly_noncompliant", "newly_compliant", "open_threats"}
CONNECTOR = {
    *("heartbeat_minutes", "enrollment_groups", "device_status_sync", "threat_status_sync"),
    *("error_email", "state", "last_heartbeat", "errors"),
}


def no_data(data: Data) -> None:
    assert data == {}


def devices(data: Data) -> None:
    assert set(data) == {"devices"} and data["devices"]
    for device in data["devices"]:
        assert set(device) >= DEVICE | {"open_threats"}
        for threat in device["open_threats"]:
            assert set(threat) >= THREAT


def enrollment(*, listed: bool) -> Callable[[Data], None]:
    def check(data: Data) -> None:
        assert set(data["counts"]) == {"pending", "activated", "deactivated", "disconnected"}
        assert set(data["compliance"]) == {"compliant", "noncompliant", "pending"}
        assert ("devices" in data) is listed

    return check


def classifications(data: Data) -> None:
    assert set(data) == {"classifications", "drift"} and len(data["classifications"]) == len(CATALOGUE)
    assert data["drift"] == []  # the demo's Lookout console is at the catalogue's defaults
    for row in data["classifications"]:
        assert set(row) == {"name", "category", "risk", "default_risk"}


def preview(data: Data) -> None:
    assert set(data["preview"]) == PREVIEW
    assert "applied" not in data


def applied(data: Data) -> None:
    assert data["applied"] is True
    assert set(data["preview"]) == PREVIEW


def policy(then: Callable[[Data], None] | None = None) -> Callable[[Data], None]:
    def check(data: Data) -> None:
        assert set(data["policy"]) == {"noncompliant_at", "intune_threat_level"}
        if then:
            then(data)

    return check


def connector(data: Data) -> None:
    assert set(data) == {"connector"} and set(data["connector"]) == CONNECTOR
    for error in data["connector"]["errors"]:
        assert set(error) == {"fingerprint", "message", "count", "first_seen", "last_seen"}


def enrollment_settings(data: Data) -> None:
    assert set(data) == {"enrollment_settings"}
    assert isinstance(data["enrollment_settings"]["disconnected_days"], int)


def subscription(data: Data) -> None:
    assert set(data) == {"subscription"}
    assert set(data["subscription"]) == {
        "tenant_id",
        "full_access_group",
        "restricted_access_group",
        "consent",
    }
    assert set(data["subscription"]["consent"]) == {"granted", "by", "at"}


def preferences(data: Data) -> None:
    assert set(data["preferences"]) == set(CATEGORIES)
    for channels in data["preferences"].values():
        assert set(channels) == {"email", "slack"}


def entries(data: Data) -> None:
    assert set(data) == {"entries"} and data["entries"]
    for entry in data["entries"]:
        assert {"at", "actor", "action", "before", "after"} <= set(entry)


# ------------------------------------------------------------------ every row, as every identity


class Effect(Enum):
    READS = "reads"  # never changes anything
    ASKS = "asks"  # a change command that, here, only previews or finds nothing to do
    CHANGES = "changes"  # changes the store and leaves an `applied` audit entry


@dataclass(frozen=True)
class Row:
    text: str
    who: str  # anyone | own | read | change | subscription | consent (DESIGN.md §5 "who")
    shape: Callable[[Data], None]
    effect: Effect = Effect.READS
    show: str | None = None  # the show command whose output a refusal must leave as it was
    setup: str | None = None  # run first, as admin

    def __str__(self) -> str:
        return self.text


ROWS = [
    Row("help", "anyone", no_data),
    Row("status me", "own", devices),
    Row(f"status {ALICE}", "read", devices),
    Row("status {device}", "read", devices),
    Row("enrollment", "read", enrollment(listed=False)),
    Row("enrollment pending", "read", enrollment(listed=True)),
    Row('enrollment disconnected group "Mobile Users"', "read", enrollment(listed=True)),
    Row("risk", "read", classifications),
    Row("risk list", "read", classifications),
    Row("risk set TROJAN low", "change", preview, Effect.ASKS, "risk list"),
    Row("risk set TROJAN low --yes", "change", applied, Effect.CHANGES, "risk list"),
    Row("risk reset TROJAN", "change", preview, Effect.ASKS, "risk list", "risk set TROJAN low --yes"),
    Row("risk reset all --yes", "change", applied, Effect.CHANGES, "risk list", "risk set TROJAN low --yes"),
    Row("policy", "read", policy()),
    Row("policy set medium", "change", policy(preview), Effect.ASKS, "policy"),
    Row("policy set medium --yes", "change", policy(applied), Effect.CHANGES, "policy"),
    Row("connector", "read", connector),
    Row("connector set heartbeat 30", "change", connector, Effect.CHANGES, "connector"),
    Row("connector set error-email secops@contoso.example", "change", connector, Effect.CHANGES, "connector"),
    Row('connector groups add "Sales"', "change", connector, Effect.CHANGES, "connector"),
    Row('connector groups remove "Lookout Pilot"', "change", connector, Effect.CHANGES, "connector"),
    Row("connector sync threat off", "change", connector, Effect.CHANGES, "connector"),
    Row("enrollment settings", "read", enrollment_settings),
    Row(
        "enrollment settings disconnected-days 45",
        "change",
        enrollment_settings,
        Effect.CHANGES,
        "enrollment settings",
    ),
    Row("subscription", "subscription", subscription),
    Row(f"subscription set tenant {NEW_GUID}", "subscription", subscription, Effect.CHANGES, "subscription"),
    Row(
        "subscription set restricted-group none", "subscription", subscription, Effect.CHANGES, "subscription"
    ),
    Row("subscription consent", "consent", subscription, Effect.ASKS, "subscription"),
    Row("notify", "read", preferences),
    Row("notify threat-medium on email", "read", preferences, Effect.CHANGES),
    Row("notify digest on", "read", preferences, Effect.CHANGES),
    Row("notify quiet 22:00-07:00", "read", preferences, Effect.CHANGES),
    Row("audit", "change", entries),
    Row("audit 3", "change", entries),
]
ALLOWED = {
    "anyone": {ADMIN, ANALYST, ALICE},
    "own": {ADMIN, ANALYST, ALICE},
    "read": {ADMIN, ANALYST},
    "change": {ADMIN},
    "subscription": {ADMIN},  # full access, or a global administrator: admin is both
    "consent": {ADMIN},  # a global administrator
}
# Why a refusal happened, and how to fix it, as the refused user reads it.
NO_ACCESS = "You have no Lookout console access, so you cannot"
NOT_FULL = "Only full-access users or a directory global administrator can"
NOT_GLOBAL_ADMIN = "Only a directory global administrator can grant consent; you are not one."
TO_FULL = 'Ask an admin to add you to "Lookout Admins".'
TO_ANY = 'Ask an admin to add you to "Lookout Admins" or "Lookout Analysts".'
TO_GLOBAL_ADMIN = "Ask a global administrator to run `subscription consent`."
REFUSAL = {
    (ANALYST, "change"): ("You have restricted (read-only) access, so you cannot", TO_FULL),
    (ALICE, "read"): (NO_ACCESS, TO_ANY),
    (ALICE, "change"): (NO_ACCESS, TO_FULL),
    (ANALYST, "subscription"): (NOT_FULL, TO_FULL),
    (ALICE, "subscription"): (NOT_FULL, TO_FULL),
    (ANALYST, "consent"): (NOT_GLOBAL_ADMIN, TO_GLOBAL_ADMIN),
    (ALICE, "consent"): (NOT_GLOBAL_ADMIN, TO_GLOBAL_ADMIN),
}


@pytest.mark.parametrize("email", [ADMIN, ANALYST, ALICE])
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_every_grammar_row_as_every_identity(mesbot: Mesbot, row: Row, email: str) -> None:
    if row.setup:
        mesbot.data(ADMIN, row.setup)
    text = row.text.format(device=alice_trojan_device(mesbot))
    tables, audit = mesbot.tables(), mesbot.audit()
    shown = mesbot.data(ADMIN, row.show) if row.show else None

    code, reply = mesbot.ask(email, text)

    new_audit = mesbot.audit()[len(audit) :]
    if email not in ALLOWED[row.who]:
        why, how = REFUSAL[email, row.who]
        assert code == 1 and reply["data"] == {}
        assert why in reply["text"] and how in reply["text"]
        assert mesbot.tables() == tables
        assert not row.show or mesbot.data(ADMIN, row.show) == shown
        # a refused change is audited as such; a refused read leaves no trace
        expected = [] if row.effect is Effect.READS else [(email, "denied")]
        assert [(actor, outcome) for actor, _, outcome in new_audit] == expected
        return
    assert code == 0
    row.shape(reply["data"])
    if row.effect is Effect.CHANGES:
        assert mesbot.tables() != tables
        assert [(actor, outcome) for actor, _, outcome in new_audit] == [(email, "applied")]
        assert email != ADMIN or not row.show or mesbot.data(ADMIN, row.show) != shown
    else:
        assert mesbot.tables() == tables
        assert new_audit == []


# ---------------------------------------------------------------------------------------- consent

CONSENT_INSTRUCTIONS = "A directory global administrator must run `subscription consent`"
GATED = [row for row in ROWS if row.who not in ("anyone", "subscription", "consent")]


@pytest.mark.parametrize("email", [ADMIN, ANALYST, ALICE])
@pytest.mark.parametrize("row", GATED, ids=str)
def test_before_consent_every_command_but_help_and_subscription_is_refused(
    mesbot: Mesbot, row: Row, email: str
) -> None:
    device = alice_trojan_device(mesbot)
    mesbot.withdraw_consent()
    tables, audit = mesbot.tables(), mesbot.audit()

    text = mesbot.refused(email, row.text.format(device=device))

    assert "has not been granted consent" in text and CONSENT_INSTRUCTIONS in text
    assert "Until then only `help` and `subscription …` work." in text
    assert (mesbot.tables(), mesbot.audit()) == (tables, audit)


def test_before_consent_help_works_and_a_global_admin_can_set_up_the_subscription(mesbot: Mesbot) -> None:
    mesbot.withdraw_consent()
    for email in (ADMIN, ANALYST, ALICE, NOBODY):
        assert mesbot.ask(email, "help")[0] == 0

    assert mesbot.data(ADMIN, "subscription")["subscription"]["consent"] == {
        "granted": False,
        "by": None,
        "at": None,
    }
    changed = mesbot.data(ADMIN, f"subscription set tenant {NEW_GUID}")
    assert changed["subscription"]["tenant_id"] == NEW_GUID


def test_only_a_global_administrator_can_grant_consent(mesbot: Mesbot) -> None:
    mesbot.withdraw_consent()
    for email in (ANALYST, ALICE):
        assert "Only a directory global administrator can grant consent" in mesbot.refused(
            email, "subscription consent"
        )
    assert not mesbot.data(ADMIN, "subscription")["subscription"]["consent"]["granted"]

    consent = mesbot.data(ADMIN, "subscription consent")["subscription"]["consent"]

    assert consent["granted"] is True and consent["by"] == ADMIN
    assert mesbot.audit()[-1] == (ADMIN, "subscription.consent", "applied")
    assert mesbot.ask(ANALYST, "risk list")[0] == 0
    assert mesbot.ask(ALICE, "status me")[0] == 0


def test_full_access_without_being_a_global_administrator_cannot_grant_consent(mesbot: Mesbot) -> None:
    mesbot.withdraw_consent()
    analysts = mesbot.data(ADMIN, "subscription")["subscription"]["restricted_access_group"]["id"]
    mesbot.data(ADMIN, f"subscription set full-group {analysts}")  # analyst now has full access
    assert mesbot.data(ANALYST, "subscription")["subscription"]["full_access_group"]["name"] == (
        "Lookout Analysts"
    )

    text = mesbot.refused(ANALYST, "subscription consent")

    assert "Only a directory global administrator can grant consent; you are not one." in text
    assert not mesbot.data(ANALYST, "subscription")["subscription"]["consent"]["granted"]
    assert mesbot.audit()[-1] == (ANALYST, "subscription.consent", "denied")


# ------------------------------------------------------------------------------- risk and policy


def test_risk_set_previews_first_and_applies_with_yes(mesbot: Mesbot) -> None:
    device = alice_trojan_device(mesbot)
    before = mesbot.data(ADMIN, "risk list")

    shown = mesbot.ask(ADMIN, "risk set trojan LOW")[1]

    assert "Nothing has changed yet. To apply: `risk set TROJAN low --yes`" in shown["text"]
    assert shown["data"]["preview"]["newly_compliant"] >= 1  # alice's blocked phone
    assert mesbot.data(ADMIN, "risk list") == before
    assert mesbot.data(ADMIN, f"status {device}")["devices"][0]["compliance"] == "noncompliant"

    done = mesbot.data(ADMIN, "risk set TROJAN low --yes")

    assert done == {"applied": True, "preview": shown["data"]["preview"]}
    trojan = next(c for c in mesbot.data(ADMIN, "risk list")["classifications"] if c["name"] == "TROJAN")
    assert (trojan["risk"], trojan["default_risk"]) == ("low", "high")
    assert mesbot.data(ADMIN, f"status {device}")["devices"][0]["compliance"] == "compliant"
    [entry] = mesbot.data(ADMIN, "audit 1")["entries"]
    assert (entry["actor"], entry["action"], entry["before"]) == (ADMIN, "risk.set", {"TROJAN": "high"})
    assert entry["after"]["TROJAN"] == "low"


@pytest.mark.parametrize("flag", ["--yes", "-y", "--YES"])
def test_the_confirm_flag_reaches_the_grammar_from_the_command_line(mesbot: Mesbot, flag: str) -> None:
    assert mesbot.data(ADMIN, f"risk set ROOT_JAILBREAK medium {flag}")["applied"] is True


def test_risk_reset_all_previews_then_restores_every_default(mesbot: Mesbot) -> None:
    mesbot.data(ADMIN, "risk set TROJAN low --yes")
    mesbot.data(ADMIN, "risk set VPN_NOT_ENABLED high --yes")
    changed = mesbot.data(ADMIN, "risk list")

    shown = mesbot.ask(ADMIN, "risk reset all")[1]

    assert "2 classifications back to their defaults" in shown["text"]
    assert mesbot.data(ADMIN, "risk list") == changed

    assert mesbot.data(ADMIN, "risk reset all --yes")["applied"] is True
    rows = mesbot.data(ADMIN, "risk list")["classifications"]
    assert all(row["risk"] == row["default_risk"] for row in rows)
    again = mesbot.ask(ADMIN, "risk reset all --yes")[1]
    assert again["text"].startswith("Nothing to change") and again["data"]["applied"] is False


def test_policy_set_previews_then_applies_in_intune_terms(mesbot: Mesbot) -> None:
    assert mesbot.data(ANALYST, "policy")["policy"] == {
        "noncompliant_at": "high",
        "intune_threat_level": "medium",
    }

    shown = mesbot.data(ADMIN, "policy set medium")
    assert shown["policy"] == {"noncompliant_at": "high", "intune_threat_level": "medium"}
    assert mesbot.data(ANALYST, "policy")["policy"]["noncompliant_at"] == "high"

    done = mesbot.data(ADMIN, "policy set medium --yes")

    assert done["applied"] is True and done["preview"] == shown["preview"]
    assert mesbot.data(ANALYST, "policy")["policy"] == {
        "noncompliant_at": "medium",
        "intune_threat_level": "low",
    }
    assert mesbot.audit()[-1] == (ADMIN, "policy.set", "applied")


# ----------------------------------------------------------------------------- settings refused

REFUSED_SETTINGS = [
    ("connector set heartbeat 0", ["Heartbeat frequency", "from 5 to 1440", "got 0"]),
    ("connector set heartbeat -5", ["Heartbeat frequency", "from 5 to 1440", "got -5"]),
    ("connector set heartbeat 100000", ["Heartbeat frequency", "from 5 to 1440", "got 100000"]),
    ("connector set error-email ops-at-contoso", ["Error-report e-mail must be an e-mail address"]),
    (
        'connector groups add "mobile users"',
        ['no group named "mobile users"', 'did you mean "Mobile Users"?'],
    ),
    ('connector groups add "Mobile Users"', ['"Mobile Users" is already an enrollment group']),
    ('connector groups add "Night Shift"', ['There is no group named "Night Shift" in the directory']),
    (
        'connector groups remove "mobile users"',
        ["is not an enrollment group", 'did you mean "Mobile Users"?'],
    ),
    ("connector sync device sometimes", ["Say `on` or `off`; got `sometimes`"]),
    ("enrollment settings disconnected-days 0", ["Disconnected status", "from 1 to 90", "got 0"]),
    ("enrollment settings disconnected-days 91", ["Disconnected status", "from 1 to 90", "got 91"]),
    ("enrollment settings disconnected-days x", ["Disconnected status", "from 1 to 90", "got `x`"]),
    ('enrollment group "mobile users"', ['did you mean "Mobile Users"?']),
    ("subscription set tenant not-a-guid", ["Tenant directory ID must be a GUID like", "got `not-a-guid`"]),
    ("subscription set full-group none", ["Full-access group object ID is required and cannot be `none`"]),
    ("subscription set restricted-group 1234", ["Restricted-access group object ID must be a GUID"]),
    ("policy set none", ["Policy level must be one of high, medium, low; got `none`"]),
    ("risk set TROJAN severe", ["Risk level must be one of high, medium, low or none"]),
    ("risk set TROJANS low --yes", ["Unknown classification `TROJANS`", "Did you mean `TROJAN`?"]),
    ("notify quiet 25:00-07:00", ["Quiet hours start must be a 24-hour time HH:MM"]),
    ("notify threat-critical on", ["Unknown category `threat-critical`"]),
    ("audit 0", ["N must be a whole number from 1 to 200"]),
    ("audit 201", ["N must be a whole number from 1 to 200"]),
    ("status 00000000-0000-0000-0000-000000000000", ["No device has the ID", "look up its owner by e-mail"]),
    ("frobnicate --now", ["Unknown command `frobnicate`", "Try `help`"]),
]


@pytest.mark.parametrize(("text", "fragments"), REFUSED_SETTINGS, ids=[t for t, _ in REFUSED_SETTINGS])
def test_a_bad_setting_is_refused_naming_the_field_and_changes_nothing(
    mesbot: Mesbot, text: str, fragments: list[str]
) -> None:
    tables, audit = mesbot.tables(), mesbot.audit()

    refusal = mesbot.refused(ADMIN, text)

    for fragment in fragments:
        assert fragment in refusal
    assert (mesbot.tables(), mesbot.audit()) == (tables, audit)


# ---------------------------------------------------------------------------- settings applied


def test_connector_settings_change_and_show_in_the_connector(mesbot: Mesbot) -> None:
    assert mesbot.data(ADMIN, "connector set heartbeat 15")["connector"]["heartbeat_minutes"] == 15
    email = mesbot.data(ADMIN, "connector set error-email SecOps@Contoso.Example")["connector"]["error_email"]
    assert email == "secops@contoso.example"

    added = mesbot.data(ADMIN, 'connector groups add "Sales"')["connector"]["enrollment_groups"]
    assert added == ["Lookout Pilot", "Mobile Users", "Sales"]
    assert 'did you mean "Sales"?' in mesbot.refused(ADMIN, "connector groups remove sales")
    removed = mesbot.data(ADMIN, "connector groups remove Sales")["connector"]["enrollment_groups"]
    assert removed == ["Lookout Pilot", "Mobile Users"]

    off = mesbot.ask(ADMIN, "connector sync device off")[1]
    assert "Lookout needs both device and threat status sync on" in off["text"]
    assert off["data"]["connector"]["device_status_sync"] is False
    assert [e["fingerprint"] for e in mesbot.data(ANALYST, "connector")["connector"]["errors"]] == [
        "sync-off:device"
    ]
    back = mesbot.data(ADMIN, "connector sync device on")["connector"]
    assert back["device_status_sync"] is True and back["errors"] == []


def test_disconnected_days_applies_at_once_to_enrollment(mesbot: Mesbot) -> None:
    def disconnected() -> int:
        return int(mesbot.data(ANALYST, "enrollment")["counts"]["disconnected"])

    at_30 = disconnected()
    assert mesbot.data(ADMIN, "enrollment settings disconnected-days 1") == {
        "enrollment_settings": {"disconnected_days": 1}
    }
    assert disconnected() > at_30
    assert mesbot.data(ANALYST, "enrollment settings")["enrollment_settings"]["disconnected_days"] == 1


def test_subscription_groups_decide_who_has_access(mesbot: Mesbot) -> None:
    braced = "{" + NEW_GUID.upper() + "}"
    assert mesbot.data(ADMIN, f"subscription set tenant {braced}")["subscription"]["tenant_id"] == NEW_GUID

    cleared = mesbot.data(ADMIN, "subscription set restricted-group none")["subscription"]

    assert cleared["restricted_access_group"] is None
    assert "You have no Lookout console access" in mesbot.refused(ANALYST, "risk list")


def test_notify_changes_only_the_asking_users_own_settings(mesbot: Mesbot) -> None:
    mine = mesbot.data(ANALYST, "notify threat-medium on email")
    assert mine["preferences"]["threat-medium"] == {"email": True, "slack": False}
    assert mesbot.data(ANALYST, "notify digest on")["preferences"]["digest"] == {"email": True, "slack": True}
    assert mesbot.data(ANALYST, "notify quiet 22:00-07:00")["quiet_hours"] == "22:00-07:00 UTC"

    assert mesbot.data(ANALYST, "notify quiet off")["quiet_hours"] is None
    off = mesbot.data(ANALYST, "notify all off")["preferences"]
    assert all(channels == {"email": False, "slack": False} for channels in off.values())
    assert mesbot.data(ADMIN, "notify")["preferences"]["threat-high"] == {"email": True, "slack": True}


def test_audit_lists_the_newest_entries_first(mesbot: Mesbot) -> None:
    mesbot.data(ADMIN, "connector set heartbeat 15")
    mesbot.refused(ANALYST, "connector set heartbeat 20")

    newest = mesbot.data(ADMIN, "audit 2")["entries"]

    # one name for the command, whether it was applied or refused
    assert [(e["actor"], e["action"], e["outcome"]) for e in newest] == [
        (ANALYST, "connector.heartbeat_minutes", "denied"),
        (ADMIN, "connector.heartbeat_minutes", "applied"),
    ]
    assert newest[1]["before"] == {"heartbeat_minutes": 60}
    assert newest[1]["after"] == {"heartbeat_minutes": 15}
    assert newest[0]["after"] == {"command": "connector set heartbeat 20"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("connector set heartbeat 30", "connector heartbeat: 60 → 30 minutes"),
        ("notify threat-medium on email", "notify threat-medium email: off → on"),
        ("notify quiet 22:00-07:00", "notify quiet hours: off → 22:00-07:00"),
        ("connector sync device off", "connector device status sync: on → off"),
        ('connector groups remove "Lookout Pilot"', 'connector enrollment groups: removed "Lookout Pilot"'),
        ("enrollment settings disconnected-days 14", "disconnected status: 30 → 14 days"),
        ("risk set TROJAN medium --yes", "risk: TROJAN high → medium ("),
        ("policy set medium --yes", "risk: policy noncompliant at high → medium ("),
    ],
)
def test_audit_shows_each_change_in_words(mesbot: Mesbot, change: str, words: str) -> None:
    mesbot.data(ADMIN, change)

    code, reply = mesbot.ask(ADMIN, "audit 1")

    assert code == 0
    first, line = reply["text"].split("\n")
    assert first == "Last entry:"
    assert words in line and line.startswith("• ") and ADMIN in line
    assert "{" not in line and "None" not in line and "'" not in line  # no Python reprs
    assert reply["data"]["entries"][0]["before"] is not None  # JSON keeps the structure


def test_audit_shows_a_refused_attempt_as_typed(mesbot: Mesbot) -> None:
    mesbot.refused(ANALYST, "risk set TROJAN low --yes")

    line = mesbot.ask(ADMIN, "audit 1")[1]["text"].split("\n")[1]

    assert f"{ANALYST} (DENIED): risk.set: refused `risk set TROJAN low --yes`" in line


# ---------------------------------------------------------------------------------- status, users


def test_status_answers_why_a_phone_is_blocked(mesbot: Mesbot) -> None:
    device = alice_trojan_device(mesbot)
    own = mesbot.data(ALICE, "status me")["devices"]
    blocked = next(d for d in own if d["id"] == device)

    assert blocked["owner"] == ALICE and blocked["compliance"] == "noncompliant"
    assert [(t["classification"], t["risk"], t["app"]) for t in blocked["open_threats"]] == [
        ("TROJAN", "high", "Flashlight Pro")
    ]
    assert mesbot.data(ANALYST, f"status {ALICE}")["devices"] == own
    assert mesbot.data(ADMIN, f"status {device.upper()}")["devices"] == [blocked]
    assert "cannot look up other people's devices" in mesbot.refused(ALICE, f"status {ADMIN}")


@pytest.mark.parametrize("text", ["status me", "risk set TROJAN low --yes", "notify digest on"])
def test_an_unknown_user_is_refused_changes_nothing_and_an_attempted_change_is_audited(
    mesbot: Mesbot, text: str
) -> None:
    tables, audit = mesbot.tables(), mesbot.audit()

    refusal = mesbot.refused(NOBODY, text)

    assert f"`{NOBODY}` is not a user in the directory" in refusal and "Check the address" in refusal
    assert mesbot.tables() == tables
    attempted = {"risk set TROJAN low --yes": "risk.set", "notify digest on": "notify"}.get(text)
    assert mesbot.audit() == audit + ([(NOBODY, attempted, "denied")] if attempted else [])


@pytest.mark.parametrize(
    ("one_argument", "words"),
    [
        ("risk list", ["risk", "list"]),
        ('enrollment group "Mobile Users"', ["enrollment", "group", "Mobile Users"]),
        ("connector", ["connector"]),
    ],
)
def test_one_argument_is_the_command_line_as_typed(
    mesbot: Mesbot, one_argument: str, words: list[str]
) -> None:
    whole = mesbot("ask", "--as", ADMIN, "--json", one_argument)
    split = mesbot("ask", "--as", ADMIN, "--json", *words)

    assert whole.exit_code == 0, whole.stdout
    assert json.loads(whole.stdout) == json.loads(split.stdout)


def test_plain_output_is_the_reply_text_with_the_same_exit_code(mesbot: Mesbot) -> None:
    shown = mesbot("ask", "--as", ANALYST, "policy")
    assert shown.exit_code == 0 and shown.stdout.startswith("Devices are noncompliant with an open threat")

    refused = mesbot("ask", "--as", ANALYST, "policy", "set", "low", "--yes")
    assert refused.exit_code == 1
    assert refused.stdout.startswith("You have restricted (read-only) access")


def test_ask_on_a_store_that_is_not_set_up_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = Mesbot(tmp_path / "empty.db")("ask", "--as", ADMIN, "status", "me")

    assert result.exit_code == 1
    assert "The store is not set up or is out of date: run `mesbot db upgrade`" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------------------------- demo threat


def _apps(mesbot: Mesbot, device: str) -> list[str]:
    [found] = mesbot.data(ADMIN, f"status {device}")["devices"]
    return sorted(t["app"] for t in found["open_threats"] if t["classification"] == "SPYWARE")


def test_demo_threat_injects_open_threats_numbered_with_count(mesbot: Mesbot) -> None:
    device = alice_trojan_device(mesbot)

    one = mesbot(*shlex.split(f'demo threat --device {device} --classification spyware --app "Free VPN"'))
    many = mesbot(
        *shlex.split(f"demo threat --device {device} --classification SPYWARE --app 'Free VPN' --count 3")
    )

    assert one.exit_code == 0 and one.stdout.startswith(f"Injected 1 OPEN threat on {device}")
    assert many.exit_code == 0 and many.stdout.startswith(f"Injected 3 OPEN threats on {device}")
    assert _apps(mesbot, device) == ["Free VPN", "Free VPN #1", "Free VPN #2", "Free VPN #3"]


@pytest.mark.parametrize(
    ("device", "classification", "extra", "message"),
    [
        ("{device}", "TROJANZ", [], "Unknown classification `TROJANZ`"),
        ("00000000-0000-0000-0000-000000000000", "TROJAN", [], "No device has the ID"),
        ("{pending}", "TROJAN", [], "only activated devices report threats"),
        ("{device}", "TROJAN", ["--count", "0"], "--count must be from 1 to 10,000; got 0"),
    ],
)
def test_demo_threat_refuses_bad_input_and_injects_nothing(
    mesbot: Mesbot, device: str, classification: str, extra: list[str], message: str
) -> None:
    pending = mesbot.data(ADMIN, "enrollment pending")["devices"][0]["id"]
    target = device.format(device=alice_trojan_device(mesbot), pending=pending)
    tables = mesbot.tables()

    result = mesbot("demo", "threat", "--device", target, "--classification", classification, *extra)

    assert result.exit_code == 1 and message in result.stderr
    assert mesbot.tables() == tables


# ------------------------------------------------------------------------------------------- shell


@pytest.fixture
def shell_console(mesbot: Mesbot) -> Iterator[Console]:
    store = Store(mesbot.url)
    yield Console(store, SystemClock())
    store.dispose()


def test_shell_steps_switch_user_and_leave(
    shell_console: Console, capsys: pytest.CaptureFixture[str]
) -> None:
    def step(email: str | None, line: str) -> tuple[str | None, bool, str]:
        result = shell.step(shell_console, email, line)
        return (*result, capsys.readouterr().out)

    assert step(None, "status me") == (
        None,
        False,
        "Say who you are first: as EMAIL (e.g. as admin@contoso.example)\n",
    )
    assert step(None, "help")[2].startswith("mesbot: Lookout MES ↔ Intune. Commands:")
    assert step(None, "as") == (None, False, "Usage: as EMAIL\n")
    assert step(None, f"as {ALICE}") == (ALICE, False, f"Now acting as {ALICE}.\n")
    assert "Open TROJAN threat at high risk" in step(ALICE, "status me")[2]
    assert "You have no Lookout console access" in step(ALICE, "risk list")[2]
    assert step(ALICE, f"AS {ANALYST}")[:2] == (ANALYST, False)
    assert "TROJAN: high (default high)" in step(ANALYST, "risk list")[2]
    assert step(ANALYST, "   ") == (ANALYST, False, "")
    assert step(ANALYST, "exit")[:2] == (ANALYST, True)
    assert step(ANALYST, "QUIT")[:2] == (ANALYST, True)


def test_shell_command_runs_lines_until_exit(
    mesbot: Mesbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shell, "HISTORY", tmp_path / "history")
    lines = ["risk list", f"as {ALICE}", "risk set TROJAN low --yes", "exit", "risk list"]

    result = mesbot("shell", "--as", ANALYST, stdin="\n".join(lines) + "\n")

    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("mesbot shell:") and f"{ANALYST}> " in out and f"{ALICE}> " in out
    assert out.count("TROJAN: high (default high)") == 1  # the line after `exit` never ran
    assert "You have no Lookout console access, so you cannot change risk levels" in out
    assert mesbot.audit()[-1] == (ALICE, "risk.set", "denied")


def test_shell_ends_at_the_end_of_input(
    mesbot: Mesbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shell, "HISTORY", tmp_path / "history")

    result = mesbot("shell", stdin="status me\nhelp\n")

    assert result.exit_code == 0
    assert "(nobody)> Say who you are first" in result.stdout
    assert "mesbot: Lookout MES ↔ Intune. Commands:" in result.stdout
