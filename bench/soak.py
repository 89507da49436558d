#!/usr/bin/env python3
"""Soak test: one ferry server and 10 real agents under a mixed workload for a bounded time,
judged at the end on memory, open files, failures and the audit trail.

    python3 bench/soak.py                       # 3 minutes, $CARGO_TARGET_DIR/debug/ferry (CI)
    python3 bench/soak.py --minutes 30 --ferry target/release/ferry    # the long form
    python3 bench/soak.py --server-under 'heaptrack -o /tmp/server'    # the server's heap profiled

Builds nothing. Starts a server (SQLite in a temp data directory, or a fresh database on the
PostgreSQL server `--postgres URL`) and 10 `ferry agent` processes on temp roots: 4 targets in
dev, 3 in pp, 3 in prd. Three applications carry a `ferry.toml` with a `before_switch` hook,
a health check command, a `shared` and `backup` path and a `[config]` env file and template.
Then, until the time is up, each round takes the next application and creates a release
(a small change to its tree), deploys it to dev, promotes it to pp and to prd (prd needs an
approval: a second user, the team's lead, gives it), and every few rounds also rolls dev
back, sets and applies a configuration value, backs up pp's data, and opens, acknowledges
and resolves an incident; every INJECT_EVERY-th round the release's health check fails on
purpose: its deployment must end rolled_back, which counts as injected, not as an error.

Every SAMPLE_EVERY seconds it reads the server's and each agent's resident memory (VmRSS)
and open file descriptors (/proc/PID/fd), and the data directory's size. At the end it
judges, and exits 1 naming every violation:

- memory flat: for the server and the agent with the most memory, RSS at the end within
  max(20 %, 20 MB) of RSS after the warm-up (the first minute, or a third of a shorter
  run). The warm-up lets caches, connection pools and the allocator's arenas reach their
  working size; a leak grows with the work done after it, which this bound catches in 30
  minutes, while the absolute 20 MB keeps the allocator's noise on a small process from
  counting as one;
- file descriptors not growing: at the end at most FD_SLACK above the warm-up's, for the
  server and every agent (a connection or a long-poll may be open at either moment);
- no unexpected failure: every ferry command that was meant to succeed did, every
  deployment ended succeeded (or rolled_back/failed for the injected ones), none is left
  unfinished, and neither the server's nor an agent's log shows a panic;
- `ferry audit verify` passes.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from backends import Database, Ferry, ServerProcess, memory_mb, start_agent, stop  # noqa: E402

TARGETS = {"dev": 4, "pp": 3, "prd": 3}
APPS = ["shop", "blog", "wiki"]
TEAM = "soak"
SAMPLE_EVERY = 10
INJECT_EVERY = 7
ROLLBACK_EVERY = 4
CONFIG_EVERY = 3
BACKUP_EVERY = 5
INCIDENT_EVERY = 2
FD_SLACK = 4
RSS_SLACK_RATIO = 0.20
RSS_SLACK_MB = 20
# The longest one command may take before the run counts it as stuck.
COMMAND_TIMEOUT = 300

FERRY_TOML = """\
shared = ["data"]
backup = ["data"]

[hooks]
before_switch = "echo \\"$FERRY_VERSION\\" >> \\"$FERRY_SHARED_DIR/data/migrations.log\\""
timeout = "30s"

[health]
command = "{health}"
timeout = "{health_timeout}"

[config]
env_file = ".env"
templates = {{ "site.conf" = "site.conf.tmpl" }}
required = ["GREETING"]
"""
HEALTHY = "test -s index.html && grep -q GREETING .env"
UNHEALTHY = "echo this release is broken on purpose; exit 1"


class Stats:
    """What the workload did: operations by kind, and what went wrong."""

    def __init__(self):
        self.operations = {}
        self.injected = []      # ids of deployments meant to fail
        self.unexpected = []    # one line each: what failed, and how

    def count(self, kind):
        self.operations[kind] = self.operations.get(kind, 0) + 1


class Workload:
    def __init__(self, cli, lead, work, stats):
        self.cli, self.lead, self.work, self.stats = cli, lead, work, stats
        self.round = 0
        self.deployed = {app: 0 for app in APPS}  # releases each app got to dev

    def run(self, kind, *args):
        """A command meant to succeed: counted, and its failure recorded; returns its stdout
        (None if it failed)."""
        self.stats.count(kind)
        try:
            done = self.cli.attempt(*args, timeout=COMMAND_TIMEOUT)
        except Exception as error:  # a timeout: the command is stuck
            self.stats.unexpected.append(f"ferry {' '.join(args)}: {error}")
            return None
        if done.returncode != 0:
            self.stats.unexpected.append(f"ferry {' '.join(args)}: exit {done.returncode}: "
                                         f"{done.stderr.strip()[-400:]}")
            return None
        return done.stdout

    def tree(self, app, version, healthy):
        directory = os.path.join(self.work, "trees", app, version)
        os.makedirs(directory)
        with open(os.path.join(directory, "ferry.toml"), "w") as f:
            f.write(FERRY_TOML.format(health=HEALTHY if healthy else UNHEALTHY,
                                      health_timeout="10s" if healthy else "1s"))
        with open(os.path.join(directory, "index.html"), "w") as f:
            f.write(f"<h1>{app} {version}</h1>\n")
        with open(os.path.join(directory, "site.conf.tmpl"), "w") as f:
            f.write("greeting = {{ GREETING }}\n")
        # A small change each release: one asset of a few, rewritten in turn.
        os.makedirs(os.path.join(directory, "assets"))
        for i in range(4):
            with open(os.path.join(directory, "assets", f"part-{i}.css"), "w") as f:
                stamp = version if i == self.round % 4 else "1"
                f.write(f"/* {stamp} */ body {{ margin: {i}px }}\n")
        return directory

    def release(self, app, healthy=True):
        version = f"1.0.{self.round}"
        out = self.run("release create", "release", "create", app, version,
                       "--from", self.tree(app, version, healthy))
        shutil.rmtree(os.path.join(self.work, "trees", app, version))
        return version if out is not None else None

    def approved(self, kind, *args):
        """A deployment that may need an approval (prd): the lead gives it; then waits."""
        out = self.run(kind, *args, "--json")
        if out is None:
            return
        deployment = json.loads(out)
        if deployment["status"] == "awaiting_approval":
            self.stats.count("approve")
            done = self.lead.attempt("approve", str(deployment["id"]), timeout=COMMAND_TIMEOUT)
            if done.returncode != 0:
                self.stats.unexpected.append(f"approve {deployment['id']}: {done.stderr.strip()}")
                return
        self.run(f"{kind} (wait)", "deployment", "show", str(deployment["id"]), "--wait")

    def injected_failure(self, app):
        version = self.release(app, healthy=False)
        if version is None:
            return
        self.stats.count("deploy (health check fails, injected)")
        done = self.cli.attempt("deploy", app, version, "--to", "dev", "--strategy", "parallel",
                                "--json", timeout=COMMAND_TIMEOUT)
        if done.returncode != 0:
            self.stats.unexpected.append(f"deploy of the broken {app} {version}: {done.stderr.strip()}")
            return
        deployment = json.loads(done.stdout)
        self.stats.injected.append(deployment["id"])
        shown = self.cli.attempt("deployment", "show", str(deployment["id"]), "--wait", "--json",
                                 timeout=COMMAND_TIMEOUT)
        status = json.loads(shown.stdout)["status"] if shown.stdout.strip() else "?"
        if status not in ("rolled_back", "failed"):
            self.stats.unexpected.append(f"the broken {app} {version} ended {status} in dev, "
                                         "not rolled_back or failed")

    def step(self):
        """One round of the workload."""
        app = APPS[self.round % len(APPS)]
        n = self.round
        self.round += 1
        if n % INJECT_EVERY == INJECT_EVERY - 1:
            self.injected_failure(app)
            return
        version = self.release(app)
        if version is None:
            return
        if self.run("deploy", "deploy", app, version, "--to", "dev", "--strategy", "parallel",
                    "--wait") is not None:
            self.deployed[app] += 1
        self.run("promote", "promote", app, "--from", "dev", "--to", "pp", "--wait")
        self.approved("promote to prd", "promote", app, "--from", "pp", "--to", "prd")
        if n % ROLLBACK_EVERY == 1 and self.deployed[app] >= 2:
            self.run("rollback", "rollback", app, "--env", "dev", "--wait")
        if n % CONFIG_EVERY == 2:
            self.run("config set", "config", "set", app, "--env", "dev", f"GREETING=hello-{n}")
            self.run("config apply", "config", "apply", app, "--env", "dev", "--wait")
        if n % BACKUP_EVERY == 3:
            self.run("backup create", "backup", "create", app, "--env", "pp")
        if n % INCIDENT_EVERY == 0:
            self.incident(app, n)

    def incident(self, app, n):
        out = self.run("incident open", "incident", "open", app, "--env", "prd", "--severity",
                       "low", "--title", f"slow page, round {n}", "--json")
        if out is None:
            return
        number = str(json.loads(out)["id"])
        self.run("incident ack", "incident", "ack", number, "--note", "looking")
        self.run("incident resolve", "incident", "resolve", number, "--note", "cache warmed")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def dir_bytes(path):
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def database_bytes(database):
    out = subprocess.run(["psql", database.url, "-qAt", "-c", "SELECT pg_database_size(current_database())"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return int(out)


class Sampler:
    """Every SAMPLE_EVERY seconds: RSS (MB) and open fds of each process, and the size of
    what the server stores (`stored()`, bytes)."""

    def __init__(self, processes, stored):
        self.processes, self.stored = processes, stored
        self.samples = []  # (seconds since start, {name: (rss, fds)}, bytes stored)
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def take(self):
        readings = {name: (memory_mb(pid)[0], fd_count(pid)) for name, pid in self.processes.items()}
        self.samples.append((time.monotonic() - self.started, readings, self.stored()))

    def loop(self):
        while not self.stopping.wait(SAMPLE_EVERY):
            self.take()

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.take()

    def at(self, seconds):
        """The first sample taken at or after `seconds`."""
        return next((s for s in self.samples if s[0] >= seconds), self.samples[-1])


def deployments(cli):
    """Every deployment so far: ids count up from 1, and `deployment list` shows only the
    recent ones."""
    recent = json.loads(cli("deployment", "list", "--json"))
    newest = max((d["id"] for d in recent), default=0)
    return [json.loads(cli("deployment", "show", str(id), "--json")) for id in range(1, newest + 1)]


def judge(sampler, warmup, stats, cli, logs):
    """The violations, one line each."""
    problems = list(stats.unexpected)
    start, warm, end = sampler.samples[0], sampler.at(warmup), sampler.samples[-1]
    agents = [name for name in end[1] if name != "server"]
    biggest = max(agents, key=lambda name: end[1][name][0])
    for name in ["server", biggest]:
        before, after = warm[1][name][0], end[1][name][0]
        allowed = max(before * RSS_SLACK_RATIO, RSS_SLACK_MB)
        if after - before > allowed:
            problems.append(f"{name}'s memory grew from {before:.1f} MB after the warm-up to "
                            f"{after:.1f} MB at the end (allowed: +{allowed:.1f} MB)")
    for name in end[1]:
        before, after = warm[1][name][1], end[1][name][1]
        if after > before + FD_SLACK:
            problems.append(f"{name}'s open files grew from {before} after the warm-up to {after}")

    listed = deployments(cli)
    by_status = {}
    for deployment in listed:
        injected = deployment["id"] in stats.injected
        by_status[deployment["status"], injected] = by_status.get((deployment["status"], injected), 0) + 1
        if deployment["status"] == "succeeded":
            continue
        if injected and deployment["status"] in ("rolled_back", "failed"):
            continue
        problems.append(f"deployment {deployment['id']} ({deployment['app']} {deployment['version']} "
                        f"to {deployment['env']}) ended {deployment['status']}"
                        + ("" if injected else ", not injected"))
    for log in logs:
        with open(log, errors="replace") as f:
            panics = [line.strip() for line in f if "panicked" in line]
        if panics:
            problems.append(f"{os.path.basename(log)} shows a panic: {panics[0]}")
    verify = cli.attempt("audit", "verify")
    if verify.returncode != 0:
        problems.append(f"ferry audit verify failed: {verify.stdout.strip()} {verify.stderr.strip()}")
    return problems, (start, warm, end, biggest), by_status, verify.stdout.strip()


def report(args, elapsed, stats, points, by_status, verify, problems, sampler):
    start, warm, end, biggest = points
    print(f"ferry soak: {elapsed / 60:.1f} minutes, {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"{sum(TARGETS.values())} agents ({', '.join(f'{e} {n}' for e, n in TARGETS.items())}), "
          f"{len(APPS)} applications, {args.ferry}\n")
    print("| operation | count |")
    print("|---|---|")
    for kind, n in sorted(stats.operations.items()):
        print(f"| {kind} | {n} |")
    print("\n| deployments | count |")
    print("|---|---|")
    for (status, injected), n in sorted(by_status.items()):
        print(f"| {status}{' (injected)' if injected else ''} | {n} |")
    warm_label = f"after warm-up ({warm[0]:.0f} s)"
    print(f"\n| process | RSS at start | RSS {warm_label} | RSS at end | fds at start | "
          f"fds {warm_label} | fds at end |")
    print("|---|---|---|---|---|---|---|")
    agents = [name for name in end[1] if name != "server"]
    rows = [("server", "server"), (f"largest agent ({biggest})", biggest)]
    for label, name in rows:
        print(f"| {label} | {start[1][name][0]:.1f} MB | {warm[1][name][0]:.1f} MB | {end[1][name][0]:.1f} MB | "
              f"{start[1][name][1]} | {warm[1][name][1]} | {end[1][name][1]} |")
    for label, pick in (("agents, max", max), ("agents, min", min)):
        print(f"| {label} | " + " | ".join(
            f"{pick(s[1][a][0] for a in agents):.1f} MB" for s in (start, warm, end)) + " | " + " | ".join(
            f"{pick(s[1][a][1] for a in agents)}" for s in (start, warm, end)) + " |")
    where = "Data directory and database" if args.postgres else "Data directory"
    print(f"\n{where}: {start[2] / 1e6:.1f} MB at start, {warm[2] / 1e6:.1f} MB after the "
          f"warm-up, {end[2] / 1e6:.1f} MB at the end; {len(sampler.samples)} samples, one every "
          f"{SAMPLE_EVERY} s.")
    print(f"ferry audit verify: {verify or 'failed'}")
    if problems:
        print(f"\nFAILED: {len(problems)} violation(s):")
        for problem in problems:
            print(f"- {problem}")
    else:
        print("\nPassed: memory flat, no file descriptor growth, no unexpected failure, audit trail intact.")


def set_up(cli):
    """The team, its applications with a first configuration everywhere, and its lead (a
    second user, who approves prd); returns the lead's token."""
    cli("team", "create", TEAM)
    lead_token = cli("user", "create", "lead", "--role", "viewer", "--team", f"{TEAM}:lead").strip()
    for app in APPS:
        cli("app", "create", app, "--team", TEAM)
        for env in TARGETS:
            cli("config", "set", app, "--env", env, "GREETING=hello")
    return lead_token


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--ferry", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "ferry"))
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (postgres://USER@HOST:PORT) to hold a fresh database")
    parser.add_argument("--server-under", metavar="COMMAND", default="",
                        help="start the server under this command, e.g. 'heaptrack -o FILE' "
                             "(its RSS is the server's own)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, data, samples.json)")
    args = parser.parse_args()
    args.ferry = os.path.abspath(args.ferry)
    if not os.access(args.ferry, os.X_OK):
        sys.exit(f"no ferry binary at {args.ferry}: build it (cargo build -p ferry) or pass --ferry PATH")
    seconds = args.minutes * 60
    warmup = min(60, seconds / 3)

    work = tempfile.mkdtemp(prefix="ferry-soak-", dir=os.environ.get("BENCH_DIR"))
    database = Database(args.postgres) if args.postgres else None
    server, agents, logs, problems = None, {}, [], ["the soak did not finish"]
    try:
        logs.append(os.path.join(work, "server.log"))
        data = os.path.join(work, "data")
        server = ServerProcess(args.ferry, data, database.url if database else None, log=logs[0],
                               wrapper=shlex.split(args.server_under))
        cli = Ferry(args.ferry, server, work)
        lead = Ferry(args.ferry, server, work, token=set_up(cli))
        for env, n in TARGETS.items():
            for i in range(1, n + 1):
                name = f"{env}-{i}"
                logs.append(os.path.join(work, f"agent-{name}.log"))
                with open(logs[-1], "w") as log:
                    agents[name] = start_agent(cli, env, name, os.path.join(work, "agents", name), log=log)

        stats = Stats()
        workload = Workload(cli, lead, work, stats)
        stored = ((lambda: dir_bytes(data) + database_bytes(database)) if database
                  else (lambda: dir_bytes(data)))
        sampler = Sampler({"server": server.pid, **{name: a.pid for name, a in agents.items()}}, stored)
        sampler.take()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            workload.step()
            print(f"round {workload.round}: {sum(stats.operations.values())} operations, "
                  f"{len(stats.unexpected)} unexpected failures", file=sys.stderr, flush=True)
        sampler.stop()
        elapsed = time.monotonic() - started
        with open(os.path.join(work, "samples.json"), "w") as f:
            json.dump(sampler.samples, f)
        problems, points, by_status, verify = judge(sampler, warmup, stats, cli, logs)
        report(args, elapsed, stats, points, by_status, verify, problems, sampler)
    finally:
        stop(agents.values(), server, database)
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
