//! A real S3-compatible service for the tests: moto's server (`python3 -m pip install
//! 'moto[server]'`), started on a free port with a bucket, plus plain HTTP calls to look at
//! and tamper with its objects, and a gate in front of it that can close like a stopped
//! service and open again on the same port.
//!
//! Where moto is not installed the S3 tests say so on stderr and pass, except under CI
//! (`CI` set), where `.ci/run` installs it and its absence fails them.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket every test's service has.
pub const BUCKET: &str = "ferry-blobs";

/// A moto server process, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free port and creates [`BUCKET`]; `None` (having said so) where moto
    /// is not installed, unless `FERRY_TEST_REQUIRE_S3` is set (as `.ci/run` sets it).
    pub fn start() -> Option<Moto> {
        if !installed() {
            assert!(
                std::env::var_os("FERRY_TEST_REQUIRE_S3").is_none(),
                "moto is not installed, and CI must run the S3 tests: .ci/run installs it (python3 -m pip install 'moto[server]')"
            );
            // Straight to stderr, past the test harness's capture, so it is seen.
            let _ = std::io::stderr().write_all(
                b"S3 backend skipped: moto is not installed (python3 -m pip install 'moto[server]')\n",
            );
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/", b"").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, _) = moto.request("PUT", &format!("/{BUCKET}"), b"");
        assert_eq!(status, 200, "creating the bucket");
        Some(moto)
    }

    /// The environment a `ferry server` needs to reach this service at `port` (moto's own,
    /// or a gate's in front of it).
    pub fn env(port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ]
    }

    /// One plain HTTP request.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        http(self.port, method, path, body).expect("moto answers")
    }

    /// The keys in the bucket under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.request(
            "GET",
            &format!("/{BUCKET}?list-type=2&max-keys=100000&prefix={prefix}"),
            b"",
        );
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        text.split("<Key>")
            .skip(1)
            .map(|rest| rest[..rest.find("</Key>").unwrap()].to_owned())
            .collect()
    }

    /// An object's content, `None` if there is none.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.request("GET", &format!("/{BUCKET}/{key}"), b"") {
            (200, body) => Some(body),
            (404, _) => None,
            (status, _) => panic!("GET {key}: {status}"),
        }
    }

    pub fn put(&self, key: &str, content: &[u8]) {
        let (status, _) = self.request("PUT", &format!("/{BUCKET}/{key}"), content);
        assert_eq!(status, 200, "PUT {key}");
    }

    pub fn delete(&self, key: &str) {
        let (status, _) = self.request("DELETE", &format!("/{BUCKET}/{key}"), b"");
        assert_eq!(status, 204, "DELETE {key}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether moto's server can run here.
fn installed() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP/1.0 request to 127.0.0.1:`port` (one connection, read to its end): the status
/// and body, or `None` when nothing answers. It names an access key, as moto wants for
/// objects, with a signature moto does not check.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&answer[..end])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, answer[end + 4..].to_vec()))
}

/// A TCP gate in front of a service: forwards connections while open; closing it (by hand,
/// or once `close_after` bytes went upstream) cuts every connection and stops listening,
/// as a service that stopped; opening it listens on the same port again.
pub struct Gate {
    pub port: u16,
    upstream: u16,
    shared: Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    open: AtomicBool,
    /// Bytes sent upstream since the gate last opened.
    upstream_bytes: AtomicU64,
    /// Close once this many bytes went upstream.
    close_after: AtomicU64,
    connections: Mutex<Vec<TcpStream>>,
}

impl GateState {
    fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

impl Gate {
    /// An open gate on a free port in front of 127.0.0.1:`upstream`.
    pub fn open_to(upstream: u16) -> Gate {
        let gate = Gate {
            port: free_port(),
            upstream,
            shared: Arc::default(),
        };
        gate.open();
        gate
    }

    /// Starts listening (again) and forwarding.
    pub fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let shared = self.shared.clone();
        shared.upstream_bytes.store(0, Ordering::SeqCst);
        shared.close_after.store(u64::MAX, Ordering::SeqCst);
        shared.open.store(true, Ordering::SeqCst);
        let upstream = self.upstream;
        std::thread::spawn(move || {
            while shared.open.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut connections = shared.connections.lock().unwrap();
                    connections.push(client.try_clone().unwrap());
                    connections.push(server.try_clone().unwrap());
                }
                let (from_client, to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counting = shared.clone();
                std::thread::spawn(move || pump(from_client, to_server, Some(&counting)));
                std::thread::spawn(move || pump(server, client, None));
            }
            // The listener is dropped here: connecting is refused until the gate opens.
        });
    }

    /// Closes the gate once `bytes` more have gone upstream.
    pub fn close_after(&self, bytes: u64) {
        let sent = self.shared.upstream_bytes.load(Ordering::SeqCst);
        self.shared
            .close_after
            .store(sent + bytes, Ordering::SeqCst);
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Copies `from` to `to` until either ends; counts bytes going upstream and closes the gate
/// past its limit.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: Option<&GateState>) {
    let mut buffer = [0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 || to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if let Some(gate) = upstream {
            let total = gate.upstream_bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= gate.close_after.load(Ordering::SeqCst) {
                gate.close();
                return;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
