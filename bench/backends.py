"""Servers for the scale-out benchmarks: SQLite in the data directory, or a fresh PostgreSQL
database on the local PostgreSQL (127.0.0.1:5432, trust authentication, user postgres), made
with `createdb` and dropped afterwards. `BENCH_POSTGRES` names another server
(default `postgres://postgres@127.0.0.1:5432`)."""
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


class Database:
    """A fresh, empty PostgreSQL database on `server`, dropped by `drop`."""

    def __init__(self, server=POSTGRES):
        self.server = server
        self.name = f"ferry_bench_{uuid.uuid4().hex[:12]}"
        subprocess.run(["psql", f"{server}/postgres", "-q", "-c", f"CREATE DATABASE {self.name}"],
                       check=True)
        self.url = f"{server}/{self.name}"

    def drop(self):
        subprocess.run(["psql", f"{self.server}/postgres", "-q", "-c",
                        f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"], check=True)


class ServerProcess:
    """One `ferry server` on `data` (and `database`, if given), on `listen` (by default a
    free port); started under `wrapper` (a command and its arguments, such as
    `heaptrack -o FILE`) if given, whose output goes to stderr."""

    def __init__(self, ferry, data, database=None, listen="127.0.0.1:0", log=None, wrapper=()):
        command = [ferry, "server", "--data", data, "--listen", listen]
        if database is not None:
            command += ["--database", database]
        self.process = subprocess.Popen([*wrapper, *command], stderr=subprocess.PIPE, text=True,
                                        stdout=sys.stderr if wrapper else None)
        for line in self.process.stderr:
            if "listening on http://" in line:
                self.url = line.split("listening on ")[1].strip()
                break
        else:
            raise RuntimeError(f"ferry server {' '.join(command[2:])} stopped before listening")
        # The server itself, which a wrapper runs as its descendant: what is measured and
        # stopped.
        self.pid = descendant_running(self.process.pid, ferry) if wrapper else self.process.pid
        # Keeps reading the server's log so it never blocks on a full pipe; into the file
        # `log`, if given.
        threading.Thread(target=self._drain, args=(log,), daemon=True).start()
        with open(os.path.join(data, "admin-token")) as f:
            self.token = f.read().strip()

    def _drain(self, log):
        if log is None:
            for _ in self.process.stderr:
                pass
            return
        with open(log, "a") as out:
            for line in self.process.stderr:
                out.write(line)
                out.flush()

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        self.process.wait()


def descendant_running(pid, executable):
    """The process under `pid` (or `pid` itself) that runs `executable`."""
    children = [pid]
    while children:
        pid = children.pop()
        try:
            if os.path.samefile(f"/proc/{pid}/exe", executable):
                return pid
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children += [int(child) for child in f.read().split()]
        except (FileNotFoundError, PermissionError):
            pass
    raise RuntimeError(f"no process runs {executable}")


class Ferry:
    """The CLI against one server, as the admin (or as the holder of `token`)."""

    def __init__(self, ferry, server, work, token=None):
        self.ferry = ferry
        self.env = dict(os.environ, FERRY_SERVER=server.url, FERRY_TOKEN=token or server.token,
                        FERRY_CONFIG=os.path.join(work, "config.toml"))

    def __call__(self, *args, timeout=None):
        done = self.attempt(*args, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"ferry {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def attempt(self, *args, timeout=None):
        """`ferry ARGS`, whatever its exit status."""
        return subprocess.run([self.ferry, *args], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)


def start_agent(cli, env, name, root, log=subprocess.DEVNULL):
    """A real `ferry agent` on `root`, enrolled as target `name` of `env`, once it is enrolled.
    It runs hooks as root where it runs as root (this machine, CI: docs/targets.md)."""
    token = cli("target", "enroll", env, name).strip()
    agent = subprocess.Popen([cli.ferry, "agent", "--hooks-as-root", "--root", root,
                              "--server", cli.env["FERRY_SERVER"], "--enroll", token],
                             stdout=log, stderr=log)
    while not os.path.exists(os.path.join(root, ".ferry", "agent.toml")):
        if agent.poll() is not None:
            raise RuntimeError(f"ferry agent {name} stopped before it enrolled")
        time.sleep(0.02)
    return agent


def stop(agents=(), server=None, database=None):
    """Stops the agents (SIGTERM, waited for) and the server, and drops the database."""
    for agent in agents:
        agent.send_signal(signal.SIGTERM)
        agent.wait()
    if server is not None:
        server.stop()
    if database is not None:
        database.drop()


def cpu_seconds(pid):
    """User and system CPU time of process `pid` so far, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid):
    """Resident memory (VmRSS) and its peak so far (VmHWM) of process `pid`, in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024 / 1_000_000
    return values["VmRSS"], values["VmHWM"]


def database_backend_pids(database):
    """The PostgreSQL backend processes serving `database` now (their CPU is the database's
    share of a server's cost)."""
    out = subprocess.run(["psql", f"{POSTGRES}/postgres", "-qAt", "-c",
                          f"SELECT pid FROM pg_stat_activity WHERE datname = '{database.name}'"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return [int(pid) for pid in out.split()]


def total_cpu_seconds(pids):
    """CPU time of the processes in `pids` that still run."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except FileNotFoundError:
            pass
    return total
