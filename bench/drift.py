#!/usr/bin/env python3
"""The agent's drift check of a deployed 10,000-file / 200 MB release (bench/make_tree.py),
warm, unchanged and with 10 files changed, side by side with the naive way of finding what
changed: re-hashing every file under `current` (`find -type f | xargs sha256sum`), in the
same run.

    python3 bench/drift.py [--runs N]

Builds the `drift_bench` example of ferry-agent in release mode (it deploys the tree with
the deploy engine and times `ferry_agent::drift::check`), and prints a Markdown table:
median wall time and CPU time per check, and the ratio to the full re-hash.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE_TREE = os.path.join(ROOT, "bench", "make_tree.py")


def example_binary():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferry-agent", "--example", "drift_bench"],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", "drift_bench")


def rehash_all(current):
    """Wall and CPU seconds (children's user + system) of hashing every file under current."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(f"find {current}/ -type f -print0 | xargs -0 sha256sum > /dev/null",
                   shell=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def ms(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    binary = example_binary()
    with tempfile.TemporaryDirectory() as work:
        tree, root = os.path.join(work, "tree"), os.path.join(work, "target")
        os.makedirs(root)
        subprocess.run([sys.executable, MAKE_TREE, "create", tree], check=True)
        out = subprocess.run([binary, tree, root, str(args.runs)], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(out)
        current = os.path.join(root, "apps", "bench", "current")
        rehash_all(current)  # warm
        naive = [rehash_all(current) for _ in range(args.runs)]
        subprocess.run(["chmod", "-R", "u+w", work], check=True)

    def median(runs, key):
        return statistics.median(r[key] for r in runs) / 1e9

    naive_wall = statistics.median(w for w, _ in naive)
    naive_cpu = statistics.median(c for _, c in naive)
    print(f"{result['files']} paths, {args.runs} runs each, medians, warm page cache\n")
    print("| check | wall | CPU | paths found | wall vs. full re-hash |")
    print("|---|---|---|---|---|")
    for name, runs in [("drift check, unchanged release", result["unchanged"]),
                       ("drift check, 10 files changed", result["changed"])]:
        wall, cpu = median(runs, "wall_ns"), median(runs, "cpu_ns")
        found = runs[0]["found"]
        print(f"| {name} | {ms(wall)} | {ms(cpu)} | {found} | {naive_wall / wall:.0f}x faster |")
    print(f"| `find current -type f \\| xargs sha256sum` | {ms(naive_wall)} | {ms(naive_cpu)} | - | 1x |")


if __name__ == "__main__":
    main()
