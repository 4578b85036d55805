"""Hostile names on a real terminal (RELIABILITY.md, "terminal"): `mesbot ask` and `mesbot shell` run
under a pseudo-terminal show a device and an app named with escape sequences, CR/LF, backspaces and
bidi overrides visibly; no control or bidi character reaches the terminal and no line is forged."""

import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import termios
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import make_store, seed_demo

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ADMIN = "admin@contoso.example"
DEVICE_NAME = "Pixel\x1b]0;pwned\x07\x1b[2J\r\nFAKE: Applied\x08\x08\u202egnp.exe"
APP_NAME = "Flashlight\r\nFAKE: Applied risk set TROJAN none\x1b[1A\u2066\x85"
FORBIDDEN = [b"\x1b", b"\x07", b"\x08", b"\r", b"\x7f", "\u202e".encode(), "\u2066".encode(), b"\xc2\x85"]


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[str, str]:
    """A demo store whose device with one open threat has a hostile name and app: (URL, device ID)."""
    store = make_store("sqlite", tmp_path)
    seed_demo(store, users=10, devices=20)
    store.dispose()
    path = tmp_path / "mesbot.db"
    with closing(sqlite3.connect(path)) as db:
        threat, device = db.execute(
            "SELECT id, device_id FROM threat WHERE status = 'OPEN' LIMIT 1"
        ).fetchone()
        db.execute("UPDATE device SET name = ? WHERE id = ?", (DEVICE_NAME, device))
        db.execute("UPDATE threat SET app_name = ? WHERE id = ?", (APP_NAME, threat))
        db.commit()
    return f"sqlite:///{path}", device


def on_a_terminal(args: list[str], url: str, cwd: Path, typed: bytes = b"") -> bytes:
    """What `mesbot ARGS` writes to a terminal, byte for byte (the terminal adds no CR to newlines)."""
    main, terminal = pty.openpty()
    attributes = termios.tcgetattr(terminal)
    attributes[1] &= ~termios.ONLCR  # so any CR in the output came from mesbot
    attributes[3] &= ~termios.ECHO  # so the output is mesbot's alone, not what the test typed
    termios.tcsetattr(terminal, termios.TCSANOW, attributes)
    inputrc = cwd / "inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")  # readline's own ESC sequences are not ours
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": url,
        "HOME": str(cwd),
        "TERM": "dumb",
        "INPUTRC": str(inputrc),
    }
    process = subprocess.Popen(
        [MESBOT, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=cwd
    )
    os.close(terminal)
    os.write(main, typed)
    output = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: mesbot closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(main)
        process.wait(timeout=10)
    return bytes(output)


def assert_nothing_reaches_the_terminal(output: bytes) -> None:
    for forbidden in FORBIDDEN:
        assert forbidden not in output, (forbidden, output)
    lines = output.decode().split("\n")
    assert not [line for line in lines if line.lstrip("• -").startswith("FAKE")], output.decode()
    text = output.decode()
    assert "Pixel␛]0;pwned␇␛[2J␍␊FAKE: Applied␈␈⟨U+202E⟩gnp.exe" in text  # shown, not dropped
    assert "Flashlight␍␊FAKE: Applied risk set TROJAN none␛[1A⟨U+2066⟩⟨U+0085⟩" in text


def test_ask_on_a_terminal_shows_hostile_names_visibly(hostile: tuple[str, str], tmp_path: Path) -> None:
    url, device = hostile
    output = on_a_terminal(["ask", "--as", ADMIN, "status", device], url, tmp_path)
    assert_nothing_reaches_the_terminal(output)


def test_ask_json_on_a_terminal_keeps_raw_values_as_json_escapes(
    hostile: tuple[str, str], tmp_path: Path
) -> None:
    url, device = hostile
    output = on_a_terminal(["ask", "--as", ADMIN, "--json", "status", device], url, tmp_path)
    for forbidden in FORBIDDEN:
        assert forbidden not in output, (forbidden, output)
    reply = json.loads(output)
    [shown] = reply["data"]["devices"]
    assert shown["name"] == DEVICE_NAME  # raw in data
    assert APP_NAME in [threat["app"] for threat in shown["open_threats"]]
    assert "Pixel␛]0;pwned␇␛[2J␍␊FAKE: Applied" in reply["text"]


@pytest.mark.parametrize("front_end", ["ask", "shell"])
def test_what_a_handler_left_raw_is_still_neutralised_line_by_line(
    front_end: str, hostile: tuple[str, str], tmp_path: Path
) -> None:
    """The front ends' safety net: `risk list` trusts catalogue text, so a category changed behind
    mesbot's back reaches the terminal only through `ask`'s and `shell`'s own neutralising."""
    url, _ = hostile
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("UPDATE classification SET category = 'Malware\x1b[2J\u202e' WHERE name = 'TROJAN'")
        db.commit()
    if front_end == "ask":
        output = on_a_terminal(["ask", "--as", ADMIN, "risk", "list"], url, tmp_path)
    else:
        output = on_a_terminal(["shell", "--as", ADMIN], url, tmp_path, b"risk list\nexit\n")
    for forbidden in FORBIDDEN:
        assert forbidden not in output, (forbidden, output)
    assert "Malware␛[2J⟨U+202E⟩:" in output.decode()


def test_shell_on_a_terminal_shows_hostile_names_visibly(hostile: tuple[str, str], tmp_path: Path) -> None:
    url, device = hostile
    typed = f"as {ADMIN}\nstatus {device}\nexit\n".encode()
    output = on_a_terminal(["shell"], url, tmp_path, typed)
    assert "Now acting as admin@contoso.example." in output.decode()
    assert_nothing_reaches_the_terminal(output)
