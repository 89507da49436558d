//! Real notification receivers for the tests: an HTTP server that records webhook posts and
//! an SMTP sink that records mail. Blocking std only (a thread per connection, read timeouts
//! everywhere) so that a misbehaving client can fail a test but never hang it.

// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a connection may stay silent before the receiver drops it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head or SMTP line accepted; more is a client bug, not a notification.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest webhook body or mail accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Accepts connections on 127.0.0.1:0, each handled on its own thread, until dropped.
struct Acceptor {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Acceptor {
    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver on 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        let handle = Arc::new(handle);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
                let handle = handle.clone();
                thread::spawn(move || handle(stream));
            }
        });
        Acceptor { addr, stopped }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Polls `items` until it holds at least `n`, or panics after `timeout`.
fn wait_for_items<T: Clone>(
    items: &Mutex<Vec<T>>,
    n: usize,
    timeout: Duration,
    what: &str,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = items.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        if Instant::now() >= deadline {
            panic!("expected {n} {what} within {timeout:?}, got {}", now.len());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// Webhooks

/// One webhook request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The raw body bytes (what the signature covers).
    pub body: Vec<u8>,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every POST with a settable status and
/// records it. Requests must carry Content-Length (chunked ones get 411); every answer
/// closes the connection.
pub struct WebhookReceiver {
    acceptor: Acceptor,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl WebhookReceiver {
    /// Starts a receiver answering `status` to every POST.
    pub fn start(status: u16) -> WebhookReceiver {
        let status = Arc::new(AtomicU16::new(status));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (answer, record) = (status.clone(), received.clone());
        let acceptor = Acceptor::start(move |stream| {
            let _ = serve_http(stream, &answer, &record);
        });
        WebhookReceiver {
            acceptor,
            status,
            received,
        }
    }

    /// The URL to configure as the webhook channel's `url`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.acceptor.addr)
    }

    /// The requests recorded so far, oldest first.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived and returns all of them; panics after
    /// `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        wait_for_items(&self.received, n, timeout, "webhook requests")
    }

    /// Changes the status answered to the following POSTs.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

fn serve_http(
    stream: TcpStream,
    status: &AtomicU16,
    received: &Mutex<Vec<Received>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut head_bytes = 0;
    let mut request_line = String::new();
    head_bytes += reader.read_line(&mut request_line)?;
    let method = request_line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();

    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        head_bytes += n;
        if n == 0 || head_bytes > MAX_HEAD_BYTES {
            return answer(&mut writer, 400);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return answer(&mut writer, 400);
        };
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }

    if method != "POST" {
        return answer(&mut writer, 405);
    }
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        return answer(&mut writer, 411);
    }
    let Some(length) = headers.get("content-length").map(|l| l.parse::<usize>()) else {
        return answer(&mut writer, 411);
    };
    let Ok(length) = length else {
        return answer(&mut writer, 400);
    };
    if length > MAX_BODY_BYTES {
        return answer(&mut writer, 413);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    // Recorded before answering: once the client has its answer, the test sees the request.
    received.lock().unwrap().push(Received { headers, body });
    answer(&mut writer, status.load(Ordering::SeqCst))
}

/// What a webhook receiver says with a refusal (4xx, 5xx): ferry's delivery log must keep
/// the status only, never this.
pub const REFUSAL_BODY: &str = "stack trace: db password hunter2 at 10.1.2.3";

fn answer(writer: &mut TcpStream, status: u16) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let body = if status >= 400 { REFUSAL_BODY } else { "" };
    write!(
        writer,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    writer.flush()
}

/// Whether `header` (an `X-Ferry-Signature` value, `sha256=<hex>`) is the HMAC-SHA256 of
/// `body` under `secret`; checked with ring directly, independently of ferry's own code.
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

// ---------------------------------------------------------------------------------------
// E-mail

/// One mail as the SMTP sink got it.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The envelope sender (MAIL FROM), without angle brackets.
    pub from: String,
    /// The envelope recipients (RCPT TO), without angle brackets.
    pub to: Vec<String>,
    /// Headers and body with CRLF line endings, dot-stuffing undone.
    pub data: String,
}

/// An SMTP server on 127.0.0.1 that accepts every mail (without TLS; AUTH PLAIN is accepted
/// whatever the credentials) and records it.
pub struct SmtpSink {
    acceptor: Acceptor,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    /// Starts a sink.
    pub fn start() -> SmtpSink {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let record = mails.clone();
        let acceptor = Acceptor::start(move |stream| {
            let _ = serve_smtp(stream, &record);
        });
        SmtpSink { acceptor, mails }
    }

    /// The URL to configure as the e-mail channel's `smtp`: `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.acceptor.addr)
    }

    /// Waits until at least `n` mails arrived and returns all of them; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        wait_for_items(&self.mails, n, timeout, "mails")
    }
}

fn serve_smtp(stream: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    smtp_reply(&mut writer, "220 sink.test ESMTP")?;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let Some(line) = read_smtp_line(&mut reader)? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let address = || {
            let start = line.find('<').map_or(0, |at| at + 1);
            let end = line.rfind('>').unwrap_or(line.len()).max(start);
            line[start..end].to_owned()
        };
        if upper.starts_with("EHLO") {
            smtp_reply(
                &mut writer,
                "250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 16777216",
            )?;
        } else if upper.starts_with("HELO") {
            smtp_reply(&mut writer, "250 sink.test")?;
        } else if upper.starts_with("AUTH PLAIN") {
            smtp_reply(&mut writer, "235 2.7.0 authenticated")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address();
            to.clear();
            smtp_reply(&mut writer, "250 2.1.0 ok")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(address());
            smtp_reply(&mut writer, "250 2.1.5 ok")?;
        } else if upper == "DATA" {
            if to.is_empty() {
                smtp_reply(&mut writer, "503 5.5.1 no recipients")?;
                continue;
            }
            smtp_reply(&mut writer, "354 end with <CRLF>.<CRLF>")?;
            let mut data = String::new();
            loop {
                let Some(line) = read_smtp_line(&mut reader)? else {
                    return Ok(());
                };
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
                if data.len() > MAX_BODY_BYTES {
                    smtp_reply(&mut writer, "552 5.3.4 message too big")?;
                    return Ok(());
                }
            }
            // Recorded before answering: once the client has its 250, the test sees the mail.
            mails.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            smtp_reply(&mut writer, "250 2.0.0 queued as SINK")?;
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            smtp_reply(&mut writer, "250 2.0.0 ok")?;
        } else if upper == "NOOP" {
            smtp_reply(&mut writer, "250 2.0.0 ok")?;
        } else if upper == "QUIT" {
            smtp_reply(&mut writer, "221 2.0.0 bye")?;
            return Ok(());
        } else {
            smtp_reply(&mut writer, "502 5.5.2 command not implemented")?;
        }
    }
}

fn smtp_reply(writer: &mut TcpStream, text: &str) -> std::io::Result<()> {
    writer.write_all(text.as_bytes())?;
    writer.write_all(b"\r\n")?;
    writer.flush()
}

/// One line without its CRLF (or bare LF); `None` at the end of the stream.
fn read_smtp_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_HEAD_BYTES as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}
