//! Webhooks against a real axum receiver that checks every signature with `verify`.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ferry_notify::{deliver, sign, verify, webhook_body, Channel, SIGNATURE_HEADER};
use tokio::net::TcpListener;

use crate::{closed_port, message, SECRET};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    signature_ok: bool,
}

struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct ReceiverState {
    secret: &'static str,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// An HTTP receiver on 127.0.0.1:0 that checks `X-Ferry-Signature` with [`verify`] under
/// `secret` (answering 401 when it does not match) and otherwise answers `status`, with a
/// reply body that must never reach the delivery log.
async fn start_receiver(secret: &'static str, status: u16) -> Receiver {
    let state = ReceiverState {
        secret,
        status: Arc::new(AtomicU16::new(status)),
        received: Arc::new(Mutex::new(Vec::new())),
    };
    let receiver = Receiver {
        url: String::new(),
        status: state.status.clone(),
        received: state.received.clone(),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hook"),
        ..receiver
    }
}

/// What the receiver says besides its status: nothing ferry may keep.
const REPLY: &str = "internal: db=10.1.2.3 user=svc password=hunter2";

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signature_ok = verify(state.secret.as_bytes(), &body, signature);
    state.received.lock().unwrap().push(Received {
        headers,
        body,
        signature_ok,
    });
    if !signature_ok {
        return (StatusCode::UNAUTHORIZED, REPLY);
    }
    (
        StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap(),
        REPLY,
    )
}

/// A webhook to a receiver on this machine, which an admin allowed.
fn webhook(url: &str, secret: &str) -> Channel {
    Channel::Webhook {
        url: url.to_owned(),
        secret: secret.to_owned(),
        allow_private: true,
    }
}

#[tokio::test]
async fn webhook_posts_signed_compact_json() {
    let receiver = start_receiver(SECRET, 200).await;
    let delivered = deliver(&webhook(&receiver.url, SECRET), &message())
        .await
        .unwrap();
    assert_eq!(delivered.detail, "HTTP 200");

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(request.signature_ok);
    assert_eq!(
        request.body.as_ref(),
        webhook_body(&message()).unwrap().as_slice()
    );
    assert_eq!(
        std::str::from_utf8(&request.body).unwrap(),
        r#"{"id":"dlv-42","event":"incident.opened","subject":"shop: checkout fails in prd","text":"severity critical\nassigned to ana","data":{"app":"shop","incident":7,"severity":"critical"},"sent_at":"2023-11-14T22:13:20Z"}"#
    );
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(
        header("user-agent"),
        concat!("ferry/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(header("x-ferry-event"), "incident.opened");
    assert_eq!(header("x-ferry-delivery"), "dlv-42");
    assert_eq!(
        header("x-ferry-signature"),
        sign(SECRET.as_bytes(), &request.body)
    );
}

#[tokio::test]
async fn webhook_answers_decide_retries() {
    // (status answered, expected outcome: None = delivered, Some(retryable))
    let cases: &[(u16, Option<bool>)] = &[
        (200, None),
        (202, None),
        (204, None),
        (408, Some(true)),
        (429, Some(true)),
        (500, Some(true)),
        (502, Some(true)),
        (503, Some(true)),
        (301, Some(false)),
        (400, Some(false)),
        (404, Some(false)),
        (410, Some(false)),
        (422, Some(false)),
    ];
    let receiver = start_receiver(SECRET, 200).await;
    let channel = webhook(&receiver.url, SECRET);
    for &(status, expect) in cases {
        receiver.status.store(status, Ordering::SeqCst);
        let outcome = deliver(&channel, &message()).await;
        match (expect, outcome) {
            (None, Ok(delivered)) => assert_eq!(delivered.detail, format!("HTTP {status}")),
            (Some(retryable), Err(error)) => {
                assert_eq!(error.retryable, retryable, "HTTP {status}: {error}");
                assert!(
                    error.message.contains(&status.to_string()),
                    "HTTP {status}: {error}"
                );
                assert!(!error.message.contains(SECRET), "{error}");
                // The status, never the receiver's reply.
                assert!(!error.message.contains("hunter2"), "{error}");
            }
            (expect, outcome) => panic!("HTTP {status}: expected {expect:?}, got {outcome:?}"),
        }
    }
    assert_eq!(receiver.received.lock().unwrap().len(), cases.len());
}

#[tokio::test]
async fn webhook_with_the_wrong_secret_is_refused_for_good() {
    let receiver = start_receiver(SECRET, 200).await;
    let channel = webhook(&receiver.url, "another-secret-of-16-bytes");
    let error = deliver(&channel, &message()).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("401"), "{error}");
    assert!(!receiver.received.lock().unwrap()[0].signature_ok);
}

#[tokio::test]
async fn webhook_connection_refused_is_retryable() {
    let url = format!("http://{}/hook", closed_port().await);
    let error = deliver(&webhook(&url, SECRET), &message())
        .await
        .unwrap_err();
    assert!(error.retryable, "{error}");
    assert!(error.message.contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn a_host_name_resolving_to_a_private_address_is_refused_at_send_time() {
    let receiver = start_receiver(SECRET, 200).await;
    let port = receiver.url.rsplit(':').next().unwrap();
    let by_name = format!("http://localhost:{port}");
    let channel = Channel::Webhook {
        url: by_name.clone(),
        secret: SECRET.to_owned(),
        allow_private: false,
    };
    channel
        .validate()
        .expect("a host name is judged when a message is sent");
    let error = deliver(&channel, &message()).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(
        error
            .message
            .contains("localhost resolves to 127.0.0.1, a loopback address")
            || error
                .message
                .contains("localhost resolves to ::1, a loopback address"),
        "{error}"
    );
    assert!(error.message.contains("--allow-private"), "{error}");
    assert!(receiver.received.lock().unwrap().is_empty());

    // Allowed by an admin, the same name reaches the receiver.
    let allowed = webhook(&by_name, SECRET);
    deliver(&allowed, &message()).await.unwrap();
    assert_eq!(receiver.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_private_address_in_the_url_is_refused_without_a_request() {
    let receiver = start_receiver(SECRET, 200).await;
    let channel = Channel::Webhook {
        url: receiver.url.clone(),
        secret: SECRET.to_owned(),
        allow_private: false,
    };
    let error = deliver(&channel, &message()).await.unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(
        error.message.contains("127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(receiver.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_invalid_channel_is_not_retried() {
    let error = deliver(&webhook("ftp://example.com/", SECRET), &message())
        .await
        .unwrap_err();
    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("http://"), "{error}");
}

#[test]
fn sign_matches_rfc4231_test_case_2() {
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn verify_accepts_only_the_right_signature() {
    let good = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    let body: &[u8] = b"what do ya want for nothing?";
    let cases: &[(&[u8], &[u8], &str, bool)] = &[
        (b"Jefe", body, good, true),
        (
            b"Jefe",
            body,
            &good.to_ascii_uppercase().replace("SHA256=", "sha256="),
            true,
        ),
        (b"Jefe", body, &format!(" {good} "), true),
        (b"jefe", body, good, false),
        (b"Jefe", b"what do ya want for nothing!", good, false),
        (b"Jefe", body, &good["sha256=".len()..], false),
        (b"Jefe", body, &good.replace("sha256=", "sha1="), false),
        (b"Jefe", body, &good[..good.len() - 2], false),
        (b"Jefe", body, &good[..good.len() - 1], false),
        (b"Jefe", body, "sha256=", false),
        (b"Jefe", body, "", false),
        (b"Jefe", body, &good.replace('5', "g"), false),
    ];
    for (case_idx, &(secret, body, header, expect)) in cases.iter().enumerate() {
        assert_eq!(
            verify(secret, body, header),
            expect,
            "case {case_idx}: {header:?}"
        );
    }
}
