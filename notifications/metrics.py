"""The notifier's Prometheus metrics, registered on the app's own registry (bot/metrics.py).

Most count what this process did. The fleet's (`FleetMetrics`: duplicate sends and leadership changes
by every worker, the leader's last confirmation, the oldest due outbox row) are read from the store
when scraped, because a `worker` has no port: any `web` process answers for all of them.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notifications.delivery import Delivered


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.job_runs = Counter(
            "mesbot_job_runs", "Scheduled job runs, by job and outcome", ["job", "outcome"], registry=registry
        )
        self.sends = Counter(
            "mesbot_sends",
            "Messages the deliverer tried, by channel and outcome (sent, retry, failed)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "mesbot_delivery_seconds",
            "Time from a message's commit to its send",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )
        self.outbox = Gauge(
            "mesbot_outbox_rows", "Outbox rows by state (read when scraped)", ["state"], registry=registry
        )

        self.fleet = FleetMetrics()
        registry.register(self.fleet)
        self.leader = Gauge(
            "mesbot_leader",
            "1 while this process leads (runs the periodic jobs), else 0; summed over workers: 1",
            registry=registry,
        )
        self.duplicates = Counter(
            "mesbot_process_duplicate_sends",
            "Sends by this process whose row another worker had taken over meanwhile (its lease lapsed)",
            ["channel"],
            registry=registry,
        )

    def leadership(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    def delivered(self, done: Delivered) -> None:
        for (channel, outcome), n in done.outcomes.items():
            self.sends.labels(channel, outcome).inc(n)
        for channel, n in done.duplicates.items():
            self.duplicates.labels(channel).inc(n)
        for seconds in done.latencies:
            self.latency.observe(seconds)

    def job(self, name: str, ok: bool) -> None:
        self.job_runs.labels(name, "ok" if ok else "failed").inc()

    def outbox_depth(self, depth: dict[str, int]) -> None:
        for state, n in depth.items():
            self.outbox.labels(state).set(n)


@dataclass(eq=False)  # registered by identity: it must stay hashable
class FleetMetrics(Collector):
    """Values read from the store at scrape time (set by `/metrics` before it renders)."""

    counters: dict[str, int] = field(default_factory=dict)  # storage.fleet counters
    leader_seen_seconds: float = float("inf")  # since the leader last confirmed it leads (inf: no record)
    oldest_due_seconds: float = 0.0  # how long the longest-waiting due outbox row has waited

    def collect(self) -> Iterator[Metric]:
        duplicates = CounterMetricFamily(
            "mesbot_duplicate_sends",
            "Messages sent by a worker whose claim had lapsed, so another worker sent them too (all workers)",
        )
        duplicates.add_metric([], self.counters.get("duplicate-sends", 0))
        yield duplicates
        changes = CounterMetricFamily(
            "mesbot_leadership_changes", "Times a worker took the lead (all workers, since the store began)"
        )
        changes.add_metric([], self.counters.get("leadership-changes", 0))
        yield changes
        yield GaugeMetricFamily(
            "mesbot_leader_seen_age_seconds",
            "Seconds since the leading worker last confirmed its lead (over 45, or +Inf: no worker leads)",
            value=self.leader_seen_seconds,
        )
        yield GaugeMetricFamily(
            "mesbot_outbox_oldest_due_seconds",
            "How long the longest-waiting due outbox row has waited (0 when none is due)",
            value=self.oldest_due_seconds,
        )
