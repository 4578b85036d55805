"""Every benchmark in one run (`bench/run`): each `bench/*.py` runs as its own process, one after another
(they would only measure each other if run together), and their tables are gathered into one report —
the ratios against the side-by-side baselines first, the absolute figures after, the machine last. The
report is written to `bench/RESULTS.md` and between the `<!-- bench:start -->` / `<!-- bench:end -->`
markers in README.md.

    bench/run                 # the sizes the issues name (1,000,000 devices: about 25 minutes here)
    bench/run --quick         # small sizes, a few minutes: does every benchmark still run?
    bench/run --only slack-ack mail

A benchmark reports ratios in a markdown table whose header starts `| ratio |`; everything else it
prints is kept as its absolute figures. A benchmark that fails is reported as failed with the end of
its output, and the others still run.

Each outcome is also kept in `bench/results.json`: `--only` runs some benchmarks again and reports
them with the others' last outcomes (each section says when it ran). Just before each benchmark a
CPU check times a fixed pure-Python loop: this shared machine's own speed varies by up to 1.8× over
a day, and absolute figures compare only at similar checks.
"""

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_URL = os.environ.get("MESBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/mesbot_bench")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    full: list[str]
    quick: list[str]


def benches() -> list[Bench]:
    def script(name: str) -> str:
        return str(ROOT / "bench" / name)

    core, pg = script("core.py"), ["--url", PG_URL]
    found = [
        Bench(
            "core-sqlite",
            "Console commands in process, SQLite",
            [core, "--devices", "1000000"],
            [core, "--devices", "20000"],
        ),
        Bench(
            "core-postgresql",
            "Console commands in process, PostgreSQL",
            [core, "--devices", "1000000", *pg],
            [core, "--devices", "20000", *pg],
        ),
        Bench(
            "ask",
            "Whole-process `mesbot ask`",
            [script("ask_process.py"), "--devices", "200000"],
            [script("ask_process.py"), "--devices", "20000", "--runs", "10"],
        ),
        Bench(
            "slack-ack",
            "Slack ack latency",
            [script("slack_ack.py"), "--devices", "100000"],
            [script("slack_ack.py"), "--devices", "20000", "--samples", "300"],
        ),
        Bench(
            "alert-latency",
            "Threat → alert latency",
            [script("alert_latency.py"), "--alerts", "40"],
            [script("alert_latency.py"), "--alerts", "10"],
        ),
        Bench(
            "mail",
            "Alert mail throughput",
            [script("mail.py"), "--mails", "10000"],
            [script("mail.py"), "--mails", "1000", "--apprise-mails", "200", "--rounds", "2"],
        ),
        Bench(
            "slack-dm",
            "Slack DM throughput",
            [script("slack_dm.py"), "--dms", "2000", "--recipients", "200"],
            [script("slack_dm.py"), "--dms", "300", "--recipients", "50"],
        ),
        Bench(
            "scale",
            "Scale-out: workers, sizes, stores",
            [script("scale.py"), "--devices", "100000", "1000000", "--workers", "1", "2", "4"],
            [script("scale.py"), "--devices", "20000", "--workers", "1", "2", "--alerts", "1000"],
        ),
        Bench(
            "take-over",
            "Leader take-over and delivery by 1–3 workers, PostgreSQL",
            [script("scale_out.py"), *pg],
            [script("scale_out.py"), *pg, "--mails", "1000", "--trials", "2"],
        ),
    ]
    stream, small = (
        script("lookout_stream.py"),
        ["--events", "10000", "--devices", "2000", "--full-devices", "10000"],
    )
    found[5:5] = [
        Bench("lookout-stream", "Lookout event stream and full sync, SQLite", [stream], [stream, *small]),
        Bench(
            "lookout-stream-postgresql",
            "Lookout event stream and full sync, PostgreSQL",
            [stream, *pg],
            [stream, *small, *pg],
        ),
    ]
    return found


@dataclass(frozen=True)
class Outcome:
    bench: Bench
    ok: bool
    seconds: float
    ratios: list[str]  # rows of its `| ratio |` tables
    figures: str  # the rest of what it printed
    ran_at: str = ""  # UTC, minutes
    cpu_check: float = 0.0  # seconds for CPU_CHECK_STEPS of a pure-Python loop, just before it ran


CPU_CHECK_STEPS = 5_000_000
RESULTS_JSON = ROOT / "bench" / "results.json"


def cpu_check() -> float:
    """Best of three timings of a fixed pure-Python loop."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for step in range(CPU_CHECK_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return best


def run(bench: Bench, quick: bool) -> Outcome:
    argv = [PYTHON, *(bench.quick if quick else bench.full)]
    check = cpu_check()
    print(f"== {bench.name}: {' '.join(argv[1:])} (CPU check {check:.2f} s)", file=sys.stderr, flush=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-20:])
        figures = (
            f"**failed** (exit {done.returncode}); see its output above this run's log.\n\n```\n{tail}\n```"
        )
        return Outcome(bench, False, seconds, [], figures, when, check)
    ratios, figures = split_ratios(done.stdout)
    return Outcome(bench, True, seconds, ratios, figures, when, check)


def load(quick: bool) -> dict[str, Outcome]:
    """The last outcome of each benchmark run at these sizes, by name."""
    try:
        saved = json.loads(RESULTS_JSON.read_text())
    except (OSError, ValueError):
        return {}
    if saved.get("quick") != quick:
        return {}
    known = {b.name: b for b in benches()}
    return {
        o["name"]: Outcome(known[o["name"]], **{k: v for k, v in o.items() if k != "name"})
        for o in saved.get("outcomes", [])
        if o.get("name") in known
    }


def save(outcomes: list[Outcome], quick: bool) -> None:
    rows = [{"name": o.bench.name, **{k: v for k, v in asdict(o).items() if k != "bench"}} for o in outcomes]
    RESULTS_JSON.write_text(json.dumps({"quick": quick, "outcomes": rows}, indent=1) + "\n")


_RATIO_HEADER = re.compile(r"^\|\s*ratio\s*\|")


def split_ratios(output: str) -> tuple[list[str], str]:
    """The rows of every `| ratio | …` table, and the output without those tables."""
    rows: list[str] = []
    kept: list[str] = []
    in_table = False
    for line in output.splitlines():
        if _RATIO_HEADER.match(line):
            in_table = True
            continue
        if in_table:
            if line.startswith("|"):
                if not set(line) <= set("|-: "):
                    rows.append(line)
                continue
            in_table = False
        kept.append(line)
    return rows, "\n".join(kept).strip()


def report(outcomes: list[Outcome], quick: bool) -> str:
    runs = sorted({o.ran_at[:10] for o in outcomes if o.ran_at})
    sizes = "quick sizes (`--quick`): a smoke run, not the issues' targets" if quick else "the issues' sizes"
    lines = [
        f"Generated by `bench/run` ({', '.join(runs)}), {sizes}. Each section below says when its "
        "benchmark ran and the CPU check just before it.",
        "",
        "#### Against the baselines",
        "",
        "| ratio | measured | target | ok? |",
        "|---|---:|---|---|",
    ]
    for outcome in outcomes:
        lines += outcome.ratios
    lines += ["", "#### Absolute figures", ""]
    for outcome in outcomes:
        took = f"{outcome.seconds:.0f} s, {outcome.ran_at}, CPU check {outcome.cpu_check:.2f} s"
        lines += [f"##### {outcome.bench.title} (`{outcome.bench.name}`: {took})", ""]
        lines += [_demote(outcome.figures), ""]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines += [
        "#### Machine",
        "",
        f"{os.cpu_count()} cores ({platform.machine()}), {platform.platform()}, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average {load} at the end. "
        "Each benchmark ran alone, one after another; every side-by-side baseline ran in the same "
        "benchmark as mesbot, interleaved, so both share the machine's noise. The CPU check is the best "
        f"of three timings of a {CPU_CHECK_STEPS:,}-step pure-Python loop just before the benchmark: "
        "this shared machine's own speed varied by up to 1.8× within one day, so absolute figures "
        "(events/s, mails/s, ms) compare only at similar checks; ratios share the noise.",
    ]
    return "\n".join(lines)


def _demote(text: str) -> str:
    """A benchmark's own headings sit below the report's."""
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(6, len(m.group(1)) + 4) + " ", text, flags=re.MULTILINE)


def write(text: str) -> None:
    (ROOT / "bench" / "RESULTS.md").write_text(f"# mesbot benchmarks\n\n{text}\n")
    readme = ROOT / "README.md"
    content = readme.read_text()
    if START in content and END in content:
        head, rest = content.split(START, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--no-write", action="store_true", help="print the report; leave the files alone")
    args = parser.parse_args()
    chosen = [b for b in benches() if not args.only or b.name in args.only]
    unknown = set(args.only or []) - {b.name for b in benches()}
    if unknown:
        names = ", ".join(b.name for b in benches())
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; the benchmarks are {names}")
    fresh = {bench.name: run(bench, args.quick) for bench in chosen}
    if args.only:  # the others as they last ran
        fresh = {**load(args.quick), **fresh}
    outcomes = [fresh[b.name] for b in benches() if b.name in fresh]
    text = report(outcomes, args.quick)
    print(text)
    if not args.no_write:
        write(text)
        save(outcomes, args.quick)
    if not all(o.ok for o in fresh.values() if o.bench in chosen):
        failed = ", ".join(o.bench.name for o in fresh.values() if o.bench in chosen and not o.ok)
        raise SystemExit(f"failed: {failed}")


if __name__ == "__main__":
    main()
