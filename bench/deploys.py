#!/usr/bin/env python3
"""Benchmark of deployments through a real agent, side by side with rsync in the same run.

    python3 bench/deploys.py            # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode, generates the 10,000-file / 200 MB tree of bench/make_tree.py,
starts a server and agents on temp roots, and measures end to end (the command a user types,
`--wait` included): first deploys (each round to a fresh target, from a flushed disk), deploys
with 1% of files changed, against `rsync -a --delete` from a local folder into a target folder
(and, for the first copy, rsync followed by `sync`); the switch to a release staged ahead; and
rollbacks.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from releases import MAKE_TREE, Server, churn, ferry_binary, timed, tree_bytes  # noqa: E402


ROUNDS = 5
ROUNDS_FIRST = 3


def fmt(seconds):
    return ", ".join(f"{s:.2f} s" for s in seconds)


def main():
    if shutil.which("rsync") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=True)
    ferry = ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    agents = []
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        size = tree_bytes(tree)
        timed(["sh", "-c", f"cat $(find {tree} -type f) > /dev/null"])
        server = Server(ferry, work, "data")
        server.run("app", "create", "site", "--team", "bench")

        def start_agent(name):
            token = server.run("target", "enroll", "dev", name).strip()
            agents.append(subprocess.Popen(
                [ferry, "agent", "--hooks-as-root", "--root", os.path.join(work, name), "--server", server.url,
                 "--enroll", token],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            enrolled = os.path.join(work, name, ".ferry", "agent.toml")
            while not os.path.exists(enrolled):
                time.sleep(0.02)

        start_agent("target")
        server.run("app", "place", "site", "--env", "dev", "--targets", "target")
        server.create("site", "1", tree)

        # First deploys: each round a fresh target (its own empty cache) and a fresh rsync
        # folder, starting from a flushed disk; rsync and ferry take turns to go first.
        firsts = {"ferry": [], "rsync": [], "rsync+sync": []}
        for round_ in range(ROUNDS_FIRST):
            app, target = f"first-{round_}", f"first-{round_}"
            server.run("app", "create", app, "--team", "bench")
            start_agent(target)
            server.run("app", "place", app, "--env", "dev", "--targets", target)
            server.create(app, "1", tree)
            copy = os.path.join(work, f"rsync-{round_}")
            durable = os.path.join(work, f"rsync-durable-{round_}")

            def measure(what):
                subprocess.run(["sync"], check=True)
                if what == "ferry":
                    command = [ferry, "deploy", app, "1", "--to", "dev", "--wait"]
                    firsts[what].append(timed(command, env=server.env)[0])
                elif what == "rsync":
                    firsts[what].append(timed(["rsync", "-a", "--delete", tree + "/", copy + "/"])[0])
                else:
                    command = f"rsync -a --delete {tree}/ {durable}/ && sync"
                    firsts[what].append(timed(["sh", "-c", command])[0])

            order = ["ferry", "rsync", "rsync+sync"]
            for what in (order if round_ % 2 == 0 else order[::-1]):
                measure(what)
        ferry_first = statistics.median(firsts["ferry"])
        rsync_first = statistics.median(firsts["rsync"])
        rsync_durable = statistics.median(firsts["rsync+sync"])

        rsync_target = os.path.join(work, "rsync-target")
        timed(["rsync", "-a", "--delete", tree + "/", rsync_target + "/"])
        deploy = lambda version: timed([ferry, "deploy", "site", version, "--to", "dev", "--wait"], env=server.env)[0]
        deploy("1")

        # 1% of files changed, five rounds; rsync and ferry alternate which goes first.
        rsync_churns, ferry_churns = [], []
        for round_ in range(ROUNDS):
            churn(tree, 2000 + round_)
            version = f"churn-{round_}"
            server.create("site", version, tree)
            sync = lambda: timed(["rsync", "-a", "--delete", tree + "/", rsync_target + "/"])[0]
            if round_ % 2:
                ferry_churns.append(deploy(version))
                rsync_churns.append(sync())
            else:
                rsync_churns.append(sync())
                ferry_churns.append(deploy(version))
        rsync_churn, ferry_churn = statistics.median(rsync_churns), statistics.median(ferry_churns)

        # Two-stage: staged ahead with --stage-only, then the switch is timed.
        switches = []
        for round_ in range(ROUNDS):
            churn(tree, 3000 + round_)
            version = f"staged-{round_}"
            server.create("site", version, tree)
            timed([ferry, "deploy", "site", version, "--to", "dev", "--stage-only", "--wait"], env=server.env)
            switches.append(deploy(version))
        switch = statistics.median(switches)

        rollbacks = []
        for attempt in range(ROUNDS):
            seconds, _ = timed([ferry, "rollback", "site", "--env", "dev", "--wait"], env=server.env)
            rollbacks.append(seconds)
            deploy(f"staged-{ROUNDS - 1}")
        rollback = statistics.median(rollbacks)
        current = os.readlink(os.path.join(work, "target", "apps", "site", "current"))
        server.stop()

        print(f"Tree: 10,000 files, {size / 1e6:.0f} MB; one agent on this machine; end to end, `--wait` included.\n")
        print("| measure | ferry | rsync -a --delete | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| first deploy (median of {ROUNDS_FIRST}) | {ferry_first:.2f} s | {rsync_first:.2f} s | {ferry_first / rsync_first:.2f} × | ≤ 1.0 × |")
        print(f"| first deploy, against rsync followed by `sync` | {ferry_first:.2f} s | {rsync_durable:.2f} s | {ferry_first / rsync_durable:.2f} × | reported |")
        print(f"| deploy, 1% of files changed (median of {ROUNDS}) | {ferry_churn:.2f} s | {rsync_churn:.2f} s | {ferry_churn / rsync_churn:.2f} × | ≤ 1.0 × |")
        print(f"| switch to a release staged ahead (median of {ROUNDS}), command to finished | {switch * 1000:.0f} ms | | | < 100 ms |")
        print(f"| rollback (median of {ROUNDS}), command to finished | {rollback * 1000:.0f} ms | | | < 100 ms |")
        print(f"\nFirst deploys, each round: ferry {fmt(firsts['ferry'])}; rsync {fmt(firsts['rsync'])}; rsync + sync {fmt(firsts['rsync+sync'])}.")
        print(f"\nAfter the run `current` -> {current}")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
