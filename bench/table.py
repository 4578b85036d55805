"""The benchmarks' markdown table: one row per timed command, its percentiles and its target."""

import math
from dataclasses import dataclass

MS = 1_000.0


@dataclass(frozen=True)
class Target:
    """What a row must meet: `stat` ("p99" or "max") at most `limit_ms`."""

    stat: str
    limit_ms: float

    def describe(self) -> str:
        return f"{self.stat} ≤ {fmt(self.limit_ms)}"


@dataclass(frozen=True)
class Row:
    name: str
    seconds: list[float]
    target: Target | None
    capped: bool = False  # stopped early: the command was too slow for the full sample count

    def stat(self, name: str) -> float:
        ordered = sorted(self.seconds)
        if name == "max":
            return ordered[-1] * MS
        fraction = {"p50": 0.50, "p99": 0.99}[name]
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * MS  # nearest rank

    def markdown(self) -> str:
        p50, p99, worst = (fmt(self.stat(s)) for s in ("p50", "p99", "max"))
        if self.target is None:
            target = ok = "—"
        else:
            target = self.target.describe()
            ok = "yes" if self.stat(self.target.stat) <= self.target.limit_ms else "**NO**"
        samples = f"{len(self.seconds):,}" + (" (capped)" if self.capped else "")
        return f"| `{self.name}` | {samples} | {p50} | {p99} | {worst} | {target} | {ok} |"


HEADER = "| command | samples | p50 | p99 | max | target | ok? |\n|---|---:|---:|---:|---:|---|---|"


def fmt(ms: float) -> str:
    if ms >= 10_000:
        return f"{ms / MS:.0f} s"
    if ms >= 1_000:
        return f"{ms / MS:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.2f} ms"
