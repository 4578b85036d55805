"""Prometheus metrics, on a registry of the app's own (nothing global)."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from notifications.metrics import NotifierMetrics


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.commands = Counter(
            "mesbot_commands",
            "Commands answered, by command and outcome",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mesbot_command_seconds",
            "Time to answer a command",
            ["command"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "mesbot_slack_api_errors",
            "Slack Web API errors, by method and error",
            ["method", "error"],
            registry=self.registry,
        )

        self.notifier = NotifierMetrics(self.registry)
        self._answered: dict[tuple[str, bool], tuple[Counter, Histogram]] = {}

    def answered(self, command: str, ok: bool, seconds: float) -> None:
        """Count a command answered and its time (each series looked up once: `labels()` on every
        ack cost more than the counting)."""
        series = self._answered.get((command, ok))
        if series is None:
            series = self._answered[command, ok] = (
                self.commands.labels(command, "ok" if ok else "refused"),
                self.latency.labels(command),
            )
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
