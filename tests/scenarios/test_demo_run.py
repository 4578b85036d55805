"""README's first command: `mesbot demo seed && mesbot demo run` on a fresh directory, with no Slack and
no SMTP: a summary of a simulated day, alert mails for the demo admin and an on-call digest in
./var/mail/, the same for the same seed."""

import os
import shutil
import subprocess
import sys
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

MESBOT = str(Path(sys.executable).with_name("mesbot"))


ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MESBOT_", "SLACK_"))}


def _seed(folder: Path) -> None:
    folder.mkdir()
    seeded = subprocess.run([MESBOT, "demo", "seed"], cwd=folder, env=ENV, capture_output=True, text=True)
    assert seeded.returncode == 0, seeded.stderr


def _run(folder: Path) -> tuple[str, list[str]]:
    env = ENV
    ran = subprocess.run([MESBOT, "demo", "run"], cwd=folder, env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    parser = BytesParser(policy=default)
    subjects = sorted(
        str(parser.parsebytes(path.read_bytes())["Subject"])
        for path in (folder / "var" / "mail").glob("*.eml")
    )
    return ran.stdout, subjects


def test_a_simulated_day_ends_in_alert_mails_and_a_digest_and_is_the_same_for_the_same_seed(
    tmp_path: Path,
) -> None:
    _seed(tmp_path / "first")
    (tmp_path / "second" / "var").mkdir(parents=True)  # the same tenant, seeded at the same hour
    shutil.copy(tmp_path / "first" / "var" / "mesbot.db", tmp_path / "second" / "var" / "mesbot.db")
    summary, subjects = _run(tmp_path / "first")
    assert summary.startswith("Simulated 24 h of the demo tenant")
    assert "Mail is in ./var/mail/" in summary
    assert any(s.startswith("[mesbot] High risk:") for s in subjects), subjects
    assert any(s.startswith("[mesbot] On-call digest") for s in subjects), subjects
    again, same = _run(tmp_path / "second")
    assert same == subjects
    assert again == summary
