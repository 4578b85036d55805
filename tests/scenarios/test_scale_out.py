"""Scale-out on PostgreSQL (DESIGN §2, issue 10) with real `mesbot serve --role worker` processes and a
real SMTP server: several workers deliver every row exactly once; exactly one of them leads, and when
it is killed another takes over within 30 s without running any periodic job twice in one period; a
worker frozen (SIGSTOP) past its lease loses its rows to another, and after SIGCONT nothing is lost
and no key arrives more than twice."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, func, select

from integration.access import sign_in
from integration.demo import seed as demo_seed
from integration.demo.data import ADMIN
from notifications.scheduler import PERIODIC
from notifications.senders.mime import message_id
from storage import fleet, outbox
from storage.engine import Store
from storage.models import JobRun, OutboxMessage
from storage.states import OutboxState
from tests.conftest import make_store
from tests.notifications.payloads import threat
from tests.notifications.smtp_server import Inbox

MESBOT = str(Path(sys.executable).with_name("mesbot"))
KEY_PREFIX = "scale-out-"
MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE)
INTERVAL_JOBS = {"heartbeat": 60 * 60, "source-sync": 60, "enrollment-scan": 3600, "disconnected-sweep": 3600}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    """A PostgreSQL store (this test process's schema), a real SMTP server, and the workers started."""

    store: Store
    inbox: Inbox
    env: dict[str, str]
    folder: Path
    workers: list[subprocess.Popen[bytes]]

    def start(self, count: int) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            n = len(self.workers)
            with (self.folder / f"worker-{n}.log").open("wb") as log:  # the worker keeps its own copy
                worker = subprocess.Popen(
                    [MESBOT, "serve", "--role", "worker"], env=self.env, cwd=self.folder, stderr=log
                )
            self.workers.append(worker)
            started.append(worker)
        return started

    def until_ready(self, workers: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
        """Every one of `workers` has started its scheduler and deliverer (and is polling the outbox)."""
        deadline = time.monotonic() + timeout
        while not all("scheduler started" in self.log(worker) for worker in workers):
            self.alive()
            assert time.monotonic() < deadline, f"the workers were not all ready after {timeout} s"
            time.sleep(0.1)

    def log(self, worker: subprocess.Popen[bytes]) -> str:
        return (self.folder / f"worker-{self.workers.index(worker)}.log").read_text(errors="replace")

    def alive(self) -> None:
        for worker in self.workers:
            if worker.returncode is None:  # not stopped on purpose
                assert worker.poll() is None, f"a worker died: {self.log(worker)[-3000:]}"

    def enqueue(self, count: int) -> set[str]:
        """`count` threat alerts to the demo admin by e-mail, committed as the notifier commits them;
        the Message-IDs they will carry."""
        now = datetime.now(UTC)
        with self.store.write() as session:
            admin = sign_in(session, ADMIN)[0]
            messages = [
                outbox.NewMessage(
                    key=f"{KEY_PREFIX}{n}",
                    recipient_id=admin.id,
                    channel="email",
                    category="threat-high",
                    payload=dict(threat(threat_id=f"thr-scale-{n}", app_name=f"App {n}")),
                    available_at=now,
                    expires_at=now + timedelta(hours=1),
                )
                for n in range(count)
            ]
            assert outbox.enqueue(session, messages, now) == count
        return {message_id(f"{KEY_PREFIX}{n}", "contoso.example") for n in range(count)}

    def sent(self) -> int:
        with self.store.read() as session:
            query = select(func.count()).where(
                col(OutboxMessage.idempotency_key).startswith(KEY_PREFIX),
                OutboxMessage.state == OutboxState.SENT,
            )
            return int(session.exec(query).one())

    def until_sent(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (done := self.sent()) < count:
            self.alive()
            assert time.monotonic() < deadline, f"{done} of {count} sent after {timeout} s"
            time.sleep(0.5)

    def received(self) -> Counter[str]:
        return Counter(
            match.group(1).decode() for raw in list(self.inbox.received) if (match := MESSAGE_ID.search(raw))
        )

    def leader(self) -> fleet.LeaderRecord | None:
        with self.store.read() as session:
            return fleet.leader(session)

    def job_runs(self) -> dict[str, JobRun]:
        with self.store.read() as session:
            return {row.name: row for row in session.exec(select(JobRun)).all()}

    def counters(self) -> dict[str, int]:
        with self.store.read() as session:
            return fleet.counters(session)


@pytest.fixture
def scale_out(tmp_path: Path) -> Iterator[Fleet]:
    store = make_store("postgresql", tmp_path)  # skips without MESBOT_TEST_POSTGRES_URL
    with store.write() as session:  # the demo tenant as of now: the leader's jobs have little to catch up
        demo_seed.seed(session, users=60, devices=150, seed=7, now=datetime.now(UTC))
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": store.given_url,  # with this test process's schema in its options
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(port),
        "MESBOT_SMTP_TLS": "none",  # the loopback; TLS is tested elsewhere
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
    }
    made = Fleet(store, inbox, env, tmp_path, [])
    try:
        yield made
    finally:
        for worker in made.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.terminate()
        for worker in made.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        controller.stop()
        store.dispose()
    for worker in made.workers:
        if worker.returncode != -signal.SIGKILL:
            assert "Traceback" not in made.log(worker)


@pytest.mark.parametrize("workers", [2, 3])
def test_several_workers_deliver_every_row_exactly_once_and_one_of_them_leads(
    scale_out: Fleet, workers: int
) -> None:
    started = scale_out.start(workers)
    scale_out.until_ready(started)  # under load one could still be importing while another sent all
    expected = scale_out.enqueue(5_000)
    scale_out.until_sent(5_000, timeout=240)

    received = scale_out.received()
    assert set(received) >= expected  # nothing lost
    ours = {key: n for key, n in received.items() if key in expected}
    assert len(ours) == 5_000 and max(ours.values()) == 1  # no duplicate
    assert scale_out.counters().get(fleet.DUPLICATE_SENDS, 0) == 0

    logs = [scale_out.log(worker) for worker in started]
    assert sum("sent by email" in log for log in logs) >= 2, "one worker did all the sending"
    assert sum(log.count("now leads") for log in logs) == 1  # exactly one leader, all along
    record = scale_out.leader()
    assert record is not None and int(record.process.rsplit(":", 1)[1]) in {w.pid for w in started}


def test_when_the_leader_is_killed_another_leads_within_30_s_and_no_job_runs_twice_in_a_period(
    scale_out: Fleet,
) -> None:
    scale_out.start(3)
    deadline = time.monotonic() + 60
    while not (set(INTERVAL_JOBS) <= set(runs := scale_out.job_runs())) or scale_out.leader() is None:
        scale_out.alive()
        assert time.monotonic() < deadline, f"the leader did not run its jobs: {sorted(runs)}"
        time.sleep(0.2)
    time.sleep(1)  # let the first runs finish
    first = {name: run.last_started_at for name, run in scale_out.job_runs().items()}
    record = scale_out.leader()
    assert record is not None
    pid = int(record.process.rsplit(":", 1)[1])
    leader = next(worker for worker in scale_out.workers if worker.pid == pid)

    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=10)
    killed = time.monotonic()
    while (now_leading := scale_out.leader()) is None or now_leading.process == record.process:
        scale_out.alive()
        assert time.monotonic() - killed < 30, "no worker took over within 30 s"
        time.sleep(0.2)
    took = time.monotonic() - killed
    successor = now_leading.process
    assert int(successor.rsplit(":", 1)[1]) in {w.pid for w in scale_out.workers if w is not leader}
    assert scale_out.counters()[fleet.LEADERSHIP_CHANGES] == 2

    # The new leader resumes the schedule from the dead one's runs: source-sync a minute after its
    # last run (not at once), the hourly jobs and the heartbeat not within this test at all.
    previous = first["source-sync"]
    assert previous is not None
    deadline = time.monotonic() + 90
    while (again := scale_out.job_runs()["source-sync"]).runs < 2:
        scale_out.alive()
        assert time.monotonic() < deadline, "the new leader does not run source-sync"
        time.sleep(0.5)
    assert again.last_started_at is not None
    assert again.last_started_at - previous >= timedelta(seconds=59), (took, again.last_started_at, previous)
    runs = scale_out.job_runs()
    for name in ("heartbeat", "enrollment-scan", "disconnected-sweep"):
        assert runs[name].runs == 1 and runs[name].last_started_at == first[name], name
    survivors = [w for w in scale_out.workers if w is not leader]
    assert sum(scale_out.log(w).count("now leads") for w in survivors) == 1
    assert set(PERIODIC) - set(INTERVAL_JOBS) == {"error-digest"}  # the digest keeps to its crontab


def test_a_worker_frozen_past_its_lease_loses_its_rows_and_nothing_is_lost_after_it_thaws(
    scale_out: Fleet,
) -> None:
    scale_out.env["MESBOT_OUTBOX_LEASE_SECONDS"] = "5"
    scale_out.inbox.delay = 0.02  # a batch of 100 takes ~2 s: long enough to be frozen in the middle
    expected = scale_out.enqueue(1_000)
    (frozen,) = scale_out.start(1)
    deadline = time.monotonic() + 60
    while len(scale_out.inbox.received) < 50:  # mid-way through its first batch of 100
        scale_out.alive()
        assert time.monotonic() < deadline, "the worker did not start sending"
        time.sleep(0.01)
    frozen.send_signal(signal.SIGSTOP)
    stopped_at = len(scale_out.inbox.received)
    scale_out.start(1)
    time.sleep(9)  # past the 5 s lease and the other worker's start-up and next look
    assert len(scale_out.inbox.received) > stopped_at, "the other worker sent nothing meanwhile"
    frozen.send_signal(signal.SIGCONT)
    scale_out.until_sent(1_000, timeout=120)
    time.sleep(3)  # the thawed worker finishes the batch it was sending

    received = scale_out.received()
    ours = {key: n for key, n in received.items() if key in expected}
    assert len(ours) == 1_000  # nothing lost
    assert max(ours.values()) <= 2  # at most one duplicate per key
    twice = sum(1 for n in ours.values() if n == 2)
    assert twice > 0, "the frozen worker held no rows: nothing was tested"
    assert "was taken over by another worker" in scale_out.log(frozen)
    assert scale_out.counters()[fleet.DUPLICATE_SENDS] == twice  # every duplicate is counted
