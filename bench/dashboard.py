#!/usr/bin/env python3
"""Benchmark of the dashboard's overview of 200 applications, side by side in the same run
with the JSON status document it is built from (`GET /api/v1/status`) and `GET /healthz`.

    python3 bench/dashboard.py         # prints a markdown table for BENCHMARKS.md

Sets up the same server as `bench/status.py` (six real agents, 200 applications through the
pipeline, rollbacks, mixed versions, open backports) and adds open incidents and deployments
awaiting approval, so every kind of cell shows. Then, logged in as the admin:
- one request at a time: the overview 100 times in a row while nothing changes (the status
  document kept), and 30 times right after a change (a configuration edit bumps the status
  revision, so the document is built again), each timed from the request to the last byte;
- wrk (2 threads, 16 connections, 10 s) on `/healthz`, `/api/v1/status` and `/`.
`BENCH_APPS` changes the number of applications; `FERRY_BINARY=PATH` measures another build.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from releases import Server, ferry_binary  # noqa: E402
from status import (ENVS, N_APPS, N_HOTFIXES, TARGETS_PER_ENV, WORKERS, fmt_ms, quietly,  # noqa: E402
                    set_up_app, ship_hotfix, start_agent, tree, wrk)

PASSWORD = "a benchmark password"
N_INCIDENTS = 20
N_AWAITING = 10


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def log_in(url):
    """The session cookie of the admin, logged in with their password."""
    opener = urllib.request.build_opener(NoRedirect)
    form = urllib.parse.urlencode({"user": "admin", "password": PASSWORD}).encode()
    try:
        opener.open(urllib.request.Request(f"{url}/login", data=form))
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303, redirect.code
        return redirect.headers["set-cookie"].split(";")[0]
    raise RuntimeError("the login was not answered with a redirect")


def timed_get(url, headers):
    start = time.perf_counter()
    body = urllib.request.urlopen(urllib.request.Request(url, headers=headers)).read()
    return (time.perf_counter() - start) * 1000, body


def main():
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    agents = []
    try:
        server = Server(ferry, work, "data")
        threading.Thread(target=lambda: [None for _ in server.process.stderr], daemon=True).start()
        quietly(server, "env", "set", "prd", "--approvals", "0")
        for env in ENVS:
            for i in range(1, TARGETS_PER_ENV + 1):
                agents.append(start_agent(ferry, server, work, env, f"{env}-{i}"))
        trees = {"1": tree(work, "1"), "2": tree(work, "2"), "hotfix": tree(work, "1", fix=True)}
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            apps = list(pool.map(lambda i: set_up_app(server, trees, i), range(N_APPS)))
            hotfixed = [app for i, app in enumerate(apps) if i % 4 == 2][:N_HOTFIXES]
            list(pool.map(lambda app: ship_hotfix(server, trees, app), hotfixed))
        for app in apps[:N_INCIDENTS]:
            quietly(server, "incident", "open", app, "--env", "prd", "--severity", "medium",
                    "--title", "slow search")
        # Production asks for an approval again: these wait for it.
        quietly(server, "env", "set", "prd", "--approvals", "1")
        for app in [a for i, a in enumerate(apps) if i % 4 == 1][:N_AWAITING]:
            quietly(server, "promote", app, "--from", "pp", "--to", "prd")
        subprocess.run([ferry, "user", "set-password"], env=server.env, input=PASSWORD, text=True,
                       check=True, stdout=subprocess.DEVNULL)

        cookie = log_in(server.url)
        token = server.env["FERRY_TOKEN"]
        as_admin = {"Cookie": cookie}
        _, page = timed_get(f"{server.url}/", as_admin)
        rows = page.count(b'<tr id="app-')
        assert rows == len(apps), f"the overview shows {rows} applications"
        waiting = page.count(b"awaiting approval of")
        _, status = timed_get(f"{server.url}/api/v1/status", {"Authorization": f"Bearer {token}"})

        warm = [timed_get(f"{server.url}/", as_admin)[0] for _ in range(100)]
        after_change = []
        for i in range(30):
            quietly(server, "config", "set", apps[0], "--env", "dev", f"ROUND={i}")
            after_change.append(timed_get(f"{server.url}/", as_admin)[0])
        healthz = wrk(f"{server.url}/healthz", header=f"Cookie: {cookie}")
        status_wrk = wrk(f"{server.url}/api/v1/status", token)
        overview = wrk(f"{server.url}/", header=f"Cookie: {cookie}")
        server.stop()

        print(f"{len(apps)} applications × {len(ENVS)} environments × {TARGETS_PER_ENV} targets (6 real agents), "
              f"{N_INCIDENTS} open incidents, {waiting} deployments awaiting approval; the overview is "
              f"{len(page) / 1000:.0f} kB of HTML, the status document {len(status) / 1000:.0f} kB of JSON.\n")
        print("One request at a time, request to last byte (Python's urllib on the same machine):\n")
        print("| overview (`GET /`) | median | p90 | max | target |")
        print("|---|---|---|---|---|")
        for name, times in [("nothing changed (status document kept), 100 requests", warm),
                            ("right after a change (document built again), 30 requests", after_change)]:
            times = sorted(times)
            print(f"| {name} | {fmt_ms(statistics.median(times))} | {fmt_ms(times[int(len(times) * 0.9)])} | "
                  f"{fmt_ms(times[-1])} | < 50 ms |")
        print("\nwrk, 2 threads, 16 connections, 10 s each, on the server's machine:\n")
        print("| endpoint | requests/s | p50 | p99 | ratio to status |")
        print("|---|---|---|---|---|")
        for name, result in [("`GET /healthz`", healthz), ("`GET /api/v1/status` (JSON, token)", status_wrk),
                             ("`GET /` overview (HTML, session)", overview)]:
            print(f"| {name} | {result['rps']:,.0f} | {fmt_ms(result['p50'])} | {fmt_ms(result['p99'])} | "
                  f"{result['rps'] / status_wrk['rps']:.2f} × |")
        if healthz["errors"] or status_wrk["errors"] or overview["errors"]:
            print("\nwrk saw errors: see its output")
        ok = statistics.median(warm) < 50 and statistics.median(after_change) < 50
        print(f"\nTarget met: {'yes' if ok else 'NO'}")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
