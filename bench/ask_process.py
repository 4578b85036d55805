"""Whole-process `mesbot ask`: what a terminal user waits for, start-up included.

    .venv/bin/python bench/ask_process.py                      # seeds 200,000 devices into a temp file
    .venv/bin/python bench/ask_process.py --db PATH --reuse    # time an already seeded SQLite file

It seeds with `mesbot demo seed --devices N` (users follow devices, 0.8 per device), then starts
`mesbot ask --as admin@contoso.example …` as a new process for `help`, `status EMAIL`, `enrollment`
and `enrollment group "Mobile Users"`, round-robin so every command shares the machine's noise, and
prints the median (as hyperfine does) of `--runs` runs each, and each command's cost over `help`
(issue #7: the group command at most 150 ms more). A bare `python -c pass` and `import bot.cli`
show how much of it is the interpreter and the imports. Run by hand; tests never assert timings.
"""

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.table import MS, fmt  # noqa: E402

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ADMIN = "admin@contoso.example"
OVER_HELP_MS = 150  # issue #7: `enrollment group "Mobile Users"` at most this much over `help`


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=200_000, help="devices to seed (default 200000)")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temporary file)")
    parser.add_argument("--reuse", action="store_true", help="time an already seeded --db")
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15, ≥ 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per command first (default 2)")
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("take at least 10 runs per command")
    if args.reuse and args.db is None:
        parser.error("--reuse needs --db")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mesbot-ask-") as scratch:
        db = args.db or Path(scratch) / "ask.db"
        # A clean environment and an empty working directory: no `.env`, no MESBOT_*/SLACK_* leaking in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESBOT_", "SLACK_"))}
        env["MESBOT_DATABASE_URL"] = f"sqlite:///{db}"
        seeded = None if args.reuse else seed(args.devices, env, scratch)
        owner = _an_owner(db)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import bot.cli'": [sys.executable, "-c", "import bot.cli"],
            "help": _ask("help"),
            "status EMAIL": _ask("status", owner),
            "enrollment": _ask("enrollment"),
            'enrollment group "Mobile Users"': _ask("enrollment", "group", "Mobile Users"),
        }
        times = time_round_robin(commands, args, env, scratch)
        report(times, args, db, seeded)


def _ask(*words: str) -> list[str]:
    return [MESBOT, "ask", "--as", ADMIN, *words]


def seed(devices: int, env: dict[str, str], cwd: str) -> float:
    print(f"  seeding {devices:,} devices", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(
        [MESBOT, "demo", "seed", "--devices", str(devices)],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _an_owner(db: Path) -> str:
    """A device owner other than the fixed identities, so `status EMAIL` reads a real fleet row."""
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT owner_email FROM device WHERE owner_email NOT IN (?, ?, ?) ORDER BY id LIMIT 1",
            (ADMIN, "analyst@contoso.example", "alice@contoso.example"),
        ).fetchone()
    if row is None:
        raise SystemExit(f"{db} has no devices: seed it first (drop --reuse)")
    return str(row[0])


def time_round_robin(
    commands: dict[str, list[str]], args: argparse.Namespace, env: dict[str, str], cwd: str
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for turn in range(args.warmup + args.runs):
        print(f"  round {turn + 1}/{args.warmup + args.runs}", file=sys.stderr, flush=True)
        for name, argv in commands.items():
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"`{name}` exited {done.returncode}: {done.stderr or done.stdout}")
            if turn >= args.warmup:
                times[name].append(elapsed)
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace, db: Path, seeded: float | None) -> None:
    with sqlite3.connect(db) as connection:
        devices, users = (
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("device", "directoryuser")
        )
    help_ms = statistics.median(times["help"]) * MS
    print(f"\n### whole-process `mesbot ask`: {devices:,} devices, {users:,} users (SQLite)\n")
    print("| command | runs | median | min | max | over `help` | target | ok? |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for name, seconds in times.items():
        median = statistics.median(seconds) * MS
        is_ask = not name.startswith("python")
        over = f"{median - help_ms:+.0f} ms" if is_ask and name != "help" else "—"
        target = ok = "—"
        if name.startswith("enrollment group"):
            target = f"≤ +{OVER_HELP_MS} ms"
            ok = "yes" if median - help_ms <= OVER_HELP_MS else "**NO**"
        label = f"`mesbot ask --as {ADMIN} {name}`" if is_ask else f"`{name}`"
        print(
            f"| {label} | {len(seconds)} | {fmt(median)} | {fmt(min(seconds) * MS)} | "
            f"{fmt(max(seconds) * MS)} | {over} | {target} | {ok} |"
        )
    group = next(name for name in times if name.startswith("enrollment group"))
    over_help = statistics.median(times[group]) * MS - help_ms
    ok = "yes" if over_help <= OVER_HELP_MS else "**NO**"
    print("\n| ratio | measured | target | ok? |\n|---|---:|---|---|")
    name = f"`mesbot ask … {group}` over `… help`, whole process"
    print(f"| {name} | {over_help:+.0f} ms | ≤ +{OVER_HELP_MS} ms | {ok} |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    seeding = f"; `demo seed` took {seeded:.1f} s" if seeded is not None else ""
    print(
        f"\nMachine: {os.cpu_count()} cores ({platform.machine()}, {platform.system()}), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average {load} at the end"
        f"{seeding}. Each run is a new process, round-robin across the commands after {args.warmup} "
        "untimed rounds; median of the runs."
    )


if __name__ == "__main__":
    main()
