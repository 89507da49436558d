#!/usr/bin/env python3
"""Benchmark of release content kept in S3 (moto's server) against a local folder, side by
side in the same run.

    python3 bench/s3.py            # prints a markdown table for BENCHMARKS.md

Needs moto's server (`python3 -m pip install 'moto[server]'`; installed if missing). Builds
ferry in release mode, generates the 10,000-file / 200 MB tree of bench/make_tree.py and
starts moto on a free port with a bucket. Each round starts, for each backend, a fresh server
(`--blobs file://…` or `--blobs s3://bench/round-N`) with a fresh agent, and times as a user
types them: the first `release create` of the tree, the same tree again (dedup: nothing is
uploaded), and the first deploy to the agent (`deploy --wait`). The backends take turns to go
first. FERRY_BINARY=PATH measures that build instead of building this one. moto is an
in-memory Python server on this machine: it shows what the S3 code path
costs (one request per blob, 16 at a time), not what Amazon S3 over a network would.
"""
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
from releases import MAKE_TREE, ferry_binary, timed, tree_bytes  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUCKET = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    try:
        import moto.server  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "moto[server]>=5,<6"], check=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/").read()
            break
        except OSError:
            if time.time() > deadline:
                raise SystemExit("moto did not start")
            time.sleep(0.1)
    urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT")).read()
    return process, url


class Server:
    """A ferry server on a fresh data directory keeping blobs at `blobs`, with team `bench`,
    app `site` and one agent."""

    def __init__(self, ferry, work, name, blobs, env):
        self.ferry = ferry
        self.data = os.path.join(work, name)
        self.log = open(os.path.join(work, name + ".log"), "w+")
        self.process = subprocess.Popen(
            [ferry, "server", "--data", self.data, "--listen", "127.0.0.1:0", "--blobs", blobs],
            stderr=self.log, env=env)
        deadline = time.time() + 60
        while True:
            self.log.seek(0)
            text = self.log.read()
            if "listening on http://" in text:
                self.url = text.split("listening on ")[1].split()[0]
                break
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start:\n{text}")
            time.sleep(0.05)
        with open(os.path.join(self.data, "admin-token")) as f:
            token = f.read().strip()
        self.env = dict(os.environ, FERRY_SERVER=self.url, FERRY_TOKEN=token,
                        FERRY_CONFIG=os.path.join(work, name + ".toml"))
        self.run("team", "create", "bench")
        self.run("app", "create", "site", "--team", "bench")
        token = self.run("target", "enroll", "dev", name).strip()
        self.root = os.path.join(work, name + "-target")
        self.agent = subprocess.Popen(
            [ferry, "agent", "--hooks-as-root", "--root", self.root, "--server", self.url, "--enroll", token],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(os.path.join(self.root, ".ferry", "agent.toml")):
            time.sleep(0.02)

    def run(self, *args):
        return subprocess.run([self.ferry, *args], env=self.env, check=True,
                              stdout=subprocess.PIPE, text=True).stdout

    def timed(self, *args):
        return timed([self.ferry, *args], env=self.env)

    def stop(self):
        for process in (self.agent, self.process):
            process.send_signal(signal.SIGTERM)
            process.wait()
        self.log.close()


def main():
    ferry = os.environ.get("FERRY_BINARY") or ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    moto, moto_url = start_moto()
    s3_env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                  AWS_REGION="us-east-1", AWS_ENDPOINT_URL=moto_url)
    servers = []
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        size = tree_bytes(tree)
        timed(["sh", "-c", f"cat $(find {tree} -type f) > /dev/null"])
        times = {backend: {"upload": [], "again": [], "deploy": []} for backend in ("folder", "s3")}
        for round_ in range(ROUNDS):
            order = ["folder", "s3"] if round_ % 2 == 0 else ["s3", "folder"]
            for backend in order:
                name = f"{backend}-{round_}"
                if backend == "folder":
                    blobs, env = "file://" + os.path.join(work, name + "-blobs"), os.environ
                else:
                    blobs, env = f"s3://{BUCKET}/round-{round_}", s3_env
                server = Server(ferry, work, name, blobs, env)
                servers.append(server)
                subprocess.run(["sync"], check=True)
                upload, out = server.timed("release", "create", "site", "1", "--from", tree, "--json")
                again, out = server.timed("release", "create", "site", "2", "--from", tree, "--json")
                assert b'"new_bytes": 0' in out or b'"new_bytes":0' in out, out
                subprocess.run(["sync"], check=True)
                deploy, _ = server.timed("deploy", "site", "1", "--to", "dev", "--wait")
                for measure, seconds in (("upload", upload), ("again", again), ("deploy", deploy)):
                    times[backend][measure].append(seconds)
                server.stop()
                servers.remove(server)
                print(f"round {round_} {backend}: upload {upload:.2f} s, again {again:.2f} s, "
                      f"deploy {deploy:.2f} s", file=sys.stderr)

        def row(label, measure):
            folder = statistics.median(times["folder"][measure])
            s3 = statistics.median(times["s3"][measure])
            return f"| {label} (median of {ROUNDS}) | {s3:.2f} s | {folder:.2f} s | {s3 / folder:.2f} × |"

        print(f"Tree: 10,000 files, {size / 1e6:.0f} MB; one server, one agent and moto on this machine; "
              "end to end as typed, `--wait` included.\n")
        print("| measure | S3 (moto) | folder | ratio |")
        print("|---|---|---|---|")
        print(row("first `release create`", "upload"))
        print(row("`release create` of the same tree again (nothing new uploaded)", "again"))
        print(row("first deploy to a fresh agent", "deploy"))
        print()
        for backend in ("s3", "folder"):
            rounds = "; ".join(
                f"{m} " + ", ".join(f"{s:.2f} s" for s in times[backend][m])
                for m in ("upload", "again", "deploy"))
            print(f"Each round, {backend}: {rounds}.")
    finally:
        for server in servers:
            server.stop()
        moto.send_signal(signal.SIGTERM)
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
