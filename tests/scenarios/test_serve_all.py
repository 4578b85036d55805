"""`mesbot serve` (role all) with no SMTP and no Slack, as a new user runs it: a threat injected by
`mesbot demo threat` becomes an alert mail in ./var/mail/ within seconds, its one-click unsubscribe
link works over HTTP (and a forged one does not), and /healthz and /metrics show the notifier."""

import json
import os
import socket
import subprocess
import sys
import time
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import httpx

from tests.conftest import make_store, seed_demo

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ADMIN = "admin@contoso.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mesbot(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MESBOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def _mail_about(folder: Path, marker: str) -> bytes | None:
    """The mail whose text mentions `marker` (the simulated tenant and the connector's start-up jobs
    may have sent others)."""
    for path in folder.glob("*.eml"):
        raw = path.read_bytes()
        text = BytesParser(policy=default).parsebytes(raw).get_body(("plain",))
        if text is not None and marker in text.get_content():
            return raw
    return None


def test_serve_delivers_a_demo_threat_as_mail_and_its_unsubscribe_link_works(tmp_path: Path) -> None:
    store = make_store("sqlite", tmp_path)
    seed_demo(store)
    store.dispose()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": f"sqlite:///{tmp_path}/mesbot.db",
        "MESBOT_HTTP_PORT": str(port),
        "MESBOT_PUBLIC_URL": base,
    }
    status = json.loads(
        _mesbot(env, tmp_path, "ask", "--as", "alice@contoso.example", "--json", "status me").stdout
    )
    device = next(d for d in status["data"]["devices"] if d["activation"] == "ACTIVATED")
    server = subprocess.Popen([MESBOT, "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    mail = tmp_path / "var" / "mail"
    try:
        for _ in range(300):  # start-up, on a loaded machine
            try:
                health = httpx.get(f"{base}/healthz", timeout=1).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health["scheduler"] == "running"

        injected = _mesbot(
            env,
            tmp_path,
            "demo",
            "threat",
            "--device",
            device["id"],
            "--classification",
            "TROJAN",
            "--app",
            "<script>x</script>",
        )
        assert injected.returncode == 0 and "alert(s) queued" in injected.stdout
        deadline = time.monotonic() + 30
        while not (ours := _mail_about(mail, "<script>x</script>")):
            assert time.monotonic() < deadline, "no alert mail arrived"
            time.sleep(0.1)
        message = BytesParser(policy=default).parsebytes(ours)
        assert message["To"] == ADMIN and "TROJAN" in message["Subject"]
        assert "<script>" not in message["Subject"]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
        link = str(message["List-Unsubscribe"]).strip("<>")
        assert link.startswith(f"{base}/unsubscribe?token=")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        assert httpx.post(f"{base}/unsubscribe?token=forged.token").status_code == 400
        assert httpx.get(link).status_code == 200  # the confirm page changes nothing
        mine = json.loads(_mesbot(env, tmp_path, "ask", "--as", ADMIN, "--json", "notify").stdout)
        assert mine["data"]["preferences"]["threat-high"]["email"] is True
        assert httpx.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        mine = json.loads(_mesbot(env, tmp_path, "ask", "--as", ADMIN, "--json", "notify").stdout)
        assert mine["data"]["preferences"]["threat-high"] == {"email": False, "slack": True}

        metrics = httpx.get(f"{base}/metrics").text
        assert 'mesbot_sends_total{channel="email",outcome="sent"}' in metrics
        assert 'mesbot_outbox_rows{state="sent"}' in metrics
        health = httpx.get(f"{base}/healthz").json()
        assert health["scheduler"] == "running" and health["jobs"]["deliver"]["last_outcome"] == "ok"
        assert health["jobs"]["deliver"]["last_success"].endswith("Z")
        assert health["leader"]["this_process"] and health["leader"]["current"]  # SQLite: the one worker
        assert health["leader"]["process"].endswith(f":{server.pid}")
        jobs = _mesbot(env, tmp_path, "jobs", "list").stdout
        deliver = next(line for line in jobs.splitlines() if line.startswith("deliver"))
        assert " ok: " in deliver  # its last pass went well (what it did depends on the simulated tenant)
        heartbeat = next(line for line in jobs.splitlines() if line.startswith("heartbeat"))
        assert " ok: heartbeat recorded" in heartbeat  # the connector's jobs run at start
        assert jobs.splitlines()[-1].startswith(f"leader: {health['leader']['process']}, since ")
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    assert b"Traceback" not in stderr
