#!/usr/bin/env python3
"""Application data backups: ferry against restic, side by side in one run, on 1 GB of
application data (bench/make_tree.py: 10,000 files, mixed sizes, half random and half
compressible): the first backup, a backup after 1 % of the files changed, and a full
restore into an empty directory.

    python3 bench/backups.py [--megabytes N] [--files N] [--engine-only]

ferry is measured twice. End to end: a release build of ferry, a server on loopback and an
agent on this machine; the data lives in the agent's `shared/data`, and what is timed is
the command a user types (`ferry backup create`, `ferry backup restore` after the data was
deleted), which asks the agent (an agent task), runs `pre_backup` (none here), snapshots,
uploads what the server lacks over HTTP and records the backup; a restore backs up what it
replaces (nothing left), fetches the blobs into the agent's cache and restores. And the
engine alone: the `backup_bench` example of ferry-agent (release build), the same snapshot
and restore against a local blob store, no network. restic backs up into a local
repository on the same disk
(`restic init`, then `restic backup`; `RESTIC_PASSWORD` set). Wall time is each command's
whole run; new bytes are the growth of the blob store and of the restic repository
(`du -sb`). Both restores are checked file for file against the data. Prints a Markdown
table.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE_TREE = os.path.join(ROOT, "bench", "make_tree.py")


def example_binary():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferry-agent", "--example", "backup_bench"],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", "backup_bench")


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], check=True, stdout=subprocess.PIPE, text=True).stdout
    return int(out.split()[0])


def timed(command, **kwargs):
    start = time.perf_counter()
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, **kwargs).stdout
    return time.perf_counter() - start, out


def tree_digest(root):
    """Every path under root with its mode and content hash (or link target)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                seen[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                seen[rel] = ("dir", st.st_mode & 0o7777)
            else:
                with open(path, "rb") as f:
                    seen[rel] = ("file", st.st_mode & 0o7777, hashlib.blake2b(f.read()).hexdigest())
    return seen


def size(n):
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


class EndToEnd:
    """A ferry server on loopback, app `site` deployed with `backup = ["data"]` to one agent."""

    def __init__(self, work):
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from releases import Server, ferry_binary  # noqa: E402
        self.ferry = ferry_binary()
        self.server = Server(self.ferry, work, "server")
        self.server.run("app", "create", "site", "--team", "bench")
        token = self.server.run("target", "enroll", "dev", "target").strip()
        self.root = os.path.join(work, "target")
        self.agent = subprocess.Popen(
            [self.ferry, "agent", "--hooks-as-root", "--root", self.root, "--server", self.server.url, "--enroll", token,
             "--drift-every", "0s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(os.path.join(self.root, ".ferry", "agent.toml")):
            time.sleep(0.02)
        release = os.path.join(work, "release")
        os.makedirs(release)
        with open(os.path.join(release, "ferry.toml"), "w") as f:
            f.write('shared = ["data"]\nbackup = ["data"]\n')
        with open(os.path.join(release, "index.html"), "w") as f:
            f.write("<h1>site</h1>\n")
        self.server.run("release", "create", "site", "1", "--from", release)
        self.server.run("deploy", "site", "1", "--to", "dev", "--wait")
        self.shared = os.path.join(self.root, "apps", "site", "shared")
        self.blobs = os.path.join(self.server.data, "blobs")

    def backup(self):
        before = du_bytes(self.blobs)
        wall, out = timed([self.ferry, "backup", "create", "site", "--env", "dev", "--json"], env=self.server.env)
        return wall, du_bytes(self.blobs) - before, json.loads(out)[0]

    def restore(self, backup_id):
        wall, _ = timed([self.ferry, "backup", "restore", str(backup_id)], env=self.server.env)
        return wall

    def stop(self):
        self.agent.terminate()
        self.agent.wait()
        self.server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--engine-only", action="store_true")
    args = parser.parse_args()
    binary = example_binary()
    env = dict(os.environ, RESTIC_PASSWORD="bench")
    rows = []
    e2e_rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        e2e = None if args.engine_only else EndToEnd(work)
        shared = e2e.shared if e2e else os.path.join(work, "shared")
        data = os.path.join(shared, "data")
        os.makedirs(data, exist_ok=True)
        subprocess.run([sys.executable, MAKE_TREE, "create", data, str(args.files), str(args.megabytes)],
                       check=True)
        # A symlink and a private file, as application data has them.
        os.symlink("d00/s0", os.path.join(data, "latest"))
        os.chmod(os.path.join(data, "d01"), 0o750)
        total = du_bytes(data)
        time.sleep(1.5)  # the files settle: the backup index records only files changed > 1 s before
        store, index = os.path.join(work, "ferry-blobs"), os.path.join(work, "ferry.index")
        repo, plain_repo = os.path.join(work, "restic-repo"), os.path.join(work, "restic-plain")
        for r in (repo, plain_repo):
            subprocess.run(["restic", "init", "--quiet", "--repo", r], check=True, env=env,
                           stdout=subprocess.DEVNULL)
        os.makedirs(store)

        def ferry_backup(n):
            before = du_bytes(store)
            wall, out = timed([binary, "backup", shared, store, index, os.path.join(work, f"m{n}"), "data"])
            return wall, du_bytes(store) - before, json.loads(out)

        def restic_backup(r=repo, *flags):
            before = du_bytes(r)
            wall, _ = timed(["restic", "backup", "--quiet", "--repo", r, *flags, "data"], cwd=shared, env=env)
            return wall, du_bytes(r) - before

        plain = []
        first = ferry_backup(1)
        if e2e:
            e2e_first = e2e.backup()
            e2e_rows.append(("first backup", e2e_first[0], e2e_first[1]))
        rows.append(("first backup", first[0], restic_backup(), first[1]))
        plain.append(restic_backup(plain_repo, "--compression", "off")[1])
        churned = subprocess.run([sys.executable, MAKE_TREE, "churn", data, "1", "7"], check=True,
                                 stdout=subprocess.PIPE, text=True).stdout.strip()
        second = ferry_backup(2)
        if e2e:
            e2e_second = e2e.backup()
            e2e_rows.append(("backup after 1 % of files changed", e2e_second[0], e2e_second[1]))
        rows.append(("backup after 1 % of files changed", second[0], restic_backup(), second[1]))
        plain.append(restic_backup(plain_repo, "--compression", "off")[1])

        expected = tree_digest(data)
        ferry_out, restic_out = os.path.join(work, "ferry-restore"), os.path.join(work, "restic-restore")
        os.makedirs(ferry_out)
        # Each restore starts with nothing dirty: a sync (ferry's, of the filesystem) would
        # otherwise pay for what the backups before it wrote.
        subprocess.run(["sync"], check=True)
        wall, _ = timed([binary, "restore", ferry_out, store, os.path.join(work, "m2"), "data"])
        subprocess.run(["sync"], check=True)
        restic_wall, _ = timed(["restic", "restore", "--quiet", "--repo", repo, "latest", "--target", restic_out],
                               env=env)
        rows.append(("full restore", wall, (restic_wall, None), None))
        # ferry syncs what it restored before it counts; restic leaves it to the kernel.
        subprocess.run(["sync"], check=True)
        durable_out = os.path.join(work, "restic-restore-synced")
        restic_synced, _ = timed(["sh", "-c", f"restic restore --quiet --repo {repo} latest --target {durable_out} && sync"],
                                 env=env)
        for name, out in (("ferry", os.path.join(ferry_out, "data")), ("restic", os.path.join(restic_out, "data"))):
            if tree_digest(out) != expected:
                sys.exit(f"{name}'s restore differs from the data")
        if e2e:
            subprocess.run(["chmod", "-R", "u+w", data], check=True)
            shutil.rmtree(data)
            subprocess.run(["sync"], check=True)
            e2e_rows.append(("full restore", e2e.restore(e2e_second[2]["id"]), None))
            if tree_digest(data) != expected:
                sys.exit("ferry's end-to-end restore differs from the data")
            e2e.stop()
        subprocess.run(["chmod", "-R", "u+w", work], check=True)

    print(f"{first[2]['files']:,} files, {size(total)} (`du -sb`), {int(churned) / 1e6:,.1f} MB rewritten "
          f"by the 1 % change ({second[2]['files_read']} files read again by ferry); both restores "
          f"checked file for file\n")
    restic_rows = {name: r for name, _, r, _ in rows}
    if e2e_rows:
        print("End to end (`ferry backup create` / `restore` against a server on loopback and an agent):\n")
        print("| step | ferry | restic | ferry / restic | ferry new bytes | restic new bytes | ferry / restic |")
        print("|---|---|---|---|---|---|---|")
        for name, wall, ferry_bytes in e2e_rows:
            restic_wall, restic_bytes = restic_rows[name]
            line = f"| {name} | {wall:.2f} s | {restic_wall:.2f} s | {wall / restic_wall:.2f} |"
            if ferry_bytes is None:
                line += " - | - | - |"
            else:
                line += f" {size(ferry_bytes)} | {size(restic_bytes)} | {ferry_bytes / restic_bytes:.2f} |"
            print(line)
        print("\nThe engine alone (`backup_bench`, a local blob store, no network):\n")
    print("| step | ferry | restic | ferry / restic | ferry new bytes | restic new bytes | ferry / restic |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, (restic_wall, restic_bytes), ferry_bytes in rows:
        line = f"| {name} | {wall:.2f} s | {restic_wall:.2f} s | {wall / restic_wall:.2f} |"
        if ferry_bytes is None:
            line += " - | - | - |"
        else:
            line += f" {size(ferry_bytes)} | {size(restic_bytes)} | {ferry_bytes / restic_bytes:.2f} |"
        print(line)
    print(f"\nrestic's full restore followed by `sync` (ferry's restores end with the data on disk): "
          f"{restic_synced:.2f} s.")
    print("\nNew bytes against restic without compression (`--compression off`, another repository, "
          "same run):\n")
    print("| step | ferry new bytes | restic new bytes, no compression | ferry / restic |")
    print("|---|---|---|---|")
    for (name, _, _, ferry_bytes), restic_bytes in zip(rows, plain):
        print(f"| {name} | {size(ferry_bytes)} | {size(restic_bytes)} | {ferry_bytes / restic_bytes:.2f} |")


if __name__ == "__main__":
    main()
