#!/usr/bin/env python3
"""Benchmark of `GET /api/v1/status` on a busy server, side by side with `GET /healthz` in the
same run.

    python3 bench/status.py            # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode, starts a server and six real agents (two targets in each of
dev, pp and prd, all on this machine), creates 200 applications with two releases each and
deploys them through the real pipeline: release 1 to dev, pp and prd, release 2 to dev, then
a rollback in dev for every fourth application (release 2 is marked bad there), release 2 to
pp for every fourth other one, and a hotfix shipped to production with its open backport
obligation for ten of them. Then wrk (2 threads, 16 connections, 10 s) hits `/healthz`,
`/api/v1/me` (the cost of checking the token) and `/api/v1/status` as the admin, one after
the other. `BENCH_APPS` changes the number of applications; `FERRY_BINARY=PATH` measures that
build of ferry instead of building this one.
"""
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from releases import Server, ferry_binary  # noqa: E402

N_APPS = int(os.environ.get("BENCH_APPS", "200"))
ENVS = ["dev", "pp", "prd"]
TARGETS_PER_ENV = 2
N_HOTFIXES = 10
# Setup commands in flight at once: enough to keep six agents busy.
WORKERS = 8
WRK = ["wrk", "-t2", "-c16", "-d10s", "--latency", "--timeout", "30s"]


def quietly(server, *args):
    """`ferry ARGS` against the server; what it says on stderr shows only if it fails."""
    done = subprocess.run([server.ferry, *args], env=server.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ferry {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def start_agent(ferry, server, work, env, name):
    token = quietly(server, "target", "enroll", env, name).strip()
    agent = subprocess.Popen(
        [ferry, "agent", "--hooks-as-root", "--root", os.path.join(work, name), "--server", server.url, "--enroll", token],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    enrolled = os.path.join(work, name, ".ferry", "agent.toml")
    while not os.path.exists(enrolled):
        time.sleep(0.02)
    return agent


def tree(work, version, fix=False):
    """A small site of release `version`; with `fix`, release 1 plus a file no product
    release has, so the backport obligation of a hotfix made from it stays open."""
    directory = os.path.join(work, "tree-hotfix" if fix else f"tree-{version}")
    os.makedirs(os.path.join(directory, "css"), exist_ok=True)
    with open(os.path.join(directory, "index.html"), "w") as f:
        f.write(f"<h1>{version}</h1>\n")
    with open(os.path.join(directory, "css", "site.css"), "w") as f:
        f.write("body { color: teal }\n")
    if fix:
        with open(os.path.join(directory, "fix.js"), "w") as f:
            f.write("function pay() { return round(total, 2); }\n")
    return directory


def set_up_app(server, trees, index):
    """One application through the pipeline; every fourth gets a rollback or a second
    release in pp, so bad versions and mixed versions show."""
    app = f"app-{index:03}"
    run = lambda *args: quietly(server, *args)
    run("app", "create", app, "--team", "bench")
    for version in ["1", "2"]:
        run("release", "create", app, version, "--from", trees[version])
    deploy = lambda version, env: run("deploy", app, version, "--to", env, "--wait", "--strategy", "parallel")
    for env in ENVS:
        deploy("1", env)
    deploy("2", "dev")
    if index % 4 == 0:
        run("rollback", app, "--env", "dev", "--wait")
    elif index % 4 == 1:
        deploy("2", "pp")
    return app


def ship_hotfix(server, trees, app):
    """A critical incident in production, its hotfix shipped to pp and prd: the backport
    obligation it opens stays open."""
    run = lambda *args: quietly(server, *args)
    incident = json.loads(run("incident", "open", app, "--env", "prd", "--severity", "critical",
                              "--title", "payments round wrongly", "--json"))
    version = incident["suggested_version"]
    run("release", "create", app, version, "--from", trees["hotfix"], "--hotfix-of",
        incident["base_version"], "--incident", str(incident["id"]))
    for env in ["pp", "prd"]:
        run("deploy", app, version, "--to", env, "--wait", "--strategy", "parallel")


def wrk(url, token=None, header=None):
    """wrk on `url` as the token's holder, or with another `header` (a session cookie)."""
    header = header or f"Authorization: Bearer {token}"
    out = subprocess.run(WRK + ["-H", header, url], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}

    def latency(percentile):
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M).groups()
        return float(value) * units[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency(50),
        "p99": latency(99),
        "errors": "Non-2xx" in out or "Socket errors" in out,
    }


def fmt_ms(ms):
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms"


def main():
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    agents = []
    try:
        server = Server(ferry, work, "data")
        # Keeps reading the server's log so it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in server.process.stderr], daemon=True).start()
        # One person sets everything up: production asks for no second one.
        quietly(server, "env", "set", "prd", "--approvals", "0")
        for env in ENVS:
            for i in range(1, TARGETS_PER_ENV + 1):
                agents.append(start_agent(ferry, server, work, env, f"{env}-{i}"))
        trees = {"1": tree(work, "1"), "2": tree(work, "2"), "hotfix": tree(work, "1", fix=True)}

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            apps = list(pool.map(lambda i: set_up_app(server, trees, i), range(N_APPS)))
            # Where pp still runs release 1, so the hotfix is no downgrade there.
            hotfixed = [app for i, app in enumerate(apps) if i % 4 == 2][:N_HOTFIXES]
            list(pool.map(lambda app: ship_hotfix(server, trees, app), hotfixed))
        setup_seconds = time.perf_counter() - started

        token = server.env["FERRY_TOKEN"]
        request = urllib.request.Request(f"{server.url}/api/v1/status",
                                         headers={"Authorization": f"Bearer {token}"})
        body = urllib.request.urlopen(request).read()
        status = json.loads(body)
        assert len(status["apps"]) == N_APPS, f"status shows {len(status['apps'])} applications"
        n_targets = sum(len(e["targets"]) for a in status["apps"] for e in a["environments"])
        n_bad = sum(len(e.get("rolled_back_from", [])) for a in status["apps"] for e in a["environments"])
        n_backports = sum(len(a["backports"]) for a in status["apps"])

        healthz = wrk(f"{server.url}/healthz", token)
        me = wrk(f"{server.url}/api/v1/me", token)
        measured = wrk(f"{server.url}/api/v1/status", token)
        server.stop()

        print(f"{N_APPS} applications × {len(ENVS)} environments × {TARGETS_PER_ENV} targets (6 real agents): "
              f"{n_targets} target rows, {n_bad} releases rolled back from, {n_backports} open backports; "
              f"the status document is {len(body) / 1000:.0f} kB. Setup took {setup_seconds:.0f} s. "
              f"wrk: 2 threads, 16 connections, 10 s each, on the server's machine.\n")
        print("| endpoint | requests/s | p50 | p99 | healthz requests/s ÷ these | target |")
        print("|---|---|---|---|---|---|")
        for name, result, target in [("`GET /healthz`", healthz, "baseline"),
                                     ("`GET /api/v1/me` (the token checked, a small answer)", me, "reported"),
                                     ("`GET /api/v1/status` (admin)", measured, "≥ 2,000 requests/s, p99 < 20 ms")]:
            print(f"| {name} | {result['rps']:,.0f} | {fmt_ms(result['p50'])} | {fmt_ms(result['p99'])} | "
                  f"{healthz['rps'] / result['rps']:,.1f} × | {target} |")
        if healthz["errors"] or me["errors"] or measured["errors"]:
            print("\nwrk saw errors: see its output")
        ok = measured["rps"] >= 2000 and measured["p99"] < 20
        print(f"\nTarget met: {'yes' if ok else 'NO'}")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
