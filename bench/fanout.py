#!/usr/bin/env python3
"""The server's cost of a deployment to many targets, against one target, in the same run.

    python3 bench/fanout.py            # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode, generates the 10,000-file / 200 MB tree of bench/make_tree.py,
starts a server, one agent in dev and 20 agents in pp (all on this machine), deploys the tree
everywhere, changes 1% of the files, and measures the server process's CPU time (per
thread, from /proc/PID/task/*/schedstat) for the 1%-changed deploy to dev (1 target) and to pp (20 targets).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from releases import MAKE_TREE, Server, churn, ferry_binary, timed  # noqa: E402

N_TARGETS = 20


ROUNDS = 3


def thread_cpu(pid):
    """Each thread's CPU time in nanoseconds, as the scheduler counts it (precise, unlike the
    clock ticks of /proc/PID/stat)."""
    times = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                times[task] = int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return times


def cpu_between(before, after):
    """Seconds of CPU the process used between two readings; threads started in between
    count from zero, and a thread that ended in between loses only its last moments."""
    return sum(t - before.get(task, 0) for task, t in after.items()) / 1e9


def main():
    ferry = ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    agents = []
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        server = Server(ferry, work, "data")
        server.run("app", "create", "site", "--team", "bench")
        names = [("dev", "dev-0")] + [("pp", f"pp-{i}") for i in range(N_TARGETS)]
        for env, name in names:
            token = server.run("target", "enroll", env, name).strip()
            agents.append(subprocess.Popen(
                [ferry, "agent", "--hooks-as-root", "--root", os.path.join(work, name), "--server", server.url, "--enroll", token],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        server.create("site", "1", tree)
        deploy = lambda version, env: timed(
            [ferry, "deploy", "site", version, "--to", env, "--wait", "--strategy", "parallel"], env=server.env)[0]
        deploy("1", "dev")
        deploy("1", "pp")

        results = {"dev": [0, 0], "pp": [0, 0]}
        for round_ in range(ROUNDS):
            churn(tree, 3000 + round_)
            version = f"{round_ + 2}"
            server.create("site", version, tree)
            for env in ["dev", "pp"]:
                before = thread_cpu(server.process.pid)
                seconds = deploy(version, env)
                results[env][0] += cpu_between(before, thread_cpu(server.process.pid)) / ROUNDS
                results[env][1] += seconds / ROUNDS
        server.stop()
        (cpu_1, wall_1), (cpu_n, wall_n) = results["dev"], results["pp"]
        print(f"Tree: 10,000 files, 200 MB; 1% changed; all agents on this 2-core machine; parallel strategy; mean of {ROUNDS} rounds.\n")
        print(f"| measure | 1 target | {N_TARGETS} targets | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| server CPU time for the deploy | {cpu_1 * 1000:.0f} ms | {cpu_n * 1000:.0f} ms | {cpu_n / max(cpu_1, 0.001):.1f} × | ≤ 3 × |")
        print(f"| wall time, `deploy --wait` | {wall_1:.2f} s | {wall_n:.2f} s | {wall_n / wall_1:.1f} × | reported |")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
