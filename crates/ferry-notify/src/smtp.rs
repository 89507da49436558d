//! A small SMTP client (RFC 5321): one message per connection, STARTTLS (RFC 3207) through
//! rustls, AUTH PLAIN (RFC 4954), multi-line replies, a timeout on every read and write.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::channel::{Security, SmtpUrl};
use crate::{email, excerpt, Delivered, DeliveryError, Message};

/// Longest wait for any one connect, reply, write or TLS handshake.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for QUIT's answer after the message is accepted or refused is only politeness.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// RFC 5321 §4.5.3.1.5 allows 512 bytes per reply line; be generous, but bounded.
const MAX_REPLY_LINE_BYTES: usize = 4096;
const MAX_REPLY_LINES: usize = 100;

/// rustls with the ring provider and the Mozilla roots of `webpki-roots`, built once.
pub(crate) fn default_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(tls_config(roots))
        })
        .clone()
}

pub(crate) fn tls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Sends one message to `to` through `server`: connect, greeting, EHLO, STARTTLS and EHLO
/// again when asked, AUTH PLAIN when the URL has credentials, MAIL, RCPT, DATA, QUIT.
pub(crate) async fn deliver(
    server: &SmtpUrl,
    from: &str,
    to: &[String],
    message: &Message,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Delivered, DeliveryError> {
    // A message that cannot be written fails before any connection is made.
    let payload = email::dot_stuff(&email::compose(from, to, message)?);
    let shown = format!("mail server {}", server.host_port());

    let tcp = with_timeout(
        TIMEOUT,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|e| match e {
        None => DeliveryError::transient(format!(
            "cannot connect to {shown} within {} s; ferry will retry",
            TIMEOUT.as_secs()
        )),
        Some(e) => {
            DeliveryError::transient(format!("cannot connect to {shown}: {e}; ferry will retry"))
        }
    })?;
    let local = tcp
        .local_addr()
        .map_err(|e| io_error(&shown, "connecting", &e))?;
    let peer_is_loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    let helo_name = address_literal(local);

    let mut session = Session::new(tcp, shown.clone());
    // `Ok(None)`: STARTTLS accepted, the rest happens over TLS below.
    let before_tls = async {
        session.greeting().await?;
        let extensions = session.hello(&helo_name).await?;
        if server.security == Security::Plain {
            let delivered =
                transact(&mut session, &extensions, server, peer_is_loopback, from, to, &payload).await?;
            return Ok(Some(delivered));
        }
        if !extensions.has("STARTTLS") {
            return Err(DeliveryError::permanent(format!(
                "{shown} does not offer STARTTLS, and ferry does not send mail in clear text to an smtp+starttls:// URL; enable STARTTLS on the server or use another server"
            )));
        }
        session
            .expect("STARTTLS", "STARTTLS", &[220], "check the server's TLS setup or use another server")
            .await?;
        Ok(None)
    }
    .await;
    match before_tls {
        Ok(Some(delivered)) => return Ok(delivered),
        Ok(None) => {}
        Err(e) => {
            session.quit_quietly().await;
            return Err(e);
        }
    }

    let tcp = session.into_inner()?;
    let name = ServerName::try_from(server.host.clone()).map_err(|_| {
        DeliveryError::permanent(format!(
            "{:?} cannot be checked against a TLS certificate; use the server's DNS name in the smtp URL",
            server.host
        ))
    })?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let tls_stream = with_timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|e| tls_error(&shown, &server.host, e))?;
    let mut session = Session::new(tls_stream, shown);
    let result = async {
        let extensions = session.hello(&helo_name).await?;
        transact(
            &mut session,
            &extensions,
            server,
            peer_is_loopback,
            from,
            to,
            &payload,
        )
        .await
    }
    .await;
    if result.is_err() {
        session.quit_quietly().await;
    }
    result
}

/// Everything after the (last) EHLO: authentication, envelope, message, QUIT.
async fn transact<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<S>,
    extensions: &Extensions,
    server: &SmtpUrl,
    peer_is_loopback: bool,
    from: &str,
    to: &[String],
    payload: &[u8],
) -> Result<Delivered, DeliveryError> {
    if let Some((user, password)) = &server.credentials {
        // validate() refuses this already; checked again on the address actually connected.
        if server.security == Security::Plain && !peer_is_loopback {
            return Err(DeliveryError::permanent(format!(
                "{} is not on this machine and the connection is not encrypted, so ferry will not send the password; use smtp+starttls://",
                session.shown
            )));
        }
        if !extensions.auth_mechanisms().any(|m| m == "PLAIN") {
            return Err(DeliveryError::permanent(format!(
                "{} does not offer AUTH PLAIN, the only authentication ferry speaks; remove the user and password from the smtp URL or use another server",
                session.shown
            )));
        }
        let token = email::base64(format!("\0{user}\0{password}").as_bytes());
        session
            .expect(
                &format!("AUTH PLAIN {token}"),
                "AUTH PLAIN",
                &[235],
                "check the user and password in the channel's smtp URL",
            )
            .await?;
    }

    let body_8bit = if extensions.has("8BITMIME") {
        " BODY=8BITMIME"
    } else {
        ""
    };
    let mail = format!("MAIL FROM:<{from}>{body_8bit}");
    session
        .expect(
            &mail,
            &mail,
            &[250],
            "check that the server lets the channel's `from` address send mail",
        )
        .await?;
    for recipient in to {
        let rcpt = format!("RCPT TO:<{recipient}>");
        session
            .expect(
                &rcpt,
                &rcpt,
                &[250, 251],
                "check the recipient's address and that the server relays mail to it",
            )
            .await?;
    }
    session
        .expect(
            "DATA",
            "DATA",
            &[354],
            "ask the mail server's admin why it refuses messages",
        )
        .await?;
    session.write(payload, "the message").await?;
    let accepted = session.read_reply("the message").await?;
    if accepted.code != 250 {
        return Err(session.refused(
            &accepted,
            "the message",
            "the server rejected the message's content; ask the mail server's admin why",
        ));
    }
    session.quit_quietly().await;
    Ok(Delivered {
        detail: accepted.text(),
    })
}

/// One SMTP reply: a three-digit code and one or more lines of text.
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// `250 2.0.0 Ok: queued as X` (lines of a multi-line reply joined by ` / `).
    fn text(&self) -> String {
        let text = self.lines.join(" / ");
        match text.is_empty() {
            true => self.code.to_string(),
            false => format!("{} {}", self.code, excerpt(&text, 300)),
        }
    }
}

/// The service extensions an EHLO reply lists, one keyword line each, uppercase.
#[derive(Default)]
struct Extensions {
    lines: Vec<String>,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Extensions {
        Extensions {
            // The first line is the server's greeting, not an extension.
            lines: reply
                .lines
                .iter()
                .skip(1)
                .map(|l| l.to_ascii_uppercase())
                .collect(),
        }
    }

    fn has(&self, keyword: &str) -> bool {
        self.lines
            .iter()
            .any(|line| line.split_whitespace().next() == Some(keyword))
    }

    /// Mechanisms of `AUTH A B` lines, and of the older `AUTH=A B` form some servers send.
    fn auth_mechanisms(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().flat_map(|line| {
            let mechanisms = line
                .strip_prefix("AUTH ")
                .or_else(|| line.strip_prefix("AUTH="))
                .unwrap_or("");
            mechanisms.split_whitespace()
        })
    }
}

/// A connection that speaks SMTP, plain or TLS.
struct Session<S> {
    io: BufReader<S>,
    /// `mail server HOST:PORT`, for messages.
    shown: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(stream: S, shown: String) -> Session<S> {
        Session {
            io: BufReader::new(stream),
            shown,
        }
    }

    async fn greeting(&mut self) -> Result<(), DeliveryError> {
        let reply = self.read_reply("the connection").await?;
        match reply.code {
            220 => Ok(()),
            _ => Err(self.refused(
                &reply,
                "the connection",
                "the server does not accept mail from this machine; ask its admin",
            )),
        }
    }

    /// EHLO, or HELO for a server that does not know EHLO (then without extensions).
    async fn hello(&mut self, name: &str) -> Result<Extensions, DeliveryError> {
        let ehlo = format!("EHLO {name}");
        let reply = self.command(&ehlo, "EHLO").await?;
        if reply.code == 250 {
            return Ok(Extensions::from_ehlo(&reply));
        }
        if !(500..600).contains(&reply.code) {
            return Err(self.refused(&reply, "EHLO", "ask the mail server's admin"));
        }
        self.expect(
            &format!("HELO {name}"),
            "HELO",
            &[250],
            "the server refuses to talk to ferry; ask its admin",
        )
        .await?;
        Ok(Extensions::default())
    }

    /// Sends `command` and requires one of the `expected` codes; `what_to_do` completes the
    /// message of a permanent (5xx) refusal. `shown` is the command as error messages name
    /// it (AUTH must not show its credentials).
    async fn expect(
        &mut self,
        command: &str,
        shown: &str,
        expected: &[u16],
        what_to_do: &str,
    ) -> Result<Reply, DeliveryError> {
        let reply = self.command(command, shown).await?;
        if expected.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(self.refused(&reply, shown, what_to_do))
        }
    }

    async fn command(&mut self, command: &str, shown: &str) -> Result<Reply, DeliveryError> {
        let line = format!("{command}\r\n");
        self.write(line.as_bytes(), shown).await?;
        self.read_reply(shown).await
    }

    async fn write(&mut self, bytes: &[u8], shown: &str) -> Result<(), DeliveryError> {
        let stream = self.io.get_mut();
        let written = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        with_timeout(TIMEOUT, written).await.map_err(|e| match e {
            None => self.timed_out(&format!("sending {shown}")),
            Some(e) => io_error(&self.shown, &format!("sending {shown}"), &e),
        })
    }

    /// Reads one reply, all lines of a multi-line one (`250-...` up to `250 ...`).
    async fn read_reply(&mut self, after: &str) -> Result<Reply, DeliveryError> {
        let shown = self.shown.clone();
        let waiting = format!("waiting for the answer to {after}");
        let read = async {
            let mut code = None;
            let mut texts = Vec::new();
            loop {
                let line = self.read_line().await?;
                let (line_code, last, text) = parse_reply_line(&line).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "it answered {:?}, which is not an SMTP reply",
                            excerpt(&line, 80)
                        ),
                    )
                })?;
                match code {
                    None => code = Some(line_code),
                    Some(first) if first != line_code => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a multi-line reply changed its code from {first} to {line_code}"
                            ),
                        ))
                    }
                    Some(_) => {}
                }
                texts.push(text);
                if last {
                    return Ok(Reply {
                        code: line_code,
                        lines: texts,
                    });
                }
                if texts.len() >= MAX_REPLY_LINES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a reply went on for more than {MAX_REPLY_LINES} lines"),
                    ));
                }
            }
        };
        match with_timeout(TIMEOUT, read).await {
            Ok(reply) => Ok(reply),
            Err(None) => Err(self.timed_out(&waiting)),
            Err(Some(e)) if e.kind() == io::ErrorKind::InvalidData => {
                Err(DeliveryError::permanent(format!(
                    "{shown} does not speak SMTP: {e}; check the host and port of the smtp URL"
                )))
            }
            Err(Some(e)) => Err(io_error(&shown, &waiting, &e)),
        }
    }

    /// One line up to LF, without the line ending; at most [`MAX_REPLY_LINE_BYTES`].
    async fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            let buffered = self.io.fill_buf().await?;
            if buffered.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            let (taken, complete) = match buffered.iter().position(|b| *b == b'\n') {
                Some(lf_idx) => (lf_idx + 1, true),
                None => (buffered.len(), false),
            };
            line.extend_from_slice(&buffered[..taken]);
            self.io.consume(taken);
            if line.len() > MAX_REPLY_LINE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a reply line is longer than {MAX_REPLY_LINE_BYTES} bytes"),
                ));
            }
            if complete {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }

    /// QUIT, its answer and the end of the stream, ignoring failures: the outcome of the
    /// delivery is already known.
    async fn quit_quietly(&mut self) {
        let _ = with_timeout(QUIT_TIMEOUT, async {
            let stream = self.io.get_mut();
            stream.write_all(b"QUIT\r\n").await?;
            stream.flush().await?;
            let _ = self.read_line().await;
            self.io.get_mut().shutdown().await
        })
        .await;
    }

    /// The stream under the session, for the TLS handshake after STARTTLS.
    fn into_inner(self) -> Result<S, DeliveryError> {
        // Anything the server sent after its 220 to STARTTLS would be read as if it came over
        // TLS (the STARTTLS injection attack, CVE-2011-0411 and kin): refuse.
        if !self.io.buffer().is_empty() {
            return Err(DeliveryError::permanent(format!(
                "{} sent data after agreeing to STARTTLS, before the TLS handshake, which ferry refuses as a possible attack; check the network path to the server",
                self.shown
            )));
        }
        Ok(self.io.into_inner())
    }

    /// The error for a reply that is not the expected one: 4xx may pass, 5xx will not.
    fn refused(&self, reply: &Reply, shown: &str, what_to_do: &str) -> DeliveryError {
        let text = reply.text();
        match reply.code {
            400..=499 => DeliveryError::transient(format!(
                "{} answered {shown} with {text}; ferry will retry",
                self.shown
            )),
            500..=599 => DeliveryError::permanent(format!(
                "{} refused {shown}: {text}; {what_to_do}",
                self.shown
            )),
            _ => DeliveryError::permanent(format!(
                "{} answered {shown} with the unexpected {text}; check that the smtp URL names an SMTP server",
                self.shown
            )),
        }
    }

    fn timed_out(&self, doing: &str) -> DeliveryError {
        DeliveryError::transient(format!(
            "{} timed out {doing} after {} s; ferry will retry",
            self.shown,
            TIMEOUT.as_secs()
        ))
    }
}

/// `(code, is_last_line, text)` of one reply line: `250-text`, `250 text` or `250`.
fn parse_reply_line(line: &str) -> Option<(u16, bool, String)> {
    let code_text = line.get(..3)?;
    let code: u16 = code_text.parse().ok()?;
    if !(200..600).contains(&code) || !code_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match line.as_bytes().get(3) {
        None => Some((code, true, String::new())),
        Some(b' ') => Some((code, true, line[4..].to_owned())),
        Some(b'-') => Some((code, false, line[4..].to_owned())),
        Some(_) => None,
    }
}

/// The EHLO argument of a client without a DNS name: its address as an address literal.
fn address_literal(local: SocketAddr) -> String {
    match local {
        SocketAddr::V4(v4) => format!("[{}]", v4.ip()),
        SocketAddr::V6(v6) => format!("[IPv6:{}]", v6.ip()),
    }
}

/// `Err(None)` on timeout, `Err(Some(e))` on an I/O error.
async fn with_timeout<T>(
    limit: Duration,
    work: impl Future<Output = io::Result<T>>,
) -> Result<T, Option<io::Error>> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

fn io_error(shown: &str, doing: &str, error: &io::Error) -> DeliveryError {
    DeliveryError::transient(format!("{shown} failed {doing}: {error}; ferry will retry"))
}

fn tls_error(shown: &str, host: &str, error: Option<io::Error>) -> DeliveryError {
    match error {
        None => DeliveryError::transient(format!(
            "the TLS handshake with {shown} took more than {} s; ferry will retry",
            TIMEOUT.as_secs()
        )),
        // rustls reports certificate and protocol failures as InvalidData; they stay until
        // someone fixes the server's certificate or the URL.
        Some(e) if e.kind() == io::ErrorKind::InvalidData => DeliveryError::permanent(format!(
            "the TLS handshake with {shown} failed: {e}; the server needs a certificate for {host} from a public certificate authority"
        )),
        Some(e) => io_error(shown, "during the TLS handshake", &e),
    }
}

#[cfg(test)]
mod tests;
