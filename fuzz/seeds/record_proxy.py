#!/usr/bin/env python3
"""A plain-HTTP forward proxy that records what passes through it, for fuzz seeds.

    record_proxy.py PORT_FILE TRAFFIC_DIR

Listens on a free port of 127.0.0.1 (written to PORT_FILE once it listens), forwards every
request (`HTTP_PROXY=http://127.0.0.1:PORT`) and writes each exchange to TRAFFIC_DIR as
`N.req` and `N.resp` (the bodies) with `N.json` (method, path, status, content types).
Runs until it is terminated. `fuzz/seeds/make` sorts what it recorded into the corpora.
"""

import http.client
import http.server
import itertools
import json
import os
import sys
import threading
import urllib.parse

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


def read_chunked(stream):
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = itertools.count()
    lock = threading.Lock()
    traffic = "."

    def log_message(self, *args):
        pass

    def relay(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        url = urllib.parse.urlsplit(self.path)
        path = url.path + (f"?{url.query}" if url.query else "")
        upstream = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
        except OSError:
            # The server stopped (a test ended) while the request waited: nothing to keep.
            self.close_connection = True
            return
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)
        self.close_connection = True
        with Recorder.lock:
            n = next(Recorder.counter)
        base = os.path.join(Recorder.traffic, str(n))
        with open(base + ".req", "wb") as f:
            f.write(body)
        with open(base + ".resp", "wb") as f:
            f.write(answer)
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "method": self.command,
                    "path": url.path,
                    "status": response.status,
                    "request_type": self.headers.get("Content-Type", ""),
                    "response_type": response.getheader("Content-Type", ""),
                },
                f,
            )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay


def main():
    port_file, traffic = sys.argv[1], sys.argv[2]
    os.makedirs(traffic, exist_ok=True)
    Recorder.traffic = traffic
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
