"""An unexpected failure inside a command: the user gets a polite reply with a short reference, and
the log line carries the same reference and the traceback (for the on-call engineer, not the user)."""

import logging
import re

import pytest

from bot import commands as c
from bot.console import Console
from bot.handlers import HANDLERS
from bot.handlers.context import Request
from bot.reply import Reply


def _broken(command: c.Command, request: Request) -> Reply:
    raise RuntimeError("the disk caught fire")


def test_an_unexpected_failure_answers_with_a_reference_that_is_in_the_log(
    console: Console, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(HANDLERS, c.PolicyShow, _broken)

    with caplog.at_level(logging.ERROR, logger="bot.console"):
        reply = console.run("admin@contoso.example", "policy")

    assert not reply.ok
    found = re.search(r"reference ([0-9a-f]{8})", reply.text)
    assert found, reply.text
    assert "fire" not in reply.text and "Traceback" not in reply.text
    assert reply.text.endswith("if you were changing something, `audit` shows whether it was applied.")
    [record] = caplog.records
    assert record.getMessage() == f"command PolicyShow failed [ref {found.group(1)}]"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_references_differ_between_failures(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(HANDLERS, c.PolicyShow, _broken)

    first, second = (console.run("admin@contoso.example", "policy").text for _ in range(2))

    assert first != second
