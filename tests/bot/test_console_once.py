"""The console's once-only keys, refusals of people it cannot name, and how it names actors in the
audit log — what the Slack front end relies on, checked without Slack."""

from sqlmodel import col, select

from bot.console import ALREADY_DONE, Console
from storage.models import AuditEntry, Claim

ADMIN, ANALYST = "admin@contoso.example", "analyst@contoso.example"


def _audit(console: Console) -> list[tuple[str, str, str]]:
    with console.store.read() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        return [(e.actor, e.action, e.outcome.value) for e in entries if e.action != "demo.seed"]


def _claimed(console: Console, key: str) -> bool:
    with console.store.read() as session:
        return session.get(Claim, key) is not None


def test_a_change_with_a_once_key_is_made_once(console: Console) -> None:
    first = console.run(ADMIN, "connector set heartbeat 45", once="k1")
    console.run(ADMIN, "connector set heartbeat 30")
    again = console.run(ADMIN, "connector set heartbeat 45", once="k1")

    assert first.ok and first.data["connector"]["heartbeat_minutes"] == 45
    assert (again.ok, again.text, again.command) == (True, ALREADY_DONE, "once")
    assert again.data == {"applied": False, "duplicate": True}
    assert console.run(ANALYST, "connector").data["connector"]["heartbeat_minutes"] == 30
    assert _claimed(console, "k1")


def test_a_refused_attempt_leaves_its_once_key_free(console: Console) -> None:
    refused = console.run(ANALYST, "connector set heartbeat 45", once="k2")

    assert not refused.ok and not _claimed(console, "k2")
    assert (
        console.run(ADMIN, "connector set heartbeat 45", once="k2").data["connector"]["heartbeat_minutes"]
        == 45
    )


def test_reads_ignore_once_keys(console: Console) -> None:
    for _ in range(2):
        assert console.run(ANALYST, "policy", once="k3").command == "policy"
    assert not _claimed(console, "k3")


def test_reads_only_tells_reads_from_changes(console: Console) -> None:
    assert console.reads_only("status me") and console.reads_only("no such command")
    assert not console.reads_only("connector set heartbeat 30")
    assert not console.reads_only("risk set TROJAN low")  # a preview runs where its change would


def test_refuse_audits_an_attempted_change_under_the_given_actor(console: Console) -> None:
    reply = console.refuse("slack:U123", "risk set TROJAN none --yes", "Who are you?")
    read = console.refuse("slack:U123", "risk list", "Who are you?")
    garbled = console.refuse("slack:U123", '"unclosed', "Who are you?")

    assert [r.text for r in (reply, read, garbled)] == ["Who are you?"] * 3
    assert not any(r.ok for r in (reply, read, garbled))
    assert _audit(console) == [("slack:U123", "risk.set", "denied")]


def test_actors_are_audited_as_the_directory_spells_them(console: Console) -> None:
    console.run("Analyst@Contoso.Example", "connector set heartbeat 45")
    console.refuse("slack:UABC", "connector set heartbeat 45", "no e-mail")
    console.refuse("   ", "connector set heartbeat 45", "nobody")

    assert [actor for actor, _, _ in _audit(console)] == [ANALYST, "slack:UABC", "(nobody)"]
