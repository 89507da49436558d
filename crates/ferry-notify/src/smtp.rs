//! Sending one message over SMTP with lettre's async client: one connection per message,
//! STARTTLS through rustls (ring) when the URL asks for it, AUTH PLAIN only over TLS or to
//! this machine, a timeout on every step, and every failure sorted into retry later or give
//! up, naming the step that failed.
//!
//! ferry drives lettre's connection step by step rather than through its transport so that
//! it connects the TCP stream itself (to check the address actually connected to before a
//! password is sent, and to watch the plain-text part of the conversation, see [`Watched`])
//! and so that an error names the command the server refused.

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, CertificateStore, TlsParameters, TlsParametersBuilder,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use lettre::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::channel::{Security, SmtpUrl};
use crate::{email, excerpt, Delivered, DeliveryError, Message};

/// Longest wait for any one step: connect, a command and its reply, the TLS handshake.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Waiting for QUIT's answer after the message is accepted or refused is only politeness.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS for `host` with the Mozilla roots of `webpki-roots`, the same on every machine.
pub(crate) fn public_roots(host: &str) -> TlsParametersBuilder {
    TlsParameters::builder(host.to_owned()).certificate_store(CertificateStore::WebpkiRoots)
}

/// Sends one message to `to` through `server`: connect, greeting, EHLO, STARTTLS and EHLO
/// again when asked, AUTH PLAIN when the URL has credentials, MAIL, RCPT, DATA, QUIT.
pub(crate) async fn deliver(
    server: &SmtpUrl,
    from: &str,
    to: &[String],
    message: &Message,
    tls: TlsParametersBuilder,
) -> Result<Delivered, DeliveryError> {
    // A message that cannot be written fails before any connection is made.
    let from = address(from)?;
    let to = to
        .iter()
        .map(|recipient| address(recipient))
        .collect::<Result<Vec<_>, _>>()?;
    let payload = email::compose(&from, &to, message)?;
    let shown = format!("mail server {}", server.host_port());
    // lettre panics on some malformed replies (an EHLO line of nothing but spaces, in 0.11);
    // a mail server must not be able to end the caller's task, so the conversation runs in
    // a task of its own, which the JoinSet aborts if this future is dropped.
    let mut conversation = tokio::task::JoinSet::new();
    conversation.spawn(converse(
        server.clone(),
        shown.clone(),
        tls,
        from,
        to,
        payload,
    ));
    match conversation.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) if e.is_panic() => Err(DeliveryError::permanent(format!(
            "{shown} sent a reply that ferry's mail client cannot handle; check that the smtp URL names an SMTP server"
        ))),
        _ => Err(DeliveryError::transient(format!(
            "the delivery through {shown} was stopped before it finished; ferry will retry"
        ))),
    }
}

/// The conversation itself, from connect to QUIT.
async fn converse(
    server: SmtpUrl,
    shown: String,
    tls: TlsParametersBuilder,
    from: Address,
    to: Vec<Address>,
    payload: Vec<u8>,
) -> Result<Delivered, DeliveryError> {
    let tcp = match tokio::time::timeout(
        TIMEOUT,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(DeliveryError::transient(format!(
                "cannot connect to {shown}: {e}; ferry will retry"
            )))
        }
        Err(_) => {
            return Err(DeliveryError::transient(format!(
                "cannot connect to {shown} within {} s; ferry will retry",
                TIMEOUT.as_secs()
            )))
        }
    };
    let local = tcp.local_addr().map_err(|e| {
        DeliveryError::transient(format!("{shown} failed connecting: {e}; ferry will retry"))
    })?;
    let peer_is_loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    let hello_name = address_literal(local);
    let watch = Arc::new(Watch::default());
    let watched = Watched::new(tcp, watch.clone());

    let mut session = Session {
        shown,
        host: server.host.clone(),
        hello_name,
        peer_is_loopback,
        watch,
        stream_lost: false,
    };
    let connected = step(AsyncSmtpConnection::connect_with_transport(
        Box::new(watched),
        &session.hello_name,
    ))
    .await;
    let mut connection = match connected {
        Ok(connection) => connection,
        Err(failure) => {
            // Nothing sent yet: the greeting was refused; otherwise EHLO was.
            let (doing, what_to_do) = match session.watch.sent_any.load(Ordering::SeqCst) {
                false => (
                    "the connection",
                    "the server does not accept mail from this machine; ask its admin",
                ),
                true => (
                    "EHLO",
                    "ferry speaks ESMTP only (no HELO); ask the mail server's admin or use another server",
                ),
            };
            return Err(session.failed(doing, failure, what_to_do));
        }
    };
    let result = session
        .transact(&mut connection, &server, tls, &from, &to, &payload)
        .await;
    if !session.stream_lost {
        // The outcome is known; QUIT's answer changes nothing.
        let _ = tokio::time::timeout(QUIT_TIMEOUT, async {
            match result {
                Ok(_) => drop(connection.quit().await),
                Err(_) => connection.abort().await,
            }
        })
        .await;
    }
    result
}

/// One step of lettre's client that did not succeed.
enum Failure {
    Smtp(SmtpError),
    TimedOut,
}

/// Runs one step of lettre's client within [`TIMEOUT`].
async fn step<T>(work: impl Future<Output = Result<T, SmtpError>>) -> Result<T, Failure> {
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Smtp(e)),
        Err(_) => Err(Failure::TimedOut),
    }
}

/// What the steps after connecting need to know about the connection.
struct Session {
    /// `mail server HOST:PORT`, for messages.
    shown: String,
    host: String,
    /// This end's address, the argument of EHLO.
    hello_name: ClientId,
    /// Whether the address actually connected to is on this machine.
    peer_is_loopback: bool,
    watch: Arc<Watch>,
    /// lettre's connection has no stream left to say QUIT on.
    stream_lost: bool,
}

impl Session {
    /// Everything after the first EHLO: STARTTLS, authentication, envelope, message.
    async fn transact(
        &mut self,
        connection: &mut AsyncSmtpConnection,
        server: &SmtpUrl,
        tls: TlsParametersBuilder,
        from: &Address,
        to: &[Address],
        payload: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        if server.security == Security::StartTls {
            if !connection.can_starttls() {
                return Err(DeliveryError::permanent(format!(
                    "{} does not offer STARTTLS, and ferry does not send mail in clear text to an smtp+starttls:// URL; enable STARTTLS on the server or use another server",
                    self.shown
                )));
            }
            let tls = tls.build_rustls().map_err(|e| {
                DeliveryError::permanent(format!(
                    "ferry cannot set up TLS for {}: {e}; check the host of the smtp URL",
                    self.shown
                ))
            })?;
            step(connection.starttls(tls, &self.hello_name))
                .await
                .map_err(|failure| {
                    // A handshake that failed or was cut short took the stream with it.
                    self.stream_lost =
                        !matches!(&failure, Failure::Smtp(e) if e.status().is_some());
                    self.failed(
                        "STARTTLS",
                        failure,
                        "check the server's TLS setup or use another server",
                    )
                })?;
        }

        if let Some((user, password)) = &server.credentials {
            // validate() refuses this already; checked again on the connection as it is.
            if !connection.is_encrypted() && !self.peer_is_loopback {
                return Err(DeliveryError::permanent(format!(
                    "{} is not on this machine and the connection is not encrypted, so ferry will not send the password; use smtp+starttls://",
                    self.shown
                )));
            }
            if !connection
                .server_info()
                .supports_auth_mechanism(Mechanism::Plain)
            {
                return Err(DeliveryError::permanent(format!(
                    "{} does not offer AUTH PLAIN, the only authentication ferry speaks; remove the user and password from the smtp URL or use another server",
                    self.shown
                )));
            }
            let credentials = Credentials::new(user.clone(), password.clone());
            step(connection.auth(&[Mechanism::Plain], &credentials))
                .await
                .map_err(|failure| {
                    self.failed(
                        "AUTH PLAIN",
                        failure,
                        "check the user and password in the channel's smtp URL",
                    )
                })?;
        }

        let mut parameters = Vec::new();
        if connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = format!("MAIL FROM:<{from}>");
        step(connection.command(Mail::new(Some(from.clone()), parameters)))
            .await
            .map_err(|failure| {
                self.failed(
                    &mail,
                    failure,
                    "check that the server lets the channel's `from` address send mail",
                )
            })?;
        for recipient in to {
            let rcpt = format!("RCPT TO:<{recipient}>");
            step(connection.command(Rcpt::new(recipient.clone(), Vec::new())))
                .await
                .map_err(|failure| {
                    self.failed(
                        &rcpt,
                        failure,
                        "check the recipient's address and that the server relays mail to it",
                    )
                })?;
        }
        step(connection.command(Data)).await.map_err(|failure| {
            self.failed(
                "DATA",
                failure,
                "ask the mail server's admin why it refuses messages",
            )
        })?;
        let accepted = step(connection.message(payload)).await.map_err(|failure| {
            self.failed(
                "the message",
                failure,
                "the server rejected the message's content; ask the mail server's admin why",
            )
        })?;
        Ok(Delivered {
            detail: reply_text(&accepted),
        })
    }

    /// Sorts a failed step into retry later (4xx replies, timeouts, a lost connection) or give
    /// up (5xx replies, a peer that does not speak SMTP, a certificate that does not verify).
    /// `what_to_do` completes the message of a 5xx refusal.
    fn failed(&self, doing: &str, failure: Failure, what_to_do: &str) -> DeliveryError {
        let shown = &self.shown;
        let error = match failure {
            Failure::TimedOut => {
                return DeliveryError::transient(format!(
                    "{shown} timed out during {doing} after {} s; ferry will retry",
                    TIMEOUT.as_secs()
                ))
            }
            Failure::Smtp(error) => error,
        };
        if let Some(code) = error.status() {
            let reply = match error.source() {
                Some(text) => format!("{code} {}", excerpt(&text.to_string(), 300)),
                None => code.to_string(),
            };
            return match error.is_transient() {
                true => DeliveryError::transient(format!(
                    "{shown} answered {doing} with {reply}; ferry will retry"
                )),
                false => DeliveryError::permanent(format!(
                    "{shown} refused {doing}: {reply}; {what_to_do}"
                )),
            };
        }
        if self.watch.injected.load(Ordering::SeqCst) {
            return DeliveryError::permanent(format!(
                "{shown} sent data after agreeing to STARTTLS, before the TLS handshake, which ferry refuses as a possible attack; check the network path to the server"
            ));
        }
        let detail = excerpt(&chain(&error), 300);
        if self.watch.closed.load(Ordering::SeqCst) {
            return DeliveryError::transient(format!(
                "{shown} closed the connection during {doing}; ferry will retry"
            ));
        }
        if error.is_response() {
            return DeliveryError::permanent(format!(
                "{shown} does not speak SMTP: {detail}; check the host and port of the smtp URL"
            ));
        }
        let io_error = io_error_in(&error);
        if doing == "STARTTLS" {
            // rustls reports certificate and protocol failures as InvalidData; they stay
            // until someone fixes the server's certificate or the URL.
            return match io_error.map(io::Error::kind) {
                Some(io::ErrorKind::InvalidData) | None => DeliveryError::permanent(format!(
                    "the TLS handshake with {shown} failed: {detail}; the server needs a certificate for {} from a public certificate authority",
                    self.host
                )),
                Some(_) => DeliveryError::transient(format!(
                    "{shown} failed during the TLS handshake: {detail}; ferry will retry"
                )),
            };
        }
        match io_error {
            Some(_) => DeliveryError::transient(format!(
                "{shown} failed during {doing}: {detail}; ferry will retry"
            )),
            // A client-side refusal of lettre's, e.g. a reply it cannot use.
            None => DeliveryError::permanent(format!(
                "{shown} failed during {doing}: {detail}; check the smtp URL or use another server"
            )),
        }
    }
}

/// `250 2.0.0 Ok: queued as X` (lines of a multi-line reply joined by ` / `).
fn reply_text(reply: &Response) -> String {
    let text = reply.message().collect::<Vec<_>>().join(" / ");
    match text.is_empty() {
        true => reply.code().to_string(),
        false => format!("{} {}", reply.code(), excerpt(&text, 300)),
    }
}

/// The error and its sources, `: `-separated, without lettre's kind prefix repeated.
fn chain(error: &SmtpError) -> String {
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    match parts.is_empty() {
        true => error.to_string(),
        false => parts.join(": "),
    }
}

/// The I/O error under a lettre error, if any.
fn io_error_in(error: &SmtpError) -> Option<&io::Error> {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io_error) = e.downcast_ref::<io::Error>() {
            return Some(io_error);
        }
        source = e.source();
    }
    None
}

fn address(text: &str) -> Result<Address, DeliveryError> {
    text.parse().map_err(|e| {
        DeliveryError::permanent(format!(
            "the channel is not valid: {text:?} is not an e-mail address ({e}); use a plain address such as ops@example.com"
        ))
    })
}

/// The EHLO argument of a client without a DNS name: its address as an address literal.
fn address_literal(local: SocketAddr) -> ClientId {
    match local {
        SocketAddr::V4(v4) => ClientId::Ipv4(*v4.ip()),
        SocketAddr::V6(v6) => ClientId::Ipv6(*v6.ip()),
    }
}

/// What [`Watched`] saw, for the error messages after lettre gave up.
#[derive(Debug, Default)]
struct Watch {
    /// Anything was written: the greeting had come.
    sent_any: AtomicBool,
    /// The server sent data after its reply to STARTTLS, before the handshake.
    injected: AtomicBool,
    /// The server closed the connection.
    closed: AtomicBool,
}

/// Where the conversation is, as far as the bytes on the wire tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Plain,
    /// STARTTLS written; its reply comes next, then the TLS handshake.
    StarttlsSent,
    /// Bytes are TLS records (or the conversation goes on in plain text after a refused
    /// STARTTLS): passed through as they are.
    Through,
}

/// The TCP stream under lettre's client. Before TLS it hands lettre one line per read, so
/// that whatever the server sent after its reply to STARTTLS stays here rather than in
/// lettre's buffer, where lettre would take it for a reply received over TLS (the STARTTLS
/// injection attack, CVE-2011-0411 and kin); the handshake's first write then fails.
#[derive(Debug)]
struct Watched {
    tcp: TcpStream,
    /// Read from `tcp`, not yet handed to lettre.
    pending: Vec<u8>,
    phase: Phase,
    watch: Arc<Watch>,
}

impl Watched {
    fn new(tcp: TcpStream, watch: Arc<Watch>) -> Watched {
        Watched {
            tcp,
            pending: Vec::new(),
            phase: Phase::Plain,
            watch,
        }
    }
}

impl AsyncTokioStream for Watched {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.pending.is_empty() {
            if this.phase == Phase::Through {
                let before = buf.filled().len();
                let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
                if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() == before {
                    this.watch.closed.store(true, Ordering::SeqCst);
                }
                return polled;
            }
            let mut chunk = [0u8; 4096];
            let mut chunk = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.tcp).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(())) if chunk.filled().is_empty() => {
                    this.watch.closed.store(true, Ordering::SeqCst);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => this.pending.extend_from_slice(chunk.filled()),
                other => return other,
            }
        }
        let line_len = match this.phase {
            Phase::Through => this.pending.len(),
            _ => this
                .pending
                .iter()
                .position(|b| *b == b'\n')
                .map_or(this.pending.len(), |lf_idx| lf_idx + 1),
        };
        let n = line_len.min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.sent_any.store(true, Ordering::SeqCst);
        match this.phase {
            Phase::Plain if bytes.eq_ignore_ascii_case(b"STARTTLS\r\n") => {
                this.phase = Phase::StarttlsSent;
            }
            // The first write after STARTTLS's reply: the TLS handshake, or QUIT after a
            // refusal. Nothing may be waiting from the server by then.
            Phase::StarttlsSent => {
                if !this.pending.is_empty() {
                    this.watch.injected.store(true, Ordering::SeqCst);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent data after agreeing to STARTTLS",
                    )));
                }
                this.phase = Phase::Through;
            }
            _ => {}
        }
        Pin::new(&mut this.tcp).poll_write(cx, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
