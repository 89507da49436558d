#!/usr/bin/env python3
"""Benchmark of many agents long-polling one server: its memory and CPU at rest, and the
time from a deploy to every agent having been told, for 10, 100 and 1,000 agents side by
side in one run, on SQLite and on PostgreSQL.

    pip install -r bench/requirements.txt     # aiohttp, for the simulated agents
    python3 bench/agents.py                   # prints markdown tables for BENCHMARKS.md

Builds ferry in release mode. For each backend and each number N of agents, on a fresh
server (a fresh data directory; on PostgreSQL also a fresh database on 127.0.0.1:5432,
dropped afterwards): 20 real `ferry agent` processes and N simulated agents (bench/swarm.py:
each enrolls through `POST /api/v1/targets/enroll` and `POST /api/v1/agent/enroll` with the
one-time token, then long-polls `GET /api/v1/agent/desired?after=GENERATION` with its own
credential and reports what it is asked to run) are all targets of `dev`. Once every one
has had its first answer, and a pause, the server's CPU time and memory are read from /proc
over REST seconds (on PostgreSQL, the CPU time of the database's backends serving it too);
then `ferry deploy site V --to dev --strategy parallel --wait`, ROUNDS times, each timed from
the moment the command starts to the moment each simulated agent's long-poll answered with
the new version, and to the command's return (every target, the 20 real ones included,
reported success; given up after BENCH_DEPLOY_TIMEOUT, 120 s).

Environment: BENCH_AGENTS (default "10,100,1000"), BENCH_REAL_AGENTS (20), BENCH_BACKENDS
("sqlite,postgres"), BENCH_REST (30 s), BENCH_ROUNDS (3; a round starts once the last one's
deploy returned, so use 1 where a deploy does not finish), BENCH_DEPLOY_TIMEOUT (120 s),
FERRY_BINARY=PATH (measure that build instead of building this one), BENCH_DIR (where the
work directory goes).
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from backends import (Database, Ferry, ServerProcess, cpu_seconds, database_backend_pids,  # noqa: E402
                      memory_mb, start_agent, stop, total_cpu_seconds)
from releases import ferry_binary  # noqa: E402
from swarm import Swarm  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_AGENTS", "10,100,1000").split(",")]
REAL_AGENTS = int(os.environ.get("BENCH_REAL_AGENTS", "20"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",")
REST_SECONDS = float(os.environ.get("BENCH_REST", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# After the first deploy, before measuring rest: the last reports and polls settle.
SETTLE_SECONDS = 10
# The longest a deploy to all targets is waited for (`deploy --wait`) before the round is
# counted as not finished.
DEPLOY_TIMEOUT = float(os.environ.get("BENCH_DEPLOY_TIMEOUT", "120"))
ENV = "dev"
APP = "site"


def tree(work, version):
    directory = os.path.join(work, f"tree-{version}")
    os.makedirs(os.path.join(directory, "css"), exist_ok=True)
    with open(os.path.join(directory, "index.html"), "w") as f:
        f.write(f"<h1>{version}</h1>\n")
    with open(os.path.join(directory, "css", "site.css"), "w") as f:
        f.write("body { color: teal }\n")
    return directory


def measure(ferry, backend, n_simulated):
    """One fresh server with `n_simulated` simulated agents and the real ones."""
    work = tempfile.mkdtemp(prefix="ferry-bench-agents-", dir=os.environ.get("BENCH_DIR"))
    database = Database() if backend == "postgres" else None
    server = swarm = None
    agents = []
    try:
        server = ServerProcess(ferry, os.path.join(work, "data"),
                               database.url if database else None)
        cli = Ferry(ferry, server, work)
        cli("team", "create", "bench")
        cli("app", "create", APP, "--team", "bench")
        for version in range(2, ROUNDS + 2):
            cli("release", "create", APP, str(version), "--from", tree(work, version))
        agents = [start_agent(cli, ENV, f"real-{i:02}", os.path.join(work, "agents", f"real-{i:02}"))
                  for i in range(REAL_AGENTS)]
        swarm = Swarm(server.url, server.token)
        started = time.monotonic()
        swarm.grow(ENV, [f"sim-{i:04}" for i in range(n_simulated)])
        enroll_seconds = time.monotonic() - started
        time.sleep(SETTLE_SECONDS)

        # At rest: every agent long-polling, nothing changing.
        database_pids = database_backend_pids(database) if database else []
        cpu_before, db_before = cpu_seconds(server.pid), total_cpu_seconds(database_pids)
        swarm_before = time.process_time()
        polls_before = sum(agent.polls for agent in swarm.agents)
        wall = time.monotonic()
        time.sleep(REST_SECONDS)
        wall = time.monotonic() - wall
        rest = {
            "cpu": (cpu_seconds(server.pid) - cpu_before) / wall,
            "db_cpu": (total_cpu_seconds(database_pids) - db_before) / wall,
            "swarm_cpu": (time.process_time() - swarm_before) / wall,
            "polls": (sum(agent.polls for agent in swarm.agents) - polls_before) / wall,
            "rss": memory_mb(server.pid)[0],
        }

        rounds = []
        for version in range(2, ROUNDS + 2):
            started = time.monotonic()
            try:
                cli("deploy", APP, str(version), "--to", ENV, "--strategy", "parallel", "--wait",
                    timeout=DEPLOY_TIMEOUT)
                finished = time.monotonic() - started
            except subprocess.TimeoutExpired:
                finished = None
            told = sorted(at - started for at in swarm.told_times(str(version)).values())
            if len(told) != n_simulated:
                raise RuntimeError(f"{len(told)} of {n_simulated} simulated agents were told of "
                                   f"release {version}; last error: {swarm.last_error}")
            rounds.append({"all_told": told[-1], "median_told": statistics.median(told),
                           "finished": finished})
        rss, peak = memory_mb(server.pid)
        return {"n": n_simulated, "enroll": enroll_seconds, "rest": rest, "rounds": rounds,
                "rss_after": rss, "peak": peak, "errors": swarm.errors(),
                "failures": dict(swarm.failures)}
    finally:
        if swarm is not None:
            swarm.stop()
        stop(agents, server, database)
        shutil.rmtree(work, ignore_errors=True)


def finished(rounds):
    if any(x["finished"] is None for x in rounds):
        return f"not within {DEPLOY_TIMEOUT:.0f} s"
    return fmt_s(statistics.median(x["finished"] for x in rounds))


def fmt_s(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main():
    # Each agent holds a connection, and so does the server, which inherits this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    results = {}
    for backend in BACKENDS:
        for n in SIZES:
            print(f"{backend}: {n} simulated agents + {REAL_AGENTS} real ...", file=sys.stderr, flush=True)
            results[backend, n] = measure(ferry, backend, n)
            print(f"  {results[backend, n]}", file=sys.stderr, flush=True)

    print(f"{REAL_AGENTS} real `ferry agent` processes in every row, besides the simulated ones; "
          f"at rest: {REST_SECONDS:.0f} s, {SETTLE_SECONDS} s after the last enrollment; "
          f"{ROUNDS} deploys of a new release to all of them, parallel strategy.\n")
    print("| backend | simulated agents | server RSS at rest | server CPU at rest (one core) | "
          "PostgreSQL CPU at rest | polls/s | all told (median of rounds) | worst round | "
          "median agent told | deploy finished, all reported | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    met = True
    for (backend, n), r in results.items():
        rest, rounds = r["rest"], r["rounds"]
        all_told = statistics.median(x["all_told"] for x in rounds)
        worst = max(x["all_told"] for x in rounds)
        print(f"| {backend} | {n:,} | {rest['rss']:.0f} MB | {rest['cpu'] * 100:.1f} % | "
              f"{rest['db_cpu'] * 100:.1f} % | {rest['polls']:.0f} | {fmt_s(all_told)} | {fmt_s(worst)} | "
              f"{fmt_s(statistics.median(x['median_told'] for x in rounds))} | "
              f"{finished(rounds)} | {r['peak']:.0f} MB |")
        if n >= 1000:
            met &= rest["rss"] < 300 and rest["cpu"] < 0.05 and worst < 2
    print("\nThe load generator's own CPU at rest (one core): " + ", ".join(
        f"{backend} {n}: {r['rest']['swarm_cpu'] * 100:.1f} %" for (backend, n), r in results.items()))
    print("Simulated agents' failed requests: " + ", ".join(
        f"{backend} {n}: {r['errors']}" for (backend, n), r in results.items()))
    print("Refused or failed requests, by kind: " + "; ".join(
        f"{backend} {n}: {r['failures']}" for (backend, n), r in results.items() if r["failures"]))
    print("Enrolling the simulated agents took: " + ", ".join(
        f"{backend} {n}: {r['enroll']:.1f} s" for (backend, n), r in results.items()))
    print(f"\nTargets met (1,000 agents: RSS < 300 MB, CPU < 5 % at rest, every round all told < 2 s): "
          f"{'yes' if met else 'NO'}")


if __name__ == "__main__":
    main()
