#!/usr/bin/env python3
"""Writes the seed corpora of ferry's fuzz targets (fuzz/corpus/TARGET/) from real inputs.

    python3 fuzz/seeds/make.py [--record]

- With --record, runs some of the integration tests (crates/ferry/tests/it) with every
  request of the client, the agents and the tests going through fuzz/seeds/record_proxy.py
  (HTTP_PROXY), and keeps what passed through: the JSON bodies of /api/v1 (api_bodies),
  the agent protocol's messages both ways (agent_messages), the manifests agents fetch
  (manifest) and the blob batches uploaded and fetched (frames). Needs the test binary's
  build (CARGO_TARGET_DIR as for any cargo test). Without --record, those corpora stay
  as they are.
- Always: `ferry.toml` texts from the tests' string literals and docs/ (ferry_toml); the
  code spans of README.md and docs/ (texts); freeze windows from the docs, each with a
  time (freeze); small release archives made here like the ones the tests make (tarball);
  the agent's state files as it writes them (agent_files).

Seeds are named by their BLAKE2 hash (libFuzzer's own naming style), at most a few dozen
per target and small, so the committed corpora stay under about 1 MB.
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(FUZZ)
CORPUS = os.path.join(FUZZ, "corpus")
MAX_SEED = 48 * 1024
MAX_PER_TARGET = 60

# Tests whose traffic covers releases, deployments, approvals, rollbacks, configuration,
# drift, captures, backups, support and channels.
RECORDED_TESTS = [
    "deployments::",
    "config::",
    "config_delivery::",
    "drift::",
    "drift_capture::",
    "backups::",
    "support::",
    "policy::",
    "notifications::",
    "freeze_now::",
]


def seed_name(data):
    return hashlib.blake2b(data, digest_size=20).hexdigest()


class Corpus:
    """One target's seeds, deduplicated and bounded."""

    def __init__(self, target, fresh=True):
        self.dir = os.path.join(CORPUS, target)
        if fresh and os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir, exist_ok=True)
        self.seen = set(os.listdir(self.dir))

    def add(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data or len(data) > MAX_SEED or len(self.seen) >= MAX_PER_TARGET:
            return
        name = seed_name(data)
        if name not in self.seen:
            self.seen.add(name)
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)


# ---------------------------------------------------------------------------------------
# Recorded traffic.


def record(traffic):
    port_file = os.path.join(traffic, "port")
    proxy = subprocess.Popen(
        [sys.executable, os.path.join(FUZZ, "seeds", "record_proxy.py"), port_file, traffic]
    )
    try:
        while not os.path.exists(port_file):
            time.sleep(0.1)
        port = open(port_file).read()
        env = dict(os.environ, HTTP_PROXY=f"http://127.0.0.1:{port}", NO_PROXY="")
        env.pop("http_proxy", None)
        env.pop("no_proxy", None)
        for test in RECORDED_TESTS:
            subprocess.run(
                ["cargo", "test", "-q", "-p", "ferry", "--test", "it", test],
                cwd=REPO,
                env=env,
                check=False,
            )
    finally:
        proxy.terminate()
        proxy.wait()


def exchanges(traffic):
    for name in sorted(os.listdir(traffic), key=lambda n: (len(n), n)):
        if not name.endswith(".json"):
            continue
        base = os.path.join(traffic, name[: -len(".json")])
        meta = json.load(open(base + ".json"))
        yield meta, open(base + ".req", "rb").read(), open(base + ".resp", "rb").read()


def endpoint(path):
    """The path with its names, versions and numbers left out: one kind of request."""
    parts = path.split("/")[:5]
    return "/".join(re.sub(r"^[0-9a-f]{64}$|^\d+$", "N", p) for p in parts)


def sort_traffic(traffic):
    api, agent = Corpus("api_bodies"), Corpus("agent_messages")
    manifests, frames = Corpus("manifest"), Corpus("frames")
    per_endpoint = {}

    def take(kind, meta, limit=3):
        key = (kind, meta["method"], endpoint(meta["path"]))
        per_endpoint[key] = per_endpoint.get(key, 0) + 1
        return per_endpoint[key] <= limit

    for meta, request, response in exchanges(traffic):
        path = meta["path"]
        is_agent = path.startswith("/api/v1/agent/")
        if "json" in meta["request_type"] and request and take("req", meta):
            (agent if is_agent else api).add(request)
        if is_agent and "json" in meta["response_type"] and take("resp", meta):
            agent.add(response)
        if path.startswith("/api/v1/agent/manifest/") and meta["status"] == 200:
            manifests.add(response)
        if "octet-stream" in meta["request_type"] and take("frames", meta, 12):
            frames.add(request)
        if path.endswith("/blobs/fetch") and meta["status"] == 200 and take("fetch", meta, 12):
            frames.add(response)


# ---------------------------------------------------------------------------------------
# Texts from the tests and the docs.

RUST_STRING = re.compile(r'(?<![\w#])"((?:[^"\\]|\\.)*)"', re.S)
RAW_STRING = re.compile(r'r(#+)"(.*?)"\1', re.S)


def rust_unescape(text):
    text = re.sub(r"\\\n\s*", "", text)
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), text)


def rust_strings(path):
    source = open(path, encoding="utf-8").read()
    for m in RAW_STRING.finditer(source):
        yield m.group(2)
    for m in RUST_STRING.finditer(RAW_STRING.sub("", source)):
        yield rust_unescape(m.group(1))


def rust_sources(*dirs):
    for top in dirs:
        for dirpath, _, files in os.walk(os.path.join(REPO, top)):
            for f in sorted(files):
                if f.endswith(".rs"):
                    yield os.path.join(dirpath, f)


def docs():
    pages = [os.path.join(REPO, "README.md")]
    pages += sorted(
        os.path.join(REPO, "docs", f) for f in os.listdir(os.path.join(REPO, "docs")) if f.endswith(".md")
    )
    return [open(p, encoding="utf-8").read() for p in pages]


FERRY_TOML_KEYS = re.compile(
    r"^\s*(\[(health|hooks|config)\]|(shared|backup|ignore|command|url|before_switch|after_switch|env_file|templates|required)\s*=)",
    re.M,
)


def ferry_toml():
    corpus = Corpus("ferry_toml")
    for page in docs():
        for block in re.findall(r"```toml\n(.*?)```", page, re.S):
            corpus.add(block)
    for path in rust_sources("crates/ferry/tests", "crates/ferry-cas/src", "crates/ferry-agent/src"):
        for text in rust_strings(path):
            if FERRY_TOML_KEYS.search(text) and "=" in text:
                corpus.add(text)


def code_spans():
    spans = []
    for page in docs():
        spans += re.findall(r"`([^`\n]{1,80})`", page)
    return list(dict.fromkeys(spans))


def texts():
    corpus = Corpus("texts")
    # A few of every kind first, then the rest of the docs' code spans.
    spans = code_spans()
    kinds = [
        r"^\d+(ms|s|m|h|d)",  # durations
        r"^[\d*,/-]+ [\d*,/-]+ ",  # freeze windows
        r"^[A-Z_][A-Z0-9_]*=",  # KEY=VALUE
        r"\{\{",  # templates
        r"@\d+$",  # served labels
        r"^\d+,\d+d",  # backup retention
        r"^https?://",  # URLs
        r"^(git|svn|tar|dir)\+?",  # --from sources
        r"\*",  # globs
    ]
    for kind in kinds:
        for span in [s for s in spans if re.search(kind, s)][:5]:
            corpus.add(span)
    corpus.add("1.0.0\n1.0.0-captured.1")
    corpus.add("cache/**\ncache/a/b")
    corpus.add("DATABASE_URL=postgres://db/shop\nexport MODE='a b'\n# comment\nQUOTE=\"it's\"\n")
    for span in spans:
        corpus.add(span)


def freeze():
    corpus = Corpus("freeze")
    windows = set()
    for page in docs():
        windows.update(re.findall(r"`((?:[\d*A-Z,/-]+ ){5}[\dhmsd ]+)`", page))
        windows.update(re.findall(r'--freeze "([^"]+)"', page))
    for path in rust_sources("crates/ferry-domain/src/freeze", "crates/ferry/tests/it"):
        for text in rust_strings(path):
            if re.fullmatch(r"(?:[\d*A-Za-z,/-]+ ){5}[\dhmsd ]+", text):
                windows.add(text)
    # Friday 2024-03-01 18:30 UTC, and the first moment ferry's clock can show.
    times = [1_709_317_800_000, 0]
    for i, window in enumerate(sorted(windows)):
        at = struct.pack("<q", times[i % len(times)])
        corpus.add(at + window.encode())
    at = struct.pack("<q", times[0])
    corpus.add(at + b"0 18 * * FRI 64h\nfor 2h\n0 9 * * MON-FRI 8h")
    corpus.add(at + b"until 2024-03-02 10:00\n*/30 * * * * 45m")


# ---------------------------------------------------------------------------------------
# Release archives and the agent's files, made as ferry's tests and the agent make them.


def tarball():
    corpus = Corpus("tarball")

    def archive(build, fmt=tarfile.USTAR_FORMAT):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
            build(tar)
        return out.getvalue()

    def add(tar, name, data=b"", kind=tarfile.REGTYPE, link="", mode=0o644):
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode, info.size = kind, link, mode, len(data)
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    def release(tar):
        add(tar, "app/", kind=tarfile.DIRTYPE, mode=0o755)
        add(tar, "app/index.html", b"<h1>shop</h1>\n")
        add(tar, "app/run.sh", b"#!/bin/sh\necho hi\n", mode=0o755)
        add(tar, "app/ferry.toml", b'shared = ["uploads"]\n[health]\ncommand = "true"\n')
        add(tar, "app/current", kind=tarfile.SYMTYPE, link="index.html")
        add(tar, "app/again", kind=tarfile.LNKTYPE, link="app/index.html")

    def hostile(tar):
        add(tar, "../escape", b"x")
        add(tar, "/etc/absolute", b"x")
        add(tar, "link", kind=tarfile.SYMTYPE, link="../../outside")
        add(tar, "link/through", b"x")
        add(tar, "dev", kind=tarfile.CHRTYPE)

    def long_names(tar):
        add(tar, "d/" * 60 + "file", b"deep")
        add(tar, "x" * 200, b"long")

    plain = archive(release)
    for data in [plain, archive(hostile), archive(long_names, tarfile.PAX_FORMAT)]:
        corpus.add(data)
        corpus.add(gzip.compress(data, mtime=0))
        zstd = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True)
        if zstd.returncode == 0:
            corpus.add(zstd.stdout)
    corpus.add(plain[:700])  # cut short


def agent_files():
    """The first byte picks the file (see fuzz_targets/agent_files.rs); the indexes are
    written without their checksum, which the target adds."""
    corpus = Corpus("agent_files")
    # mode, inode, size, mtime and ctime (i128: low half first), hash
    stat = lambda i: struct.pack(
        "<IQQqqqq32s", 0o644, 1000 + i, 4096 * i, 1_700_000_000_000_000_000 + i, 0,
        1_700_000_001_000_000_000 + i, 0, bytes([i]) * 32,
    )
    paths = ["bin/run", "index.html", "static/app.css"]

    def entry(path, i):
        return struct.pack("<I", len(path)) + path.encode() + stat(i)

    stat_index = b"FERRYIDX" + struct.pack("<IQ", 2, len(paths))
    stat_index += b"".join(entry(p, i) for i, p in enumerate(paths))
    corpus.add(b"\x00" + stat_index)
    backup = b"FERRYBKI" + struct.pack("<IQ", 1, 2)
    backup += entry("db/data.sqlite", 1) + struct.pack("<I", 2)
    backup += (bytes([7]) * 32 + struct.pack("<Q", 65536)) * 2
    backup += entry("uploads/a.png", 2) + struct.pack("<I", 0)
    corpus.add(b"\x01" + backup)
    journal = {
        "last_succeeded": "1.1.0@2",
        "history": [{"version": "1.0.0", "at": 1700000000}, {"version": "1.1.0@2", "at": 1700000100}],
        "bad": ["1.0.1"],
    }
    corpus.add(b"\x02" + json.dumps(journal, indent=2).encode())
    drift = {
        "version": "1.1.0@2",
        "paths": [
            {"path": "index.html", "change": "content", "first_seen_ms": 1700000000000},
            {"path": "new.txt", "change": "added", "first_seen_ms": 1700000000000},
        ],
    }
    corpus.add(b"\x03" + json.dumps(drift, indent=2).encode())


def main():
    if "--record" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as traffic:
            record(traffic)
            sort_traffic(traffic)
    ferry_toml()
    texts()
    freeze()
    tarball()
    agent_files()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
