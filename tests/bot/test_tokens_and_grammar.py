"""The command text of DESIGN.md §5: splitting into words, parsing every grammar row, refusing malformed
text with the field and the allowed values, and hostile text never crashing or changing anything."""

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from bot import commands as c
from bot.console import Console
from bot.grammar import parse
from bot.reply import Reply
from bot.tokens import MAX_LENGTH, split
from integration.errors import InvalidInput
from integration.levels import RiskLevel
from integration.preferences import CATEGORIES
from storage.engine import Store
from storage.models import (
    AuditEntry,
    Classification,
    CompliancePolicy,
    Connector,
    ConnectorError,
    Device,
    EnrollmentGroup,
    EnrollmentSettings,
    NotificationPreference,
    QuietHours,
    Subscription,
    Threat,
)
from tests.integration.test_text import FORBIDDEN

ADMIN, ANALYST, ALICE = "admin@contoso.example", "analyst@contoso.example", "alice@contoso.example"
GUID = "6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e21"
H, M, L, N = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW, RiskLevel.NONE

# ---------------------------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        ("   \t\n ", []),
        ("risk list", ["risk", "list"]),
        ("  risk \t set\nTROJAN   low ", ["risk", "set", "TROJAN", "low"]),
        ('connector groups add "Mobile Users"', ["connector", "groups", "add", "Mobile Users"]),
        ("connector groups add 'Mobile Users'", ["connector", "groups", "add", "Mobile Users"]),
        ("connector groups add “Mobile Users”", ["connector", "groups", "add", "Mobile Users"]),
        ("connector groups add ‘Mobile Users’", ["connector", "groups", "add", "Mobile Users"]),
        ("connector groups add „Mobile Users“", ["connector", "groups", "add", "Mobile Users"]),
        ("connector groups add ”Mobile Users”", ["connector", "groups", "add", "Mobile Users"]),
        ('enrollment group "  two  spaces  "', ["enrollment", "group", "  two  spaces  "]),
        ('add "O\'Brien Team"', ["add", "O'Brien Team"]),
        ("add 'Say \"hi\"'", ["add", 'Say "hi"']),
        ('add ""', ["add", ""]),
        ('group"Mobile Users"x', ['group"Mobile', 'Users"x']),  # quotes open only at a word's start
        ("status alice's phone", ["status", "alice's", "phone"]),
        ("status\u00a0me", ["status", "me"]),
        ("<!channel> \x00", ["<!channel>", "\x00"]),
    ],
    ids=repr,
)
def test_split_keeps_quoted_spaces(text: str, words: list[str]) -> None:
    assert split(text) == words


@pytest.mark.parametrize(
    ("text", "closing"),
    [
        ('connector groups add "Mobile Users', '"'),
        ("connector groups add 'Mobile Users", "'"),
        ("connector groups add “Mobile Users", "”"),
        ("connector groups add ‘Mobile", "’"),
        ("'alice", "'"),
    ],
)
def test_an_unclosed_quote_is_refused_naming_the_missing_quote(text: str, closing: str) -> None:
    with pytest.raises(InvalidInput, match="quote is not closed") as refused:
        split(text)
    assert f"add the closing {closing}" in str(refused.value)


def test_text_at_the_length_limit_is_split() -> None:
    assert split("a" * MAX_LENGTH) == ["a" * MAX_LENGTH]


@pytest.mark.parametrize("length", [MAX_LENGTH + 1, 10_000])
def test_text_over_the_length_limit_is_refused_with_both_lengths(length: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        split("x" * length)
    assert str(refused.value) == f"That command is {length:,} characters long; the limit is 2,000."


# --------------------------------------------------------------------------------------------- grammar

PARSED = [
    # help
    ("", c.Help()),
    ("help", c.Help()),
    ("HELP Risk", c.Help(topic="risk")),
    ("help nonsense", c.Help()),
    # status
    ("status me", c.Status("me")),
    ("Status ME", c.Status("me")),
    ("status Alice@Contoso.Example", c.Status(ALICE)),
    (f"status {GUID.upper()}", c.Status(GUID)),
    # enrollment
    ("enrollment", c.Enrollment()),
    ("enrollment PENDING", c.Enrollment(state="pending")),
    ("enrollment disconnected", c.Enrollment(state="disconnected")),
    ('enrollment group "Mobile Users"', c.Enrollment(group="Mobile Users")),
    ("enrollment pending group “Lookout Pilot”", c.Enrollment(state="pending", group="Lookout Pilot")),
    ("enrollment settings", c.EnrollmentSettingsShow()),
    ("enrollment settings disconnected-days 45", c.EnrollmentSettingsSet(45)),
    ("enrollment Settings Disconnected-Days 1", c.EnrollmentSettingsSet(1)),
    ("enrollment settings disconnected-days 90", c.EnrollmentSettingsSet(90)),
    # risk
    ("risk", c.RiskList()),
    ("risk list", c.RiskList()),
    ("risk set trojan HIGH", c.RiskSet("TROJAN", H)),
    ("risk set root-jailbreak none --yes", c.RiskSet("ROOT_JAILBREAK", N, confirmed=True)),
    ("risk set OUT_OF_DATE_OS low -y", c.RiskSet("OUT_OF_DATE_OS", L, confirmed=True)),
    ("risk --YES set TROJAN medium", c.RiskSet("TROJAN", M, confirmed=True)),
    ("risk reset TROJAN", c.RiskReset("TROJAN")),
    ("risk reset all --yes", c.RiskReset(None, confirmed=True)),
    ("risk reset ALL", c.RiskReset(None)),
    # policy
    ("policy", c.PolicyShow()),
    ("policy set medium", c.PolicySet(M)),
    ("policy set LOW --yes", c.PolicySet(L, confirmed=True)),
    # connector
    ("connector", c.ConnectorShow()),
    ("connector set heartbeat 15", c.ConnectorSet("heartbeat_minutes", 15)),
    ("connector set heartbeat 5", c.ConnectorSet("heartbeat_minutes", 5)),
    ("connector set heartbeat 1440", c.ConnectorSet("heartbeat_minutes", 1440)),
    ("connector set error-email Ops@Contoso.Example", c.ConnectorSet("error_email", "ops@contoso.example")),
    ('connector groups add "Mobile Users"', c.ConnectorGroup(add=True, name="Mobile Users")),
    ("connector groups REMOVE Sales", c.ConnectorGroup(add=False, name="Sales")),
    ("connector sync device off", c.ConnectorSync("device", on=False)),
    ("connector sync THREAT On", c.ConnectorSync("threat", on=True)),
    # subscription
    ("subscription", c.SubscriptionShow()),
    (f"subscription set tenant {GUID}", c.SubscriptionSet("tenant", GUID)),
    (f"subscription set Full-Group {GUID}", c.SubscriptionSet("full-group", GUID)),
    ("subscription set restricted-group none", c.SubscriptionSet("restricted-group", "none")),
    ("subscription consent", c.SubscriptionConsent()),
    # notify
    ("notify", c.NotifyShow()),
    ("notify threat-high on", c.NotifySet(("threat-high",), ("email", "slack"), on=True)),
    ("notify Digest on slack", c.NotifySet(("digest",), ("slack",), on=True)),
    ("notify connector-errors off both", c.NotifySet(("connector-errors",), ("email", "slack"), on=False)),
    ("notify all off email", c.NotifySet(CATEGORIES, ("email",), on=False)),
    ("notify quiet 22:00-07:00", c.NotifyQuiet(("22:00", "07:00"))),
    ("notify quiet OFF", c.NotifyQuiet(None)),
    ("notify quiet 22:00-07:00 Europe/Stockholm", c.NotifyQuiet(("22:00", "07:00"), "Europe/Stockholm")),
    ("notify test", c.NotifyTest()),
    # audit
    ("audit", c.Audit(10)),
    ("audit 1", c.Audit(1)),
    ("audit 200", c.Audit(200)),
    ("audit 007", c.Audit(7)),
]


@pytest.mark.parametrize(("text", "command"), PARSED, ids=[text or "(empty)" for text, _ in PARSED])
def test_every_grammar_row_parses_into_its_command(text: str, command: c.Command) -> None:
    assert parse(text) == command


MALFORMED = [
    ("frobnicate", ["Unknown command `frobnicate`", "Commands: help, status, enrollment", "Try `help`"]),
    ("<!channel>", ["Unknown command `<!channel>`"]),
    ("\x00\x1b[2J", ["Unknown command `␀␛[2J`"]),
    ("status", ["Say whose devices: `me`, an e-mail address or a device ID", "Usage: status me"]),
    ("status me you", ["Say whose devices", "Usage: status me"]),
    ("status not/an/id", ["`not/an/id` is neither an e-mail address nor a device ID", "Usage: status"]),
    ("status bad@", ["E-mail address must be an e-mail address like `name@example.com`; got `bad@`"]),
    ("enrollment settings frequency 5", ["Unknown enrollment setting", "Usage: enrollment"]),
    ("enrollment settings disconnected-days", ["Unknown enrollment setting"]),
    ("enrollment settings disconnected-days 0", ["Disconnected status", "days from 1 to 90", "got 0"]),
    ("enrollment settings disconnected-days 91", ["Disconnected status", "days from 1 to 90", "got 91"]),
    ("enrollment settings disconnected-days -5", ["Disconnected status", "days from 1 to 90", "got -5"]),
    ("enrollment settings disconnected-days x", ["Disconnected status", "days from 1 to 90", "got `x`"]),
    ("enrollment settings disconnected-days 4.5", ["Disconnected status", "got `4.5`"]),
    ("enrollment group", ["Give one group name after `group`", "Usage: enrollment"]),
    ("enrollment stale", ["Unexpected `stale`", "Usage: enrollment"]),
    ('enrollment group ""', ["Group name must be 1–256 printable characters", 'e.g. "Mobile Users"']),
    ('enrollment group "tab\there"', ["Group name must be 1–256 printable characters", "got `tab␉here`"]),
    ("risk set TROJAN severe", ["Risk level must be one of high, medium, low or none; got `severe`"]),
    ("risk set TROJANN high", ["Unknown classification `TROJANN`", "Did you mean `TROJAN`?", "risk list"]),
    ("risk reset NOPE", ["Unknown classification `NOPE`", "`risk list` shows all of them"]),
    ("risk set TROJAN", ["That is not a risk command", "Usage: risk list"]),
    ("risk reset", ["That is not a risk command", "risk reset CLASSIFICATION|all [--yes]"]),
    ("risk list --yes", ["That is not a risk command"]),
    ("risk set TROJAN low --force", ["Unknown option `--force`; the only option is `--yes`"]),
    ("policy set none", ["Policy level must be one of high, medium, low; got `none`"]),
    ("policy set", ["That is not a policy command", "Usage: policy"]),
    ("policy --yes", ["That is not a policy command"]),
    ("connector set heartbeat 0", ["Heartbeat frequency", "minutes from 5 to 1440", "got 0"]),
    ("connector set heartbeat 4", ["Heartbeat frequency", "minutes from 5 to 1440", "got 4"]),
    ("connector set heartbeat 1441", ["Heartbeat frequency", "minutes from 5 to 1440", "got 1441"]),
    ("connector set heartbeat -60", ["Heartbeat frequency", "minutes from 5 to 1440", "got -60"]),
    ("connector set heartbeat 99999999999", ["Heartbeat frequency", "got `99999999999`"]),
    ("connector set heartbeat hourly", ["Heartbeat frequency", "got `hourly`"]),
    ("connector set error-email nobody", ["Error-report e-mail must be an e-mail address", "got `nobody`"]),
    ('connector set error-email "a@b.example, c@d.example"', ["Error-report e-mail must be an e-mail"]),
    ('connector set error-email "ops@x.example\nBcc: evil@y.example"', ["Error-report e-mail must be"]),
    ("connector set error-email <ops@x.example>", ["Error-report e-mail must be an e-mail address"]),
    ("connector set colour blue", ["Unknown connector setting `colour`", "Usage: connector"]),
    ("connector groups add", ["That is not a connector command", 'connector groups add|remove "NAME"']),
    ("connector groups rename Sales", ["That is not a connector command"]),
    ("connector sync device maybe", ["Say `on` or `off`; got `maybe`", "Usage: connector"]),
    ("connector sync battery on", ["That is not a connector command"]),
    ('connector groups add ""', ["Group name must be 1–256 printable characters"]),
    ("connector groups add " + "x" * 257, ["Group name must be 1–256 printable characters"]),
    ("subscription set tenant", ["That is not a subscription command", "Usage: subscription"]),
    (f"subscription set owner {GUID}", ["That is not a subscription command"]),
    ("subscription consent now", ["That is not a subscription command"]),
    (
        "notify threat-critical on",
        ["Unknown category `threat-critical`; categories: " + ", ".join(CATEGORIES)],
    ),
    ("notify digest on pigeon", ["Channel must be email, slack or both; got `pigeon`"]),
    ("notify digest sometimes", ["Say `on` or `off`; got `sometimes`", "Usage: notify"]),
    ("notify quiet 22:00", ["Quiet hours look like 22:00-07:00, then a time zone", "Usage: notify"]),
    ("notify quiet 25:00-07:00", ["Quiet hours start must be a 24-hour time HH:MM", "got `25:00`"]),
    ("notify quiet 22:00-7:00", ["Quiet hours end must be a 24-hour time HH:MM", "got `7:00`"]),
    ("notify quiet 22:00-07:00 Mars/Olympus", ["Time zone must be an IANA name", "got `Mars/Olympus`"]),
    ("notify quiet 22:00-07:00 ../../etc/passwd", ["Time zone must be an IANA name"]),
    ("notify quiet 22:00-07:00 UTC extra", ["That is not a notify command"]),
    ("notify quiet 22:00-22:00", ["Quiet hours must start and end at different times"]),
    ("notify test now", ["Usage: notify", "notify test"]),
    ("notify quiet ２２:００-07:00", ["Quiet hours start must be a 24-hour time"]),
    ("notify digest on email now", ["That is not a notify command"]),
    ("notify quiet", ["That is not a notify command"]),
    ("audit 0", ["N must be a whole number from 1 to 200", "Usage: audit [N]"]),
    ("audit 201", ["N must be a whole number from 1 to 200"]),
    ("audit ten", ["N must be a whole number from 1 to 200"]),
    ("audit 5 6", ["N must be a whole number from 1 to 200"]),
    ("audit ５", ["N must be a whole number from 1 to 200"]),
    ("audit -5", ["N must be a whole number from 1 to 200"]),
    ("audit 0000011234", ["N must be a whole number from 1 to 200"]),
    ("audit " + "9" * 1_990, ["N must be a whole number from 1 to 200"]),
]


@pytest.mark.parametrize(("text", "fragments"), MALFORMED, ids=[repr(text[:40]) for text, _ in MALFORMED])
def test_malformed_text_is_refused_naming_the_field_and_what_is_allowed(
    text: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(text)
    for fragment in fragments:
        assert fragment in str(refused.value)


def test_quiet_hours_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Quiet hours end must be"):
        parse('notify quiet "22:00-07:00\n"')


def test_an_unknown_classification_is_quoted_back_without_control_characters() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse('risk set "\x1b]0;owned\x07TROJAN" high')
    assert str(refused.value).isprintable()


# ------------------------------------------------------------------------------- hostile text, end to end

# Everything a console command can change; the audit log is compared on its own (a refused change
# by a user without permission leaves exactly one `denied` entry, by design).
STATE_TABLES = [
    Subscription,
    Connector,
    EnrollmentGroup,
    EnrollmentSettings,
    CompliancePolicy,
    Classification,
    NotificationPreference,
    QuietHours,
    ConnectorError,
    Device,
    Threat,
]
VOCABULARY = [
    *("help", "status", "me", "enrollment", "pending", "disconnected", "group", "settings"),
    *("disconnected-days", "risk", "list", "set", "reset", "all", "policy", "connector", "heartbeat"),
    *("error-email", "groups", "add", "remove", "sync", "device", "threat", "on", "off", "subscription"),
    *("tenant", "full-group", "restricted-group", "consent", "notify", "quiet", "email", "slack", "both"),
    *("audit", "--yes", "-y", "high", "medium", "low", "none", "TROJAN", "root-jailbreak", "threat-high"),
    *("digest", "0", "5", "30", "91", "22:00-07:00"),
    '"Mobile Users"',
    "“mobile users”",
    "'Lookout Pilot'",
    "<@U123|admin>",
    ALICE,
    "not-a-guid",
]


def _snapshot(store: Store) -> tuple[dict[str, list[str]], list[tuple[Any, ...]]]:
    with store.engine.connect() as connection:
        state = {
            model.__name__: sorted(repr(tuple(row)) for row in connection.execute(select(model)).all())
            for model in STATE_TABLES
        }
        audit = connection.execute(
            select(AuditEntry.id, AuditEntry.actor, AuditEntry.action, AuditEntry.outcome).order_by(
                col(AuditEntry.id)
            )
        ).all()
    return state, [tuple(row) for row in audit]


def _change(text: str) -> str | None:
    """The audit action `text` asks for when it is a change (e.g. `risk.set`), else None."""
    try:
        command = parse(text)
    except InvalidInput:
        return None
    return command.action


HOSTILE = [
    "\x00",
    "a\x00b",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\r\nFAKE: Applied",
    "\x08\x7f\x85",
    "\u202e",
    "\u2066\u200f\u061c",
    "\u2028",
    "\r\n",
    "\ufeff",
    "<!channel>",
    "&lt;",
    "\\",
    "%s",
    "' OR 1=1 --",
]
a_word = st.one_of(st.sampled_from(VOCABULARY), st.sampled_from(HOSTILE), st.text(max_size=12))
quoted = st.tuples(st.sampled_from(['"', "“", "'", "‘", ""]), a_word, st.sampled_from(['"', "”", "'", ""]))
an_argument = st.one_of(a_word, quoted.map("".join))
command_like = st.builds(
    lambda verb, rest, sep: sep.join([verb, *rest]),
    st.sampled_from(
        ["help", "status", "enrollment", "risk", "policy", "connector", "subscription", "notify", "audit"]
    ),
    st.lists(an_argument, max_size=5),
    st.sampled_from([" ", "  ", "\t", "\n"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    email=st.one_of(st.sampled_from([ADMIN, ANALYST, ALICE]), st.text(max_size=40)),
    text=st.one_of(st.text(max_size=300), command_like),
)
@example(email=ADMIN, text="\x00")
@example(email=ADMIN, text="\x00" * 10_000)
@example(email=ANALYST, text="<!channel> " * 1_000)
@example(email=ALICE, text='risk set "<!channel>" high')
@example(email=ALICE, text="risk set TROJAN low --yes")
@example(email=ANALYST, text='connector groups add "<!here>"')
@example(email=ADMIN, text='connector groups add "mobile users"')
@example(email=ADMIN, text="subscription set tenant \x00")
@example(email=ALICE, text="subscription set tenant \x00")
@example(email=ADMIN, text='status "\x00@contoso.example"')
@example(email=ADMIN, text="status \u202egnp.exe")
@example(email=ADMIN, text="“unclosed")
@example(email=ADMIN, text="audit " + "9" * 1_990)
def test_any_text_gets_a_reply_and_a_refusal_changes_nothing(console: Console, email: str, text: str) -> None:
    before_state, before_audit = _snapshot(console.store)

    reply = console.run(email, text)

    assert isinstance(reply, Reply)
    assert reply.text
    assert not FORBIDDEN & set(reply.text.replace("\n", "")), reply.text  # hostile text quoted back visibly
    json.dumps(reply.as_json())  # what `--json` prints
    event("answered" if reply.ok else "refused")
    if reply.ok:
        return
    after_state, after_audit = _snapshot(console.store)
    assert after_state == before_state
    new = after_audit[len(before_audit) :]
    assert after_audit[: len(before_audit)] == before_audit
    if new:  # only a change refused for lack of permission is audited, once, as denied
        event("refused and audited as denied")
        change = _change(text)
        assert change is not None, new
        [(_id, actor, action, outcome)] = new
        assert (actor, outcome) == (email.lower(), "denied")
        assert action == change  # the name an applied change of this command gets


@pytest.mark.parametrize("email", ["a\x00b@contoso.example", "", " ", "<!channel>", "x" * 3_000])
def test_an_identity_that_is_no_address_is_refused_and_quoted_back_safely(
    console: Console, email: str
) -> None:
    reply = console.run(email, "status me")

    assert not reply.ok
    assert "e-mail address" in reply.text or "not a user in the directory" in reply.text
    assert reply.text.isprintable() and len(reply.text) < 300


def test_hostile_text_in_any_argument_changes_nothing(console: Console) -> None:
    """Every argument of every grammar row replaced by hostile text, as the one user who could change
    anything: always a reply, never a change (the substitutes are never valid values)."""
    before = _snapshot(console.store)
    for text, _ in PARSED:
        words = split(text)
        for position, hostile in itertools.product(range(1, len(words)), HOSTILE):
            attempt = " ".join(f'"{word}"' for word in [*words[:position], hostile, *words[position + 1 :]])
            try:
                reply = console.run(ADMIN, attempt)
            except Exception as error:
                pytest.fail(f"{attempt!r} raised {error!r}")
            assert isinstance(reply, Reply)
            assert reply.text
            assert not FORBIDDEN & set(reply.text.replace("\n", "")), reply.text
            json.dumps(reply.as_json())
    assert _snapshot(console.store) == before
