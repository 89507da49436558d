#!/usr/bin/env python3
"""What checking every credential against the database costs: `GET /healthz` (no
credential), `GET /api/v1/me` (a user's token) and `GET /api/v1/agent/desired` (an agent's
credential, answered at once: no `after`, so no long-poll) on one server, side by side.

    python3 bench/credentials.py                      # this build
    FERRY_BINARY=PATH python3 bench/credentials.py    # another build (the "before")

Starts a server, creates `BENCH_APPS` applications (default 20) placed on one target, whose
one-time token is exchanged for its agent credential with the API (no agent runs, so the
numbers are the server's alone), then runs wrk (2 threads, 16 connections, 10 s) against
each endpoint, one after the other. Prints a markdown table.
"""
import json
import os
import sys
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from releases import Server, ferry_binary  # noqa: E402
from status import fmt_ms, quietly, wrk  # noqa: E402

N_APPS = int(os.environ.get("BENCH_APPS", "20"))


def agent_credential(server, env, name):
    """Enrolls target `name` and exchanges its token for the credential, as an agent would."""
    token = quietly(server, "target", "enroll", env, name).strip()
    request = urllib.request.Request(
        f"{server.url}/api/v1/agent/enroll", data=json.dumps({"token": token}).encode(),
        headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["credential"]


def main():
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    with tempfile.TemporaryDirectory() as work:
        server = Server(ferry, work, "data")
        try:
            credential = agent_credential(server, "dev", "dev-1")
            for n in range(N_APPS):
                quietly(server, "app", "create", f"app-{n}", "--team", "bench")
                quietly(server, "app", "place", f"app-{n}", "--env", "dev", "--targets", "dev-1")
            admin = server.env["FERRY_TOKEN"]
            rows = [
                ("`GET /healthz`", wrk(f"{server.url}/healthz", admin)),
                ("`GET /api/v1/me`", wrk(f"{server.url}/api/v1/me", admin)),
                ("`GET /api/v1/agent/desired`", wrk(f"{server.url}/api/v1/agent/desired", credential)),
            ]
        finally:
            server.stop()
    print(f"ferry: {ferry}; {N_APPS} applications placed on the target")
    print("| endpoint | requests/s | p50 | p99 |")
    print("|---|---|---|---|")
    for name, result in rows:
        errors = " (errors!)" if result["errors"] else ""
        print(f"| {name} | {result['rps']:,.0f}{errors} | {fmt_ms(result['p50'])} | {fmt_ms(result['p99'])} |")


if __name__ == "__main__":
    main()
