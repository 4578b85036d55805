"""`mesbot shell`: the bot grammar at an interactive prompt, with history and `as EMAIL`."""

import contextlib
from pathlib import Path

import click

from bot.console import Console
from integration.text import neutralise, neutralise_lines

HISTORY = Path.home() / ".mesbot_history"
INTRO = "mesbot shell: type a command (`help` lists them), `as EMAIL` to switch user, `exit` to leave."


def run_shell(console: Console, email: str | None) -> None:
    _load_history()
    click.echo(INTRO)
    while True:
        try:
            line = input(f"{neutralise(email or '(nobody)')}> ")
        except EOFError:
            click.echo()
            break
        except KeyboardInterrupt:
            click.echo()
            continue
        email, stop = step(console, email, line)
        if stop:
            break
    _save_history()


def step(console: Console, email: str | None, line: str) -> tuple[str | None, bool]:
    """Handle one line; returns the (possibly new) user and whether to leave."""
    text = line.strip()
    words = text.split()
    if text.lower() in ("exit", "quit"):
        return email, True
    if words and words[0].lower() == "as":
        if len(words) != 2:
            click.echo("Usage: as EMAIL")
            return email, False
        click.echo(f"Now acting as {neutralise(words[1])}.")
        return words[1], False
    if not text:
        return email, False
    if email is None and words[0].lower() != "help":
        click.echo("Say who you are first: as EMAIL (e.g. as admin@contoso.example)")
        return email, False
    # the safety net behind the handlers: no control or bidi character reaches the terminal
    click.echo(neutralise_lines(console.run(email or "", text).text))
    return email, False


def _load_history() -> None:
    with contextlib.suppress(ImportError, OSError):
        import readline

        readline.read_history_file(HISTORY)


def _save_history() -> None:
    with contextlib.suppress(ImportError, OSError):
        import readline

        readline.set_history_length(1000)
        readline.write_history_file(HISTORY)
