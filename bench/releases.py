#!/usr/bin/env python3
"""Benchmark of release creation, side by side with tar|zstd and cp in the same run.

    python3 bench/releases.py            # prints a markdown table for BENCHMARKS.md

Builds ferry in release mode, generates a 10,000-file / 200 MB tree (bench/make_tree.py),
and measures: the first `release create` (median of 3, each on a fresh server) against
`tar -cf - DIR | zstd -1 > /dev/null` and `cp -a`; a second release with 1% of files
changed; 50 successive releases with 1% churn each (store growth); a 1 MB edit inside a
500 MB file. The page cache is warm for every contender.
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
MAKE_TREE = os.path.join(ROOT, "bench", "make_tree.py")
MB = 1_000_000


def ferry_binary():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferry"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "ferry")


def timed(command, **kwargs):
    start = time.perf_counter()
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, **kwargs)
    return time.perf_counter() - start, result.stdout


class Server:
    """A ferry server on a fresh data directory, with team `bench`."""

    def __init__(self, ferry, work, name):
        self.ferry = ferry
        self.data = os.path.join(work, name)
        self.process = subprocess.Popen(
            [ferry, "server", "--data", self.data, "--listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            if "listening on http://" in line:
                self.url = line.split("listening on ")[1].strip()
                break
        with open(os.path.join(self.data, "admin-token")) as f:
            token = f.read().strip()
        self.env = dict(os.environ, FERRY_SERVER=self.url, FERRY_TOKEN=token,
                        FERRY_CONFIG=os.path.join(work, "config.toml"))
        self.run("team", "create", "bench")

    def run(self, *args):
        return subprocess.run([self.ferry, *args], env=self.env, check=True,
                              stdout=subprocess.PIPE, text=True).stdout

    def create(self, app, version, tree):
        start = time.perf_counter()
        out = self.run("release", "create", app, version, "--from", tree, "--json")
        return time.perf_counter() - start, json.loads(out)

    def blob_bytes(self):
        total = 0
        for dirpath, _, names in os.walk(os.path.join(self.data, "blobs")):
            total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
        return total

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()


def tree_bytes(tree):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(tree) for n in names)


def churn(tree, seed):
    out = subprocess.run([sys.executable, MAKE_TREE, "churn", tree, "1", str(seed)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return int(out)


def main():
    ferry = ferry_binary()
    work = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("BENCH_DIR"))
    try:
        tree = os.path.join(work, "tree")
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        size = tree_bytes(tree)
        n_files = sum(len(names) for _, _, names in os.walk(tree))
        timed(["sh", "-c", f"cat $(find {tree} -type f) > /dev/null"])

        ferry_times, tar_times, cp_times = [], [], []
        for attempt in range(3):
            tar_times.append(timed(["sh", "-c", f"tar -cf - -C {work} tree | zstd -1 -q > /dev/null"])[0])
            copy = os.path.join(work, "copy")
            cp_times.append(timed(["cp", "-a", tree, copy])[0])
            shutil.rmtree(copy)
            server = Server(ferry, work, f"data{attempt}")
            server.run("app", "create", "site", "--team", "bench", "--keep", "100")
            seconds, _ = server.create("site", "1", tree)
            ferry_times.append(seconds)
            if attempt < 2:
                server.stop()
                shutil.rmtree(server.data)
        first = statistics.median(ferry_times)
        tar = statistics.median(tar_times)
        cp = statistics.median(cp_times)

        changed = churn(tree, 1000)
        second_seconds, second = server.create("site", "2", tree)

        total_churn = changed
        for version in range(3, 53):
            total_churn += churn(tree, 1000 + version)
            server.create("site", str(version), tree)
        store = server.blob_bytes()
        store_bound = 1.2 * (size + total_churn)

        big_dir = os.path.join(work, "big")
        os.makedirs(big_dir)
        big_file = os.path.join(big_dir, "data.bin")
        subprocess.run(["head", "-c", str(500 * 1024 * 1024), "/dev/urandom"], stdout=open(big_file, "wb"), check=True)
        server.run("app", "create", "big", "--team", "bench")
        server.create("big", "1", big_dir)
        subprocess.run([sys.executable, MAKE_TREE, "edit", big_file, str(250 * 1024 * 1024), str(1024 * 1024), "7"], check=True)
        _, edited = server.create("big", "2", big_dir)
        server.stop()

        mbps = lambda seconds: f"{size / MB / seconds:.0f} MB/s"
        print(f"Tree: {n_files} files, {size / MB:.0f} MB (3 files over 20 MB). Medians of 3 runs, warm page cache.\n")
        print("| measure | ferry | baseline | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| first `release create` vs `tar -cf - \\| zstd -1` | {first:.2f} s ({mbps(first)}) | {tar:.2f} s ({mbps(tar)}) | {first / tar:.2f} × | reported |")
        print(f"| first `release create` vs `cp -a` | {first:.2f} s ({mbps(first)}) | {cp:.2f} s ({mbps(cp)}) | {first / cp:.2f} × | reported |")
        print(f"| second release, 1% of files changed: wall time | {second_seconds:.2f} s | first: {first:.2f} s | {second_seconds / first:.2f} × | ≤ 0.30 × |")
        print(f"| second release: `new_bytes` vs bytes changed | {second['new_bytes'] / MB:.2f} MB | {changed / MB:.2f} MB | {second['new_bytes'] / changed:.3f} × | within 10% |")
        print(f"| 50 more releases, 1% churn each: blob store size | {store / MB:.0f} MB | tree + churn: {(size + total_churn) / MB:.0f} MB | {store / (size + total_churn):.2f} × | ≤ 1.2 × |")
        print(f"| 1 MiB edit inside a 500 MiB file: `new_bytes` | {edited['new_bytes'] / MB:.2f} MB | edit: 1.05 MB | {edited['new_bytes'] / (1024 * 1024):.2f} × | ≤ 4 MB |")
        ok = (second_seconds <= 0.3 * first and abs(second["new_bytes"] - changed) <= 0.1 * changed
              and store <= store_bound and edited["new_bytes"] <= 4 * MB)
        print(f"\nAll targets met: {'yes' if ok else 'NO'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
