#!/usr/bin/env python3
"""Benchmark of deployments through a real agent, side by side with rsync in the same run.

    python3 bench/deploys.py            # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode, generates the 10,000-file / 200 MB tree of bench/make_tree.py,
starts a server and one agent on a temp root, and measures end to end (the command a user
types, `--wait` included): the first deploy and a deploy with 1% of files changed, against
`rsync -a --delete` from a local folder into a target folder; and rollbacks.
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


def main():
    if shutil.which("rsync") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "rsync"], check=True)
    ferry = ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    agent = None
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        size = tree_bytes(tree)
        timed(["sh", "-c", f"cat $(find {tree} -type f) > /dev/null"])
        server = Server(ferry, work, "data")
        server.run("app", "create", "site", "--team", "bench")
        token = server.run("target", "enroll", "dev", "dev-1").strip()
        agent = subprocess.Popen([ferry, "agent", "--root", os.path.join(work, "target"),
                                  "--server", server.url, "--enroll", token],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.create("site", "1", tree)

        rsync_target = os.path.join(work, "rsync-target")
        rsync_first, _ = timed(["rsync", "-a", "--delete", tree + "/", rsync_target + "/"])
        # The same copy made durable, as ferry makes its cache and each release before use.
        durable_target = os.path.join(work, "rsync-durable")
        subprocess.run(["sync"], check=True)
        rsync_durable, _ = timed(["sh", "-c", f"rsync -a --delete {tree}/ {durable_target}/ && sync"])
        deploy = lambda version: timed([ferry, "deploy", "site", version, "--to", "dev", "--wait"], env=server.env)[0]
        ferry_first = deploy("1")

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
        print(f"| first deploy | {ferry_first:.2f} s | {rsync_first:.2f} s | {ferry_first / rsync_first:.2f} × | ≤ 1.0 × |")
        print(f"| first deploy, against rsync followed by `sync` | {ferry_first:.2f} s | {rsync_durable:.2f} s | {ferry_first / rsync_durable:.2f} × | reported |")
        print(f"| deploy, 1% of files changed (median of {ROUNDS}) | {ferry_churn:.2f} s | {rsync_churn:.2f} s | {ferry_churn / rsync_churn:.2f} × | ≤ 1.0 × |")
        print(f"| switch to a release staged ahead (median of {ROUNDS}), command to finished | {switch * 1000:.0f} ms | | | < 100 ms |")
        print(f"| rollback (median of {ROUNDS}), command to finished | {rollback * 1000:.0f} ms | | | < 100 ms |")
        print(f"\nAfter the run `current` -> {current}")
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
