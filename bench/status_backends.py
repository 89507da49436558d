#!/usr/bin/env python3
"""Benchmark of `GET /api/v1/status` on SQLite, on PostgreSQL, and on two servers sharing
one PostgreSQL database, side by side in one run on the same data.

    python3 bench/status_backends.py       # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode and sets up the fixture of bench/status.py on a server on
SQLite: six real agents (two targets in each of dev, pp and prd), 200 applications deployed
through the real pipeline with rollbacks, mixed versions and open backports. Then:

1. SQLite: wrk (2 threads, 16 connections, 10 s) against that server.
2. The server stops; `ferry server migrate --from DATA --to postgres://…` moves its state into
   a fresh database on the local PostgreSQL (127.0.0.1:5432); a server on that database (and
   the same data directory, for the blobs) starts on the same address, and the agents
   reconnect to it by themselves. wrk as in 1.
3. A second server on the same database and data directory, on another address: two wrk
   processes at once, one against each server (1 thread, 8 connections each, so 2 threads
   and 16 connections in all, as in 1 and 2); requests/s summed, p99 the worse of the two.

Each measurement runs ROUNDS times (BENCH_ROUNDS, default 3), configurations taking turns
where they can (1 is measured before the migration, so its rounds come first); the table
gives medians. BENCH_APPS changes the number of applications; FERRY_BINARY=PATH measures that
build instead of building this one. The database is dropped at the end.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from backends import Database, ServerProcess  # noqa: E402
from releases import ferry_binary  # noqa: E402
from status import ENVS, N_APPS, N_HOTFIXES, TARGETS_PER_ENV, WORKERS, quietly, set_up_app, \
    ship_hotfix, start_agent, tree  # noqa: E402
import status  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ONE = ["-t2", "-c16"]
EACH_OF_TWO = ["-t1", "-c8"]


class Endpoint:
    """What bench/status.py's helpers need of a server: the CLI's binary and environment."""

    def __init__(self, ferry, server, work):
        self.ferry = ferry
        self.url = server.url
        self.env = dict(os.environ, FERRY_SERVER=server.url, FERRY_TOKEN=server.token,
                        FERRY_CONFIG=os.path.join(work, "config.toml"))


def free_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def wrk(url, token, threads_connections):
    status.WRK = ["wrk", *threads_connections, "-d10s", "--latency", "--timeout", "30s"]
    return status.wrk(url, token)


def wrk_both(urls, token):
    """One wrk per server, at the same time."""
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(lambda url: wrk(url, token, EACH_OF_TWO), urls))
    return {"rps": sum(r["rps"] for r in results), "p50": max(r["p50"] for r in results),
            "p99": max(r["p99"] for r in results), "errors": any(r["errors"] for r in results),
            "each": [r["rps"] for r in results]}


def status_document(url, token):
    request = urllib.request.Request(f"{url}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
    return urllib.request.urlopen(request).read()


def wait_for_agents(cli):
    """Until every target's agent has been in touch with the server since this was called."""
    def last_seen():
        return {t["name"]: t["last_seen"] for t in json.loads(quietly(cli, "target", "list", "--json"))}

    before = last_seen()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if all(seen != before[name] for name, seen in last_seen().items()):
            return
        time.sleep(1)
    raise RuntimeError("the agents did not reconnect to the server on PostgreSQL within 90 s")


def main():
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-status-", dir=os.environ.get("BENCH_DIR"))
    data = os.path.join(work, "data")
    address, second_address = free_address(), free_address()
    agents, servers, database = [], [], None
    try:
        sqlite = ServerProcess(ferry, data, listen=address)
        servers.append(sqlite)
        cli = Endpoint(ferry, sqlite, work)
        quietly(cli, "team", "create", "bench")
        quietly(cli, "env", "set", "prd", "--approvals", "0")
        for env in ENVS:
            for i in range(1, TARGETS_PER_ENV + 1):
                agents.append(start_agent(ferry, cli, work, env, f"{env}-{i}"))
        trees = {"1": tree(work, "1"), "2": tree(work, "2"), "hotfix": tree(work, "1", fix=True)}
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            apps = list(pool.map(lambda i: set_up_app(cli, trees, i), range(N_APPS)))
            hotfixed = [app for i, app in enumerate(apps) if i % 4 == 2][:N_HOTFIXES]
            list(pool.map(lambda app: ship_hotfix(cli, trees, app), hotfixed))
        setup_seconds = time.perf_counter() - started
        token = sqlite.token
        body = status_document(sqlite.url, token)
        assert len(json.loads(body)["apps"]) == N_APPS

        results = {"sqlite": [], "postgres": [], "two": []}
        for _ in range(ROUNDS):
            results["sqlite"].append(wrk(f"{sqlite.url}/api/v1/status", token, ONE))

        sqlite.stop()
        servers.remove(sqlite)
        database = Database()
        started = time.perf_counter()
        moved = quietly(cli, "server", "migrate", "--from", data, "--to", database.url)
        migrate_seconds = time.perf_counter() - started
        first = ServerProcess(ferry, data, database.url, listen=address)
        servers.append(first)
        wait_for_agents(cli)
        assert len(json.loads(status_document(first.url, token))["apps"]) == N_APPS
        second = ServerProcess(ferry, data, database.url, listen=second_address)
        servers.append(second)
        for _ in range(ROUNDS):
            results["postgres"].append(wrk(f"{first.url}/api/v1/status", token, ONE))
            results["two"].append(wrk_both([f"{first.url}/api/v1/status", f"{second.url}/api/v1/status"], token))

        def median(name, key):
            return statistics.median(r[key] for r in results[name])

        print(f"{N_APPS} applications × {len(ENVS)} environments × {TARGETS_PER_ENV} targets (6 real "
              f"agents); the status document is {len(body) / 1000:.0f} kB. Setup took "
              f"{setup_seconds:.0f} s; `ferry server migrate` took {migrate_seconds:.1f} s "
              f"({moved.strip().splitlines()[0]}). wrk, 10 s per run, on the servers' machine; medians of {ROUNDS} runs.\n")
        print("| configuration | requests/s | p50 | p99 | requests/s ÷ SQLite | target |")
        print("|---|---|---|---|---|---|")
        base = median("sqlite", "rps")
        rows = [("SQLite, one server (wrk: 2 threads, 16 connections)", "sqlite", "baseline"),
                ("PostgreSQL, one server (wrk: 2 threads, 16 connections; the second server idle)",
                 "postgres", "≥ 0.5 × SQLite"),
                ("PostgreSQL, two servers (one wrk per server at once, 1 thread and 8 connections each)",
                 "two", "above one server")]
        for label, name, target in rows:
            print(f"| {label} | {median(name, 'rps'):,.0f} | {status.fmt_ms(median(name, 'p50'))} | "
                  f"{status.fmt_ms(median(name, 'p99'))} | {median(name, 'rps') / base:.2f} × | {target} |")
        print("\nEvery run, requests/s: " + "; ".join(
            f"{name} " + ", ".join(f"{r['rps']:,.0f}" for r in results[name]) for name in results))
        print("Two servers, each server's share: " + "; ".join(
            " + ".join(f"{x:,.0f}" for x in r["each"]) for r in results["two"]))
        if any(r["errors"] for name in results for r in results[name]):
            print("\nwrk saw errors: see its output")
        ok = median("postgres", "rps") >= 0.5 * base and median("two", "rps") > median("postgres", "rps")
        print(f"\nTargets met: {'yes' if ok else 'NO'}")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        for server in servers:
            server.stop()
        if database is not None:
            database.drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
