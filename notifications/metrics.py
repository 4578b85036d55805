"""The notifier's Prometheus metrics, registered on the app's own registry (bot/metrics.py)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
