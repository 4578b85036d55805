"""A bad or broken store, as a user meets it: the real `mesbot` process with a bad
`MESBOT_DATABASE_URL`, a garbage file, a read-only or full disk, or a store from a newer mesbot.
Each ends in one or two lines (what is wrong, which URL with the password masked, what to do),
a non-zero exit, no traceback, and nothing changed (RELIABILITY.md, "store faults")."""

import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from storage.engine import normalise_url
from tests.conftest import POSTGRES_URL, make_store, seed_demo

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ADMIN = "admin@contoso.example"
ASK = ("ask", "--as", ADMIN, "status", "me")
EVERY_COMMAND = [
    ASK,
    ("shell", "--as", ADMIN),
    ("demo", "seed", "--users", "10", "--devices", "20"),
    ("demo", "threat", "--device", "d1", "--classification", "TROJAN"),
    ("db", "upgrade"),
    ("serve", "--role", "web"),
]


def mesbot(
    url: str, *args: str, cwd: Path, limit: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESBOT_DATABASE_URL": url, "HOME": str(cwd)}
    return subprocess.run(
        [MESBOT, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def assert_one_clear_fault(result: subprocess.CompletedProcess[str], shown: str) -> str:
    """What every store fault must look like to the user; returns the message."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "sqlalchemy" not in output, output
    assert 1 <= len(output.strip().splitlines()) <= 2, output
    assert "secret" not in output, output
    assert shown in output, output
    return output


@pytest.mark.parametrize(
    ("url", "shown", "says"),
    [
        ("notaurl", "`notaurl`", "is not a database URL"),
        ("mysql://u:secret@db.example/x", "mysql://u:***@db.example/x", "SQLite or PostgreSQL only"),
        (
            "postgresql://u:secret@db.example:abc/x",
            "postgresql://u:***@db.example:abc/x",
            "not a database URL",
        ),
        ("postgresql://u:secret@127.0.0.1:1/x", "postgresql://u:***@127.0.0.1:1/x", "Connection refused"),
        ("postgresql+asyncpg://u:secret@db.example/x", "postgresql+asyncpg://u:***@", "not installed"),
        ("sqlite://", "`sqlite://`", "Use a file"),
        ("sqlite:///:memory:", "`sqlite:///:memory:`", "Use a file"),
        ("sqlite:////proc/mesbot/store.db", "sqlite:////proc/mesbot/store.db", "Cannot create the folder"),
    ],
)
def test_a_bad_url_is_one_clear_message(url: str, shown: str, says: str, tmp_path: Path) -> None:
    assert says in assert_one_clear_fault(mesbot(url, *ASK, cwd=tmp_path), shown)


def test_an_unreachable_postgresql_is_one_clear_message_on_upgrade(tmp_path: Path) -> None:
    url = "postgresql://u:secret@127.0.0.1:1/x"
    result = mesbot(url, "db", "upgrade", cwd=tmp_path)
    assert "Check that the database server is running" in assert_one_clear_fault(result, "u:***@127.0.0.1:1")


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_every_command_reports_a_garbage_file_clearly_and_leaves_it(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"these are my notes, not a database\n" * 200)
    url = f"sqlite:///{garbage}"

    output = assert_one_clear_fault(mesbot(url, *command, cwd=tmp_path), url)

    assert "is not a SQLite database" in output
    assert garbage.read_bytes() == b"these are my notes, not a database\n" * 200


def test_a_folder_as_the_store_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    output = assert_one_clear_fault(mesbot(url, "db", "upgrade", cwd=tmp_path), url)
    assert "that path is a folder" in output


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    store = make_store("sqlite", tmp_path / "store")
    seed_demo(store, users=10, devices=20)
    store.dispose()
    return tmp_path / "store" / "mesbot.db"


def _revision(path: Path) -> list[tuple[str]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchall()


@pytest.mark.parametrize("command", [("db", "upgrade"), ASK], ids=" ".join)
def test_a_store_from_a_newer_mesbot_is_refused_untouched(
    command: tuple[str, ...], demo_file: Path, tmp_path: Path
) -> None:
    with closing(sqlite3.connect(demo_file)) as db:
        db.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
        db.commit()
    url = f"sqlite:///{demo_file}"

    output = assert_one_clear_fault(mesbot(url, *command, cwd=tmp_path), url)

    assert "0099_from_the_future" in output and "Upgrade mesbot" in output
    assert _revision(demo_file) == [("0099_from_the_future",)]


# --------------------------------------------------------------------------- read-only and full disks


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (root only: the sandbox lets root mount a tmpfs)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder that even root cannot write in: a read-only mount (root), or chmod (anyone else)."""
    folder = tmp_path / "disk"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "1m"):
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder


def test_a_read_only_folder_is_named(read_only_folder: Path, tmp_path: Path) -> None:
    for url in (f"sqlite:///{read_only_folder}/mesbot.db", f"sqlite:///{read_only_folder}/var/mesbot.db"):
        output = assert_one_clear_fault(mesbot(url, "db", "upgrade", cwd=tmp_path), url)
        assert "read-only" in output.lower() or "permission" in output.lower()


def test_a_read_only_store_refuses_a_change_and_changes_nothing(demo_file: Path, tmp_path: Path) -> None:
    before = demo_file.read_bytes()
    if os.geteuid() == 0:  # root writes through chmod; the immutable flag stops it
        if subprocess.run(["chattr", "+i", str(demo_file)], check=False).returncode != 0:
            pytest.skip("chattr +i is not supported here")
    else:
        demo_file.chmod(0o444)
    try:
        url = f"sqlite:///{demo_file}"
        result = mesbot(url, "ask", "--as", ADMIN, "connector", "set", "heartbeat", "45", cwd=tmp_path)
        output = assert_one_clear_fault(result, url)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(demo_file)], check=True)
    assert "is read-only" in output and "nothing was changed" in output
    assert demo_file.read_bytes() == before


def test_a_full_disk_is_named(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        url = f"sqlite:///{disk}/mesbot.db"
        output = assert_one_clear_fault(mesbot(url, "db", "upgrade", cwd=tmp_path), url)
    assert "is full" in output and "Free some space" in output


def test_a_file_size_limit_is_reported_not_raised(tmp_path: Path) -> None:
    """The same fault without root: `ulimit -f` stops the file growing (SQLite reports an I/O error,
    or a full disk when a write was cut short)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    url = f"sqlite:///{tmp_path}/mesbot.db"
    output = assert_one_clear_fault(mesbot(url, "db", "upgrade", cwd=tmp_path, limit=limit), url)
    assert "could not be read or written" in output or "is full" in output


@pytest.mark.parametrize(
    ("grant", "option", "says"),
    [
        ("", "", "has no schema to create its tables in"),  # cannot even see the schema
        ("GRANT USAGE ON SCHEMA {schema} TO {role}", "", "may not do what mesbot needs"),
        ("GRANT ALL ON SCHEMA {schema} TO {role}", " -cdefault_transaction_read_only=on", "is read-only"),
    ],
    ids=["no usage", "no create", "read-only"],
)
def test_a_postgresql_user_without_privileges_is_told_what_to_grant(
    grant: str, option: str, says: str, tmp_path: Path
) -> None:
    if not POSTGRES_URL:
        pytest.skip("MESBOT_TEST_POSTGRES_URL is not set")
    role = schema = f"mesbot_limited_{os.getpid()}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema}; DROP ROLE IF EXISTS {role}"))
        connection.execute(text(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {schema}"))
        if grant:
            connection.execute(text(grant.format(schema=schema, role=role)))
    url = make_url(POSTGRES_URL).set(username=role, password="secret")
    url = url.update_query_dict({"options": f"-csearch_path={schema}{option}"})
    try:
        result = mesbot(url.render_as_string(hide_password=False), "db", "upgrade", cwd=tmp_path)
        output = assert_one_clear_fault(result, f"{role}:***@")
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema}; DROP OWNED BY {role}; DROP ROLE {role}"))
        admin.dispose()
    assert says in output and "nothing was changed" in output
