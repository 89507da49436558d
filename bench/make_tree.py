#!/usr/bin/env python3
"""Builds the benchmark tree: 10,000 files, about 200 MB, mixed sizes, three files over
20 MB, half random and half compressible content; or churns an existing tree.

    make_tree.py create DIR [FILES [MB]]    FILES files (10,000), MB megabytes (200)
    make_tree.py churn DIR PERCENT SEED     prints the bytes written
    make_tree.py edit FILE OFFSET LENGTH SEED   overwrites LENGTH bytes in place
"""
import os
import random
import sys

WORDS = b"release deploy rollback hotfix backport incident pipeline approve freeze audit ".split()


def content(rng, size):
    if rng.random() < 0.5:
        return rng.randbytes(size)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(WORDS) + b" "
    return bytes(out[:size])


def create(root, n_files, seed, megabytes=200):
    rng = random.Random(seed)
    scale_big = megabytes / 200
    big = [int(mib * scale_big) * 1024 * 1024 for mib in (25, 22, 21)]
    remaining = megabytes * 1000 * 1000 - sum(big)
    small = [int(rng.lognormvariate(8.3, 1.2)) + 1 for _ in range(n_files - len(big))]
    scale = remaining / sum(small)
    sizes = [max(1, int(s * scale)) for s in small] + big
    for i, size in enumerate(sizes):
        path = os.path.join(root, f"d{i % 97:02d}", f"s{i % 13}", f"file{i:05d}.dat")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(rng, size))


def all_files(root):
    files = []
    for dirpath, _, names in os.walk(root):
        files.extend(os.path.join(dirpath, n) for n in names)
    return sorted(files)


def churn(root, percent, seed):
    rng = random.Random(seed)
    files = all_files(root)
    chosen = rng.sample(files, max(1, len(files) * percent // 100))
    written = 0
    for path in chosen:
        size = os.path.getsize(path)
        with open(path, "wb") as f:
            f.write(content(rng, size))
        written += size
    print(written)


def edit(path, offset, length, seed):
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(rng.randbytes(length))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "create":
        create(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10_000, 1,
               int(sys.argv[4]) if len(sys.argv) > 4 else 200)
    elif command == "churn":
        churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "edit":
        edit(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
