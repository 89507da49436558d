//! STARTTLS against a real TLS server with a test certificate, which needs the crate-private
//! way to trust it. The plain SMTP conversation is tested through the public API in
//! `tests/deliver/email.rs`.

use std::sync::Mutex;

use lettre::transport::smtp::client::Certificate;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// What the test server does when the client asks for STARTTLS.
#[derive(Clone, Copy, PartialEq)]
enum Starttls {
    /// Not offered in EHLO.
    Absent,
    /// Offered and done.
    Offered,
    /// Offered, but a forged reply follows the 220 before the handshake.
    Injected,
}

struct TestServer {
    url: String,
    commands: Arc<Mutex<Vec<String>>>,
    /// The server's certificate, to trust it alone.
    certificate: CertificateDer<'static>,
}

impl TestServer {
    /// TLS that trusts the test server's certificate and nothing else.
    fn trusted(&self) -> TlsParametersBuilder {
        let certificate = Certificate::from_der(self.certificate.to_vec()).unwrap();
        TlsParameters::builder("localhost".to_owned())
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificate)
    }
}

/// A one-connection SMTP server on 127.0.0.1 with a certificate for `localhost`.
async fn start_server(starttls: Starttls) -> TestServer {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(tcp);
        plain
            .get_mut()
            .write_all(b"220 test ESMTP\r\n")
            .await
            .unwrap();
        let ehlo: &[&str] = match starttls {
            Starttls::Absent => &["test", "8BITMIME"],
            _ => &["test", "STARTTLS"],
        };
        if !converse(&mut plain, &log, ehlo).await {
            return;
        }
        let reply: &[u8] = match starttls {
            Starttls::Injected => b"220 go ahead\r\n250 forged\r\n",
            _ => b"220 go ahead\r\n",
        };
        plain.get_mut().write_all(reply).await.unwrap();
        let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
            log.lock().unwrap().push("handshake failed".to_owned());
            return;
        };
        let mut tls = BufReader::new(tls);
        converse(&mut tls, &log, &["test", "AUTH LOGIN PLAIN", "8BITMIME"]).await;
    });
    TestServer {
        url: format!("smtp+starttls://ferry:s3cret@localhost:{port}"),
        commands,
        certificate: cert_der,
    }
}

/// Answers commands until QUIT or the end of the stream (returning false) or STARTTLS
/// (returning true, unanswered).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    log: &Mutex<Vec<String>>,
    ehlo: &[&str],
) -> bool {
    let mut in_data = false;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return false;
        }
        let line = line.trim_end_matches("\r\n").to_owned();
        if in_data {
            if line == "." {
                in_data = false;
                io.get_mut()
                    .write_all(b"250 2.0.0 queued as TLS1\r\n")
                    .await
                    .unwrap();
            }
            continue;
        }
        log.lock().unwrap().push(line.clone());
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => {
                let mut reply = String::new();
                for (line_idx, text) in ehlo.iter().enumerate() {
                    let separator = if line_idx + 1 == ehlo.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{separator}{text}\r\n"));
                }
                reply
            }
            "STARTTLS" => return true,
            "AUTH" => "235 2.7.0 ok\r\n".to_owned(),
            "MAIL" | "RCPT" => "250 ok\r\n".to_owned(),
            "DATA" => {
                in_data = true;
                "354 go on\r\n".to_owned()
            }
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return false;
            }
            _ => "500 what?\r\n".to_owned(),
        };
        io.get_mut().write_all(reply.as_bytes()).await.unwrap();
    }
}

fn message() -> Message {
    Message {
        id: "d-1".to_owned(),
        event: "deployment.succeeded".to_owned(),
        subject: "shop 1.2.3 is live in prd".to_owned(),
        text: "deployed by ana".to_owned(),
        data: serde_json::json!({}),
        sent_at_ms: 1_700_000_000_000,
    }
}

async fn send(server: &TestServer, tls: TlsParametersBuilder) -> Result<Delivered, DeliveryError> {
    let url = SmtpUrl::parse(&server.url).unwrap();
    let to = ["ops@example.com".to_owned()];
    deliver(&url, "ferry@example.com", &to, &message(), tls).await
}

#[tokio::test]
async fn starttls_then_ehlo_again_then_auth_plain_over_tls() {
    let server = start_server(Starttls::Offered).await;
    let delivered = send(&server, server.trusted()).await.unwrap();
    assert_eq!(delivered.detail, "250 2.0.0 queued as TLS1");
    let commands = server.commands.lock().unwrap().clone();
    let verbs: Vec<&str> = commands
        .iter()
        .map(|c| c.split([' ', ':']).next().unwrap())
        .collect();
    assert_eq!(
        verbs,
        ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    // base64 of "\0ferry\0s3cret"
    assert_eq!(commands[3], "AUTH PLAIN AGZlcnJ5AHMzY3JldA==");
    assert_eq!(commands[4], "MAIL FROM:<ferry@example.com> BODY=8BITMIME");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_permanent_error() {
    let server = start_server(Starttls::Offered).await;
    let error = send(&server, public_roots("localhost")).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("TLS handshake"), "{error}");
    let commands = server.commands.lock().unwrap().clone();
    assert!(
        !commands.iter().any(|c| c.starts_with("AUTH")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn a_server_without_starttls_gets_no_message() {
    let server = start_server(Starttls::Absent).await;
    let error = send(&server, server.trusted()).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("does not offer STARTTLS"), "{error}");
    let commands = server.commands.lock().unwrap().clone();
    assert!(
        !commands.iter().any(|c| c.starts_with("MAIL")),
        "{commands:?}"
    );
}

/// Regression guard for the STARTTLS command-injection class (CVE-2011-0411): data sent
/// before the handshake must not be taken as a reply received over TLS.
#[tokio::test]
async fn data_injected_before_the_handshake_is_refused() {
    let server = start_server(Starttls::Injected).await;
    let error = send(&server, server.trusted()).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("possible attack"), "{error}");
}
